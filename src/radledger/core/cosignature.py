"""C2SP witness cosignatures, v1 Ed25519 (https://c2sp.org/tlog-cosignature).

A cosignature is a signed-note signature line on a checkpoint::

    — <witness name> base64(key ID (4) || timestamp (u64, big-endian) || Ed25519 signature (64))

The key ID is SHA-256(name || 0x0A || 0x04 || public key)[:4]: signature type 0x04, so a
witness key can never be mistaken for a log key (type 0x01) or the reverse. The signed message
is ``"cosignature/v1\\ntime <timestamp>\\n"`` followed by the checkpoint's note text (every
line, extensions included, final newline included). The name is not signed: a cosigner is
identified by the pinned (name, key) pair.

Verifier keys are vkeys with type 0x04: ``name+<key ID hex>+base64(0x04 || key)``; signer keys
``PRIVATE+KEY+name+<key ID hex>+base64(0x04 || seed)``. A signer key of type 0x01 (a plain
signed-note key, as transparency-dev/witness configures its witnesses) is accepted too and
used as a cosigner; its key ID is then recomputed with type 0x04.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from radledger.core.ed25519 import KEY_SIZE, SIGNATURE_SIZE, SigningKey, VerifyFn, load_verifier
from radledger.core.note import (
    ALG_ED25519,
    NoteSignature,
    check_key_name,
    check_note_text,
    decode_base64,
    parse_note,
)
from radledger.errors import KeyFormatError, NoteError, SignatureError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "MAX_TIMESTAMP",
    "Cosignature",
    "CosignatureVerifier",
    "Cosigner",
    "cosign",
    "cosignature_key_id",
    "cosignature_message",
    "format_witness_skey",
    "format_witness_vkey",
    "open_cosignatures",
    "parse_witness_skey",
    "parse_witness_vkey",
    "verify_cosignature",
]

ALG_COSIGNATURE_V1 = 0x04
"""The signed-note signature type byte of timestamped Ed25519 witness cosignatures."""
MAX_TIMESTAMP = 2**63 - 1

_KEY_ID_SIZE = 4
_TIMESTAMP_SIZE = 8
_SIG_PREFIX = "\u2014 "
_PRIVATE_PREFIX = "PRIVATE+KEY+"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public_key)[:4]. Requires a valid key name."""
    data = name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key
    return hashlib.sha256(data).digest()[:_KEY_ID_SIZE]


def _check_timestamp(timestamp: int) -> None:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is outside [0, 2^63)")


def cosignature_message(text: str, timestamp: int) -> bytes:
    """``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint note text.

    Raises NoteError if ``text`` is not note text (see check_note_text) or the timestamp is
    outside [0, 2^63).
    """
    _check_timestamp(timestamp)
    return f"cosignature/v1\ntime {timestamp}\n".encode("ascii") + check_note_text(text)


@dataclass(frozen=True)
class CosignatureVerifier:
    """A pinned witness key under its name.

    Raises KeyFormatError for an invalid name, SignatureError for a refused key.
    """

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _verify: VerifyFn = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "_verify", load_verifier(self.public_key))
        object.__setattr__(self, "key_id", cosignature_key_id(self.name, self.public_key))

    @property
    def vkey(self) -> str:
        """The verifier key string, ``name+<key ID hex>+base64(0x04 || key)``."""
        return format_witness_vkey(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise SignatureError unless ``signature`` is this key's signature of ``message``."""
        self._verify(message, signature)


@dataclass(frozen=True)
class Cosigner:
    """A witness signing key under its name. Raises KeyFormatError for an invalid name."""

    name: str
    signing_key: SigningKey
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "key_id",
                           cosignature_key_id(self.name, self.signing_key.public_key))

    @property
    def verifier(self) -> CosignatureVerifier:
        """The CosignatureVerifier of this cosigner."""
        return CosignatureVerifier(self.name, self.signing_key.public_key)


def cosign(text: str, cosigner: Cosigner, timestamp: int) -> str:
    """The cosignature line (ending in a newline) of ``cosigner`` on checkpoint ``text``.

    Raises NoteError for text that is not note text or a timestamp outside [0, 2^63).
    """
    message = cosignature_message(text, timestamp)
    raw = (cosigner.key_id + timestamp.to_bytes(_TIMESTAMP_SIZE, "big")
           + cosigner.signing_key.sign(message))
    return f"{_SIG_PREFIX}{cosigner.name} {_b64(raw)}\n"


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: who, when (POSIX seconds), and its signature line."""

    verifier: CosignatureVerifier
    timestamp: int
    line: str


def verify_cosignature(text: str, signature: NoteSignature,
                       verifier: CosignatureVerifier) -> int:
    """Check one parsed signature line as ``verifier``'s cosignature on ``text``.

    Returns the timestamp. Raises SignatureError if the name or key ID is not the verifier's,
    the signature is not 8 + 64 bytes, the timestamp is 2^63 or more, or it does not verify.
    """
    if (signature.name, signature.key_id) != (verifier.name, verifier.key_id):
        raise SignatureError(f"signature line is not by witness {verifier.vkey}")
    raw = signature.signature
    if len(raw) != _TIMESTAMP_SIZE + SIGNATURE_SIZE:
        raise SignatureError(
            f"cosignature by {verifier.name} is {len(raw)} bytes, not timestamp and signature "
            f"({_TIMESTAMP_SIZE + SIGNATURE_SIZE})"
        )
    timestamp = int.from_bytes(raw[:_TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise SignatureError(f"cosignature by {verifier.name} has a timestamp of 2^63 or more")
    try:
        verifier.verify(cosignature_message(text, timestamp), raw[_TIMESTAMP_SIZE:])
    except SignatureError as exc:
        raise SignatureError(f"cosignature by {verifier.name} refused: {exc.what}") from None
    return timestamp


def open_cosignatures(note: str | bytes, verifiers: Sequence[CosignatureVerifier]
                      ) -> tuple[str, list[Cosignature]]:
    """The note text and the cosignatures on it by the given witness keys.

    Lines by other keys (the log's own signature, unknown witnesses) are ignored, as the spec
    requires; nothing else about the note is vouched for here. Raises NoteError for a
    malformed note and SignatureError if a line by a pinned key does not verify.
    """
    parsed = parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    found: list[Cosignature] = []
    for sig in parsed.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        timestamp = verify_cosignature(parsed.text, sig, verifier)
        line = f"{_SIG_PREFIX}{sig.name} {_b64(sig.key_id + sig.signature)}\n"
        found.append(Cosignature(verifier, timestamp, line))
    return parsed.text, found


def format_witness_vkey(name: str, public_key: bytes) -> str:
    """``name+<key ID hex>+base64(0x04 || public_key)``.

    Raises KeyFormatError for an invalid name, SignatureError for a refused key.
    """
    verifier = CosignatureVerifier(name, public_key)
    return f"{name}+{verifier.key_id.hex()}+{_b64(bytes([ALG_COSIGNATURE_V1]) + public_key)}"


def _split(text: str, what: str, types: tuple[int, ...]) -> tuple[str, bytes, int, bytes]:
    """Split ``name+keyid+base64(type || key)`` into name, key ID, type and key bytes."""
    parts = text.split("+", 2)  # base64 may itself contain '+'
    if len(parts) != 3:  # noqa: PLR2004
        raise KeyFormatError(f"{what} is not name+keyid+key")
    name, hex_id, encoded = parts
    check_key_name(name)
    if len(hex_id) != 2 * _KEY_ID_SIZE or any(c not in "0123456789abcdef" for c in hex_id):
        raise KeyFormatError(f"{what} key ID {hex_id!r:.20} is not 8 lowercase hex digits")
    raw = decode_base64(encoded, what, KeyFormatError)
    if len(raw) != 1 + KEY_SIZE:
        raise KeyFormatError(f"{what} key must be 33 bytes (type byte and key), got {len(raw)}")
    if raw[0] not in types:
        wanted = " or ".join(f"{t:#04x}" for t in types)
        raise KeyFormatError(f"{what} has key type {raw[0]:#04x}, not {wanted}")
    return name, bytes.fromhex(hex_id), raw[0], raw[1:]


def parse_witness_vkey(text: str) -> CosignatureVerifier:
    """Parse ``name+keyid+base64(0x04 || key)``, a witness's cosignature verifier key.

    Raises KeyFormatError on any malformation, a type byte other than 0x04 (a log's 0x01 key
    is refused: it would verify nothing), a key ID that does not match, or a refused key.
    """
    name, claimed_id, _, public_key = _split(text, "witness key", (ALG_COSIGNATURE_V1,))
    try:
        verifier = CosignatureVerifier(name, public_key)
    except SignatureError as exc:
        raise KeyFormatError(f"witness key refused: {exc.what}") from None
    if verifier.key_id != claimed_id:
        raise KeyFormatError(
            f"witness key ID {claimed_id.hex()} does not match name and key "
            f"(computed {verifier.key_id.hex()})"
        )
    return verifier


def format_witness_skey(name: str, signing_key: SigningKey) -> str:
    """``PRIVATE+KEY+name+<key ID hex>+base64(0x04 || seed)``. Secret.

    Raises KeyFormatError for an invalid name.
    """
    cosigner = Cosigner(name, signing_key)
    seed = bytes([ALG_COSIGNATURE_V1]) + signing_key.seed
    return f"{_PRIVATE_PREFIX}{name}+{cosigner.key_id.hex()}+{_b64(seed)}"


def parse_witness_skey(text: str) -> Cosigner:
    """Parse a witness signer key of type 0x04 (or a plain 0x01 signed-note key).

    Raises KeyFormatError on any malformation or a key ID that does not match the name and
    key under the key's own type byte.
    """
    if not text.startswith(_PRIVATE_PREFIX):
        raise KeyFormatError("signer key does not start with PRIVATE+KEY+")
    name, claimed_id, kind, seed = _split(text[len(_PRIVATE_PREFIX):], "witness signer key",
                                          (ALG_COSIGNATURE_V1, ALG_ED25519))
    signing_key = SigningKey.from_seed(seed)
    cosigner = Cosigner(name, signing_key)
    data = name.encode("utf-8") + b"\n" + bytes([kind]) + signing_key.public_key
    if hashlib.sha256(data).digest()[:_KEY_ID_SIZE] != claimed_id:
        raise KeyFormatError(f"witness signer key ID {claimed_id.hex()} does not match name "
                             "and key")
    return cosigner
