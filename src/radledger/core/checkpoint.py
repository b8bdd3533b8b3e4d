"""C2SP checkpoints (https://c2sp.org/tlog-checkpoint): the ledger's signed tree head.

The note text is::

    <origin>
    <tree size, decimal>
    <base64 root hash>
    <extension lines, each non-empty>

radledger adds one extension line carrying its block header,
``radledger-block <height> <base64 block hash> <unix time seconds>``.

A checkpoint is trusted only through a verifier and an origin the caller pinned beforehand;
nothing the note says chooses the key it is checked with.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import NamedTuple

from radledger.core.note import (
    Signer,
    Verifier,
    check_note_text,
    decode_base64,
    open_note,
    sign_note,
)
from radledger.errors import NoteError

__all__ = [
    "BLOCK_EXTENSION",
    "HASH_SIZE",
    "MAX_INT63",
    "BlockExtension",
    "Checkpoint",
    "block_extension",
    "open_checkpoint",
    "parse_block_extension",
    "parse_checkpoint",
    "sign_checkpoint",
]

HASH_SIZE = 32
MAX_INT63 = 2**63 - 1
"""Tree sizes, heights and times stay within signed 64 bits, which every database stores."""
BLOCK_EXTENSION = "radledger-block"

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}", re.ASCII)
_MIN_LINES = 3
_BLOCK_FIELDS = 4


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _hash(text: str, what: str) -> bytes:
    raw = decode_base64(text, what, NoteError)
    if len(raw) != HASH_SIZE:
        raise NoteError(f"{what} must be {HASH_SIZE} bytes, got {len(raw)}")
    return raw


def _decimal(text: str, what: str) -> int:
    """A decimal in [0, 2^63), with no sign, no leading zero and ASCII digits only."""
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_INT63:
        raise NoteError(f"{what} {text!r:.40} is not a decimal in [0, 2^63) without leading zeros")
    return int(text)


def _check_int63(value: int, what: str) -> None:
    if not 0 <= value <= MAX_INT63:
        raise NoteError(f"{what} {value} is outside [0, 2^63)")


class BlockExtension(NamedTuple):
    """The block header radledger puts in a checkpoint's extension line."""

    height: int
    block_hash: bytes
    time: int


def block_extension(height: int, block_hash: bytes, time: int) -> str:
    """``radledger-block <height> <base64 block hash> <unix time seconds>``.

    Raises NoteError unless height and time are in [0, 2^63) and block_hash is 32 bytes.
    """
    _check_int63(height, "block height")
    _check_int63(time, "block time")
    if len(block_hash) != HASH_SIZE:
        raise NoteError(f"block hash must be {HASH_SIZE} bytes, got {len(block_hash)}")
    return f"{BLOCK_EXTENSION} {height} {_b64(block_hash)} {time}"


def parse_block_extension(line: str) -> BlockExtension:
    """Parse a line written by block_extension; exactly that spelling is accepted.

    Raises NoteError naming what is malformed.
    """
    fields = line.split(" ")
    if len(fields) != _BLOCK_FIELDS or fields[0] != BLOCK_EXTENSION:
        raise NoteError(
            f"block extension {line!r:.80} is not "
            f"'{BLOCK_EXTENSION} <height> <base64 hash> <unix time>'"
        )
    return BlockExtension(
        _decimal(fields[1], "block height"),
        _hash(fields[2], "block hash"),
        _decimal(fields[3], "block time"),
    )


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, tree size, RFC 6962 root hash and opaque extension lines.

    Raises NoteError if it cannot be written as a checkpoint: an empty origin or extension, a
    newline or other control character in either, a tree size outside [0, 2^63), or a root
    hash that is not 32 bytes.
    """

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin:
            raise NoteError("checkpoint origin is empty")
        _check_int63(self.tree_size, "tree size")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"root hash must be {HASH_SIZE} bytes, got {len(self.root_hash)}")
        for line in (self.origin, *self.extensions):
            if not line:
                raise NoteError("checkpoint extension line is empty")
            if "\n" in line:
                raise NoteError(f"newline in checkpoint line {line!r:.80}")
        check_note_text(self.marshal())

    def marshal(self) -> str:
        """The note text: origin, size, base64 root and extensions, each ending in a newline."""
        lines = (self.origin, str(self.tree_size), _b64(self.root_hash), *self.extensions)
        return "".join(f"{line}\n" for line in lines)

    @property
    def block(self) -> BlockExtension | None:
        """The radledger block extension, or None if the checkpoint has none.

        Raises NoteError if there is more than one, or it is malformed.
        """
        found = [e for e in self.extensions if e.split(" ", 1)[0] == BLOCK_EXTENSION]
        if len(found) > 1:
            raise NoteError(f"more than one {BLOCK_EXTENSION} extension line")
        return parse_block_extension(found[0]) if found else None


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text (the part of the note before the signatures).

    Raises NoteError naming the reason: no final newline, fewer than three lines, an empty
    origin or extension line, a tree size that is not a decimal in [0, 2^63) without leading
    zeros, a root hash that is not canonical base64 of 32 bytes, or a control character.
    """
    if not text.endswith("\n"):
        raise NoteError("missing final newline in checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < _MIN_LINES:
        raise NoteError(f"checkpoint has {len(lines)} lines, needs origin, size and root hash")
    origin, size, root, *extensions = lines
    if not origin:
        raise NoteError("checkpoint origin is empty")
    if "" in extensions:
        raise NoteError("checkpoint extension line is empty (extra blank line?)")
    return Checkpoint(
        origin, _decimal(size, "tree size"), _hash(root, "root hash"), tuple(extensions)
    )


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a signed note, signed by ``signer``."""
    return sign_note(checkpoint.marshal(), [signer])


def open_checkpoint(
    note: str | bytes,
    verifier: Verifier,
    *,
    origin: str,
    now: int | None = None,
    max_future_skew: int = 300,
) -> Checkpoint:
    """Verify a signed checkpoint against the pinned ``verifier`` and ``origin``.

    Signatures by other keys (witnesses, rotated keys) are ignored. If ``now`` (unix seconds)
    is given, a block extension time more than ``max_future_skew`` seconds after it is refused;
    whether time went backwards needs history and is checked by the caller.

    Requires max_future_skew >= 0 (ValueError). Raises SignatureError if the pinned key's
    signature is absent (naming the unknown key IDs seen) or does not verify, and NoteError if
    the note or checkpoint is malformed, the origin is not ``origin``, or the time is in the
    future.
    """
    if max_future_skew < 0:
        raise ValueError("max_future_skew must be >= 0")
    opened = open_note(note, [verifier])
    checkpoint = parse_checkpoint(opened.text)
    if checkpoint.origin != origin:
        raise NoteError(
            f"origin mismatch: expected {origin!r:.200}, got {checkpoint.origin!r:.200}"
        )
    block = checkpoint.block
    if now is not None and block is not None and block.time > now + max_future_skew:
        raise NoteError(
            f"checkpoint timestamp {block.time} is in the future "
            f"(now {now}, allowed skew {max_future_skew}s)"
        )
    return checkpoint
