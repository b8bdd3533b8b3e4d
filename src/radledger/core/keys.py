"""The key ring: which keys may sign at which index (DESIGN section 3).

Keys are registered in the ledger by ``key.registered`` entries before they sign and retired
by ``key.revoked``. Index 0 is the ledger key registering itself; every later key entry must be
signed by a ledger-role key in force at that index. A revoked key's signatures stay valid for
the entries before its revocation, and are refused after it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from radledger.core.ed25519 import load_verifier
from radledger.core.entry import Entry, actor_id, parse_entry, signing_input
from radledger.errors import EntryError, SignatureError

VerifyFn = Callable[[bytes, bytes], None]
KEY_KINDS = frozenset({"key.registered", "key.revoked"})


@dataclass
class RegisteredKey:
    """A key as the ledger knows it."""

    actor: str
    name: str
    public_key: bytes
    role: str
    registered_at: int
    revoked_at: int | None = None
    verify: VerifyFn = field(repr=False, default=lambda m, s: None)


class KeyRing:
    """Key state built by applying key entries in index order."""

    def __init__(self) -> None:
        self.keys: dict[str, RegisteredKey] = {}

    def key_for(self, actor: str, index: int) -> RegisteredKey:
        """The key that may sign entry ``index`` as ``actor``.

        Raises SignatureError if the actor is unknown at that index or was revoked before it.
        """
        key = self.keys.get(actor)
        if key is None or key.registered_at >= index:
            raise SignatureError(f"signer {actor!r:.80} is not a registered key", index=index)
        if key.revoked_at is not None and key.revoked_at < index:
            raise SignatureError(
                f"signer {actor!r:.80} was revoked at entry {key.revoked_at}", index=index
            )
        return key

    def apply(self, index: int, entry: Entry) -> None:
        """Record a key entry at ``index``; its signature must already be verified.

        Requires entry.kind in KEY_KINDS. Raises SignatureError if the entry may not change
        keys (wrong signer, duplicate registration, unknown key revoked).
        """
        if entry.kind == "key.registered":
            self._register(index, entry)
        else:
            self._revoke(index, entry)

    def _register(self, index: int, entry: Entry) -> None:
        name = str(entry.body["name"])
        public_key = base64.b64decode(str(entry.body["public_key"]))
        actor = actor_id(name, public_key)
        if actor in self.keys:
            raise SignatureError(f"key {actor} is already registered", index=index)
        if index == 0:
            if entry.body["role"] != "ledger" or entry.actor != actor:
                raise SignatureError("entry 0 must be the ledger key registering itself",
                                     index=0, expected=actor, computed=entry.actor)
        else:
            self._require_ledger_signer(index, entry)
        self.keys[actor] = RegisteredKey(
            actor, name, public_key, str(entry.body["role"]), index, None,
            load_verifier(public_key),
        )

    def _revoke(self, index: int, entry: Entry) -> None:
        self._require_ledger_signer(index, entry)
        target = str(entry.body["key"])
        key = self.keys.get(target)
        if key is None or key.revoked_at is not None:
            raise SignatureError(f"cannot revoke {target!r:.80}: not a key in force", index=index)
        key.revoked_at = index

    def _require_ledger_signer(self, index: int, entry: Entry) -> None:
        signer = self.key_for(entry.actor, index)
        if signer.role != "ledger":
            raise SignatureError(
                f"{entry.kind} must be signed by a ledger key, not {signer.role} key "
                f"{entry.actor}", index=index,
            )

    def ledger_keys(self) -> list[RegisteredKey]:
        """Every ledger-role key ever registered, oldest first."""
        return sorted((k for k in self.keys.values() if k.role == "ledger"),
                      key=lambda k: k.registered_at)


def check_entry(keyring: KeyRing, index: int, data: bytes) -> Entry:
    """Parse entry bytes and check them for position ``index``.

    Checks canonical form, envelope and body, that the signer is in force at ``index``, the
    signature, and that index refs point backwards. Key entries are not applied; the caller
    does that once the entry is accepted. Raises CanonicalJSONError, EntryError or
    SignatureError.
    """
    entry = parse_entry(data)
    verify = _genesis_verifier(entry) if index == 0 else keyring.key_for(entry.actor, index).verify
    try:
        verify(signing_input(entry, data), entry.signature)
    except SignatureError as exc:
        raise SignatureError(f"signature by {entry.actor} does not verify: {exc.what}",
                             index=index) from None
    for ref in entry.refs:
        if isinstance(ref, int) and ref >= index:
            raise EntryError(f"ref {ref} does not point to an earlier entry")
    return entry


def _genesis_verifier(entry: Entry) -> VerifyFn:
    """Entry 0 is the ledger key registering itself, so it verifies with its own body's key."""
    if entry.kind != "key.registered":
        raise EntryError("entry 0 must be key.registered for the ledger key")
    public_key = base64.b64decode(str(entry.body["public_key"]))
    return load_verifier(public_key)
