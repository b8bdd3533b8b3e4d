"""Entries: the signed statements the ledger holds (DESIGN section 3).

An entry is the RFC 8785 canonical JSON of its envelope::

    {"actor", "body", "claimed_time", "kind", "refs", "sig", "subject", "v"}

``sig`` is base64 (standard alphabet, padded) of the actor's Ed25519 signature over
``SIGNATURE_CONTEXT || JCS(envelope without "sig")``. The leaf hash covers the whole entry,
signature included, so a re-signed or altered entry changes the tree.

``actor`` names the signing key as ``name+keyid`` (the C2SP signed-note key ID of that name and
key, 8 hex digits); keys are registered in the ledger by ``key.registered`` before they sign.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

from radledger.core import jcs
from radledger.core.jcs import JSONValue
from radledger.core.kinds import validate_body
from radledger.core.note import key_id
from radledger.errors import EntryError

FORMAT_VERSION = 1
SIGNATURE_CONTEXT = b"radledger/entry/v1\n"
MAX_ENTRY_BYTES = 1 << 20
MAX_REFS = 10_000
MAX_SUBJECT_VALUE = 256
SIGNATURE_SIZE = 64

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
_SUBJECT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ACTOR = re.compile(r"^[^\s+]{1,200}\+[0-9a-f]{8}$")
_LEAF_HEX = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = frozenset({"v", "kind", "actor", "claimed_time", "subject", "body", "refs", "sig"})

Ref = int | str


def actor_id(name: str, public_key: bytes) -> str:
    """The ``name+keyid`` string that identifies a signing key in entries."""
    return f"{name}+{key_id(name, public_key).hex()}"


@dataclass(frozen=True)
class Statement:
    """The signed fields of an entry (everything but the signature)."""

    kind: str
    actor: str
    claimed_time: str
    subject: dict[str, str]
    body: dict[str, JSONValue]
    refs: tuple[Ref, ...]

    def envelope(self) -> dict[str, JSONValue]:
        """The envelope as JSON, without the signature."""
        return {
            "v": FORMAT_VERSION,
            "kind": self.kind,
            "actor": self.actor,
            "claimed_time": self.claimed_time,
            "subject": dict(self.subject),
            "body": self.body,
            "refs": list(self.refs),
        }


@dataclass(frozen=True)
class Entry(Statement):
    """A parsed, well-formed entry. Its signature is not checked here (see keys.check_entry)."""

    signature: bytes


def validate_statement(statement: Statement) -> None:
    """Check every field of a statement, whatever JSON it came from.

    Raises EntryError naming the first field that is wrong.
    """
    actor, claimed_time = statement.actor, statement.claimed_time
    subject, body, refs = statement.subject, statement.body, statement.refs
    if not isinstance(actor, str) or not _ACTOR.match(actor):
        raise EntryError(f"actor must be 'name+keyid' (8 hex digits), got {actor!r:.80}")
    if not isinstance(claimed_time, str) or not _TIME.match(claimed_time):
        raise EntryError(
            f"claimed_time must be RFC 3339 UTC like 2026-01-31T12:00:00Z, got {claimed_time!r:.40}"
        )
    if not isinstance(subject, dict):
        raise EntryError("subject must be a JSON object of pseudonymous keys")
    for k, v in subject.items():
        if not _SUBJECT_KEY.match(k):
            raise EntryError(f"subject key {k!r:.40} must match [a-z][a-z0-9_]{{0,31}}")
        if not isinstance(v, str) or not 0 < len(v) <= MAX_SUBJECT_VALUE:
            raise EntryError(f"subject.{k} must be a non-empty string of at most "
                             f"{MAX_SUBJECT_VALUE} characters")
    if not isinstance(body, dict):
        raise EntryError("body must be a JSON object")
    validate_body(statement.kind, body)
    if not isinstance(refs, tuple) or len(refs) > MAX_REFS:
        raise EntryError(f"refs must be a list of at most {MAX_REFS} indices or leaf hashes")
    for r in refs:
        if isinstance(r, bool) or not (
            (isinstance(r, int) and r >= 0) or (isinstance(r, str) and _LEAF_HEX.match(r))
        ):
            raise EntryError(f"ref {r!r:.80} is neither an entry index nor a hex leaf hash")


def sign_entry(statement: Statement, sign: Callable[[bytes], bytes]) -> bytes:
    """Validate, sign and serialize one entry; returns its canonical bytes.

    ``sign`` is the actor's Ed25519 signing function. Raises EntryError or CanonicalJSONError.
    """
    validate_statement(statement)
    unsigned = jcs.canonicalize(statement.envelope())
    signature = sign(SIGNATURE_CONTEXT + unsigned)
    data = _insert_signature(unsigned, statement, base64.b64encode(signature))
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError(f"entry is {len(data)} bytes; the limit is {MAX_ENTRY_BYTES}")
    return data


def _insert_signature(unsigned: bytes, statement: Statement, sig_b64: bytes) -> bytes:
    """The canonical entry: ``"sig"`` sorts between ``"refs"`` and ``"subject"``, and the
    canonical tail after it is known exactly, so the member is spliced in rather than the
    whole envelope serialized a second time (the append hot path)."""
    tail = _tail(statement)
    if not unsigned.endswith(tail):  # cannot happen for a canonical envelope; stay exact
        envelope = statement.envelope()
        envelope["sig"] = sig_b64.decode("ascii")
        return jcs.canonicalize(envelope)
    cut = len(unsigned) - len(tail)
    return b"".join((unsigned[:cut], b',"sig":"', sig_b64, b'"', unsigned[cut:]))


def parse_entry(data: bytes) -> Entry:
    """Parse canonical entry bytes into an Entry.

    Raises CanonicalJSONError if the bytes are not RFC 8785 canonical JSON, EntryError if the
    envelope or body is malformed. The signature is decoded, not verified.
    """
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError(f"entry is {len(data)} bytes; the limit is {MAX_ENTRY_BYTES}")
    obj = jcs.loads_canonical(data)
    if not isinstance(obj, dict):
        raise EntryError("an entry must be a JSON object")
    if set(obj) != _FIELDS:
        missing = sorted(_FIELDS - set(obj))
        extra = sorted(set(obj) - _FIELDS)
        raise EntryError(f"entry fields wrong: missing {missing}, unexpected {extra}")
    if obj["v"] != FORMAT_VERSION or isinstance(obj["v"], bool):
        raise EntryError(f"entry format version {obj['v']!r} is not {FORMAT_VERSION}")
    kind, actor, claimed_time = obj["kind"], obj["actor"], obj["claimed_time"]
    subject, body, refs = obj["subject"], obj["body"], obj["refs"]
    if not isinstance(kind, str) or not isinstance(actor, str) or not isinstance(
        claimed_time, str
    ):
        raise EntryError("kind, actor and claimed_time must be strings")
    if not isinstance(subject, dict) or not isinstance(body, dict) or not isinstance(refs, list):
        raise EntryError("subject and body must be objects, refs a list")
    entry = Entry(kind, actor, claimed_time, subject, body,  # type: ignore[arg-type]
                  tuple(refs), decode_signature(obj["sig"]))  # type: ignore[arg-type]
    validate_statement(entry)
    return entry


def decode_signature(value: JSONValue) -> bytes:
    """Decode a ``sig`` field, requiring canonical padded base64 of 64 bytes."""
    if not isinstance(value, str):
        raise EntryError("sig must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EntryError(f"sig is not valid base64: {exc}") from None
    if len(raw) != SIGNATURE_SIZE or base64.b64encode(raw).decode("ascii") != value:
        raise EntryError("sig must be canonical base64 of a 64-byte Ed25519 signature")
    return raw


def _tail(statement: Statement) -> bytes:
    """The canonical bytes that follow the ``sig`` member: subject, then v."""
    return b',"subject":' + jcs.canonicalize(dict(statement.subject)) + b',"v":1}'


def signing_input(statement: Statement, data: bytes | None = None) -> bytes:
    """The exact bytes the actor signed.

    With ``data``, the entry's canonical bytes (as parse_entry accepted them), the signed bytes
    are cut out of it (the ``sig`` member removed) instead of serialized again.
    """
    if data is not None and isinstance(statement, Entry):
        tail = _tail(statement)
        member = b',"sig":"' + base64.b64encode(statement.signature) + b'"'
        cut = len(data) - len(tail)
        if data.endswith(tail) and data[cut - len(member):cut] == member:
            return SIGNATURE_CONTEXT + data[:cut - len(member)] + data[cut:]
    return SIGNATURE_CONTEXT + jcs.canonicalize(statement.envelope())
