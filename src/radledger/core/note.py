"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys.

A note is text ending in a newline, one blank line, then signature lines::

    <text, ending in a newline>
    <blank line>
    — <key name> base64(key ID (4 bytes) || signature)

The signature is over the UTF-8 text, final newline included. The key ID is
SHA-256(name || 0x0A || 0x01 || public key)[:4]; a (name, key ID) pair identifies a key.

Stricter than the spec in three ways, so each note has exactly one accepted spelling: base64
must be canonical, hex key IDs lowercase, and the text may not end with an empty line (the
blank separator is then exactly one line).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from radledger.core.ed25519 import KEY_SIZE, SigningKey, VerifyFn, load_verifier
from radledger.errors import KeyFormatError, NoteError, SignatureError

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "NoteSignature",
    "OpenedNote",
    "ParsedNote",
    "Signer",
    "Verifier",
    "check_key_name",
    "check_note_text",
    "decode_base64",
    "format_skey",
    "format_vkey",
    "key_id",
    "open_note",
    "parse_note",
    "parse_skey",
    "parse_vkey",
    "sign_note",
]

ALG_ED25519 = 0x01
"""The signed-note signature type byte of Ed25519."""
MAX_SIGNATURES = 100
"""Notes with more signature lines are refused before any is verified."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_KEY_ID_SIZE = 4
_PRIVATE_PREFIX = "PRIVATE+KEY+"


def decode_base64(text: str, what: str, error: type[NoteError | KeyFormatError]) -> bytes:
    """Decode standard, padded, canonical base64 (RFC 4648 section 4).

    Raises ``error`` naming ``what`` on any other spelling, including set padding bits.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise error(f"bad base64 in {what}") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise error(f"non-canonical base64 in {what}")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def check_key_name(name: str) -> None:
    """Raise KeyFormatError unless ``name`` is a valid key name.

    A key name is non-empty and has no Unicode whitespace, no '+', no control character, and
    no lone surrogate.
    """
    if not name:
        raise KeyFormatError("key name is empty")
    for char in name:
        if char.isspace() or char == "+" or char < " " or "\ud800" <= char <= "\udfff":
            raise KeyFormatError(f"key name {name!r:.80} contains {char!r}")


def key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x01 || public_key)[:4], the C2SP Ed25519 key ID.

    Requires a valid key name (see check_key_name); the key is not checked here.
    """
    data = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    return hashlib.sha256(data).digest()[:_KEY_ID_SIZE]


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 key under a name.

    Raises KeyFormatError for an invalid name, SignatureError for a key that check_public_key
    refuses.
    """

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _verify: VerifyFn = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "_verify", load_verifier(self.public_key))
        object.__setattr__(self, "key_id", key_id(self.name, self.public_key))

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise SignatureError unless ``signature`` is this key's signature of ``message``."""
        self._verify(message, signature)


@dataclass(frozen=True)
class Signer:
    """An Ed25519 signing key under a name. Raises KeyFormatError for an invalid name."""

    name: str
    signing_key: SigningKey
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "key_id", key_id(self.name, self.signing_key.public_key))

    @property
    def verifier(self) -> Verifier:
        """The Verifier for this signer's key and name."""
        return Verifier(self.name, self.signing_key.public_key)


def format_vkey(name: str, public_key: bytes) -> str:
    """``name+<key ID hex>+base64(0x01 || public_key)``, the verifier key string.

    Raises KeyFormatError for an invalid name, SignatureError for a refused key.
    """
    verifier = Verifier(name, public_key)
    return f"{name}+{verifier.key_id.hex()}+{_b64(bytes([ALG_ED25519]) + public_key)}"


def _split_key(text: str, what: str) -> tuple[str, bytes, bytes]:
    """Split ``name+keyid+base64`` into name, key ID and the key bytes after the type byte."""
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
    if raw[0] != ALG_ED25519:
        raise KeyFormatError(f"{what} has key type {raw[0]:#04x}, not Ed25519 (0x01)")
    return name, bytes.fromhex(hex_id), raw[1:]


def parse_vkey(text: str) -> Verifier:
    """Parse a ``name+keyid+base64(0x01 || key)`` verifier key.

    Raises KeyFormatError on any malformation, a type byte other than 0x01, a key ID that does
    not match the name and key, or a key that check_public_key refuses.
    """
    name, claimed_id, public_key = _split_key(text, "verifier key")
    try:
        verifier = Verifier(name, public_key)
    except SignatureError as exc:
        raise KeyFormatError(f"verifier key refused: {exc.what}") from None
    if verifier.key_id != claimed_id:
        raise KeyFormatError(
            f"verifier key ID {claimed_id.hex()} does not match name and key "
            f"(computed {verifier.key_id.hex()})"
        )
    return verifier


def format_skey(name: str, signing_key: SigningKey) -> str:
    """``PRIVATE+KEY+name+<key ID hex>+base64(0x01 || seed)``, the signer key string. Secret.

    Raises KeyFormatError for an invalid name.
    """
    signer = Signer(name, signing_key)
    seed = bytes([ALG_ED25519]) + signing_key.seed
    return f"{_PRIVATE_PREFIX}{name}+{signer.key_id.hex()}+{_b64(seed)}"


def parse_skey(text: str) -> Signer:
    """Parse a ``PRIVATE+KEY+name+keyid+base64(0x01 || seed)`` signer key.

    Raises KeyFormatError on any malformation, a type byte other than 0x01, or a key ID that
    does not match the name and the public key derived from the seed.
    """
    if not text.startswith(_PRIVATE_PREFIX):
        raise KeyFormatError("signer key does not start with PRIVATE+KEY+")
    name, claimed_id, seed = _split_key(text[len(_PRIVATE_PREFIX):], "signer key")
    signer = Signer(name, SigningKey.from_seed(seed))
    if signer.key_id != claimed_id:
        # The computed ID is derived from the secret seed's public key; safe to show.
        raise KeyFormatError(
            f"signer key ID {claimed_id.hex()} does not match name and key "
            f"(computed {signer.key_id.hex()})"
        )
    return signer


def check_note_text(text: str) -> bytes:
    """Check note text and return its UTF-8 bytes.

    The text must be non-empty, end with a newline, not end with an empty line, and hold no
    control character but newline and no lone surrogate. Raises NoteError naming the reason.
    """
    if not text:
        raise NoteError("note text is empty")
    if not text.endswith("\n"):
        raise NoteError("missing final newline in note text")
    if ("\n" + text).endswith("\n\n"):
        raise NoteError("note text ends with an empty line")
    return _utf8(text)


def _utf8(text: str) -> bytes:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError("note is not valid UTF-8 (lone surrogate)") from None
    for byte in data:
        if byte < 0x20 and byte != 0x0A:  # noqa: PLR2004
            raise NoteError(f"note contains control character {byte:#04x}")
    return data


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` with each signer, in order, and return the note.

    Requires 1 to MAX_SIGNATURES signers with distinct (name, key ID); raises ValueError
    otherwise. Raises NoteError if the text is not valid note text (see check_note_text).
    """
    data = check_note_text(text)
    if not 1 <= len(signers) <= MAX_SIGNATURES:
        raise ValueError(f"a note needs 1 to {MAX_SIGNATURES} signers, got {len(signers)}")
    if len({(s.name, s.key_id) for s in signers}) != len(signers):
        raise ValueError("duplicate signer")
    lines = [
        f"{_SIG_PREFIX}{s.name} {_b64(s.key_id + s.signing_key.sign(data))}\n" for s in signers
    ]
    return text + "\n" + "".join(lines)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line, not verified: the key name, the 4-byte key ID, the signature."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class ParsedNote:
    """A note split into its text and its signature lines, nothing verified."""

    text: str
    signatures: tuple[NoteSignature, ...]


def parse_note(note: str | bytes) -> ParsedNote:
    """Split a signed note into text and signature lines without verifying anything.

    For signature types other than Ed25519 (cosignatures) that the caller checks itself.
    Raises NoteError naming what is malformed: invalid UTF-8 or a control character, no final
    newline, no blank line before the signatures, an extra blank line, a line not starting
    with the em dash, a bad key name, bad base64, or more than MAX_SIGNATURES lines.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    _utf8(note)
    if not note.endswith("\n"):
        raise NoteError("missing final newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("no blank line between note text and signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise NoteError("no signature lines after the blank line")
    if text == "\n":
        raise NoteError("note text is empty")
    if text.endswith("\n\n"):
        raise NoteError("extra blank line before the signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signature lines")
    return ParsedNote(text, tuple(_parse_signature_line(line) for line in lines))


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise NoteError("signature line does not start with em dash (U+2014) and a space")
    name, space, encoded = line[len(_SIG_PREFIX):].partition(" ")
    if not space:
        raise NoteError("signature line is not '— <name> <base64>'")
    try:
        check_key_name(name)
    except KeyFormatError as exc:
        raise NoteError(f"signature line: {exc}") from None
    raw = decode_base64(encoded, "signature line", NoteError)
    if len(raw) <= _KEY_ID_SIZE:
        raise NoteError("signature line holds no signature after the key ID")
    return NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:])


@dataclass(frozen=True)
class OpenedNote:
    """A note whose text is vouched for by every key in ``verified``.

    ``unknown`` lists (name, key ID) of signatures by keys the caller did not trust; they were
    not checked.
    """

    text: str
    verified: list[Verifier]
    unknown: list[tuple[str, bytes]]


def _describe(name: str, kid: bytes) -> str:
    return f"{name}+{kid.hex()}"


def open_note(note: str | bytes, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Parse ``note`` and verify the signatures of the given keys.

    A signature line whose (name, key ID) matches a verifier must verify; lines by other keys
    are returned in ``unknown``. Raises NoteError if the note is malformed (see parse_note),
    SignatureError if a known key's signature fails, if no known key signed (naming the
    unknown key IDs), or if two verifiers share a name and key ID but not the key.
    """
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        have = known.setdefault((verifier.name, verifier.key_id), verifier)
        if have.public_key != verifier.public_key:
            raise SignatureError(f"ambiguous key {_describe(verifier.name, verifier.key_id)}")
    parsed = parse_note(note)
    data = parsed.text.encode("utf-8")
    verified: list[Verifier] = []
    unknown: list[tuple[str, bytes]] = []
    for sig in parsed.signatures:
        ident = (sig.name, sig.key_id)
        signed_by = known.get(ident)
        if signed_by is None:
            if ident not in unknown:
                unknown.append(ident)
            continue
        try:
            signed_by.verify(data, sig.signature)
        except SignatureError as exc:
            raise SignatureError(
                f"signature by {_describe(*ident)} refused: {exc.what}"
            ) from None
        if signed_by not in verified:
            verified.append(signed_by)
    if not verified:
        trusted = ", ".join(_describe(*k) for k in known) or "none"
        seen = ", ".join(_describe(*k) for k in unknown)
        raise SignatureError(
            f"no signature from a known key (unknown key ID: {seen}; trusted: {trusted})"
        )
    return OpenedNote(parsed.text, verified, unknown)
