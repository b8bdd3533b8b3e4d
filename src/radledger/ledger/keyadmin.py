"""Adding and revoking signing keys of people and services (``radledger key ...``).

A new key is written to ``keys/actors/NAME.skey`` (mode 0600) in the ledger home and
registered by a ``key.registered`` entry signed with the ledger key; from the next entry on it
may sign. Revoking appends ``key.revoked``: the key's earlier signatures keep verifying, later
ones are refused.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from radledger.core.ed25519 import SigningKey
from radledger.core.entry import actor_id
from radledger.core.note import Signer, format_skey, parse_skey
from radledger.errors import InputError, KeyFormatError, LedgerHomeError
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Draft, Ledger, Receipt
from radledger.storage.files import write_secret

_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")  # also a safe file name


@dataclass(frozen=True)
class KeyInfo:
    """A registered key as ``radledger key list`` shows it."""

    actor: str
    role: str
    registered_at: int
    revoked_at: int | None


def _actor_file(home: LedgerHome, name: str) -> Path:
    if not _NAME.match(name) or name.startswith("."):
        raise InputError(f"key name {name!r:.80} must be 1-64 of A-Z a-z 0-9 . _ @ -")
    return home.path / "keys" / "actors" / f"{name}.skey"


def add_key(home: LedgerHome, ledger: Ledger, name: str) -> tuple[Signer, Receipt]:
    """Create an actor key NAME, store it in the home and register it in the ledger.

    Raises InputError if the name is malformed or a key file of that name exists.
    """
    path = _actor_file(home, name)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    signer = Signer(name, SigningKey.generate())
    try:
        write_secret(path, format_skey(name, signer.signing_key) + "\n")
    except FileExistsError:
        raise InputError(f"a key named {name!r} already exists ({path})") from None
    public = base64.b64encode(signer.signing_key.public_key).decode("ascii")
    (receipt,) = ledger.append_drafts(
        [Draft("key.registered", {"name": name, "public_key": public, "role": "actor"})],
        home.ledger_signer,
    )
    return signer, receipt


def revoke_key(home: LedgerHome, ledger: Ledger, actor: str, reason: str) -> Receipt:
    """Revoke the key ``actor`` (``name+keyid``) with a reason, signed by the ledger key.

    Raises SignatureError if it is not a key in force, EntryError for a malformed actor.
    """
    (receipt,) = ledger.append_drafts(
        [Draft("key.revoked", {"key": actor, "reason": reason})], home.ledger_signer
    )
    return receipt


def load_signer(home: LedgerHome, name: str | None) -> Signer:
    """The operator's own key (``None``) or the actor key NAME from ``keys/actors``."""
    if name is None:
        return home.actor_signer
    path = _actor_file(home, name)
    try:
        return parse_skey(path.read_text().strip())
    except FileNotFoundError:
        raise LedgerHomeError(f"no key named {name!r} in {path.parent}; "
                              "create it with `radledger key add`") from None
    except KeyFormatError as exc:
        raise LedgerHomeError(f"{path} is malformed: {exc}") from None


def list_keys(ledger: Ledger) -> list[KeyInfo]:
    """Every key the ledger has registered, in registration order."""
    keys = ledger.keyring().keys.values()
    return [KeyInfo(k.actor, k.role, k.registered_at, k.revoked_at)
            for k in sorted(keys, key=lambda k: k.registered_at)]


def signer_actor(signer: Signer) -> str:
    """The ``name+keyid`` that entries signed by ``signer`` carry."""
    return actor_id(signer.name, signer.signing_key.public_key)
