"""C2SP ``tlog-proof`` (c2sp.org/tlog-proof): an offline-verifiable proof that an entry is
in a log, as text: a header line, optional extra data, the index, the RFC 6962 inclusion
proof (one base64 hash a line, leaf's sibling first) and, after an empty line, the signed
checkpoint verbatim.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from radledger.errors import ProofShapeError

HEADER = "c2sp.org/tlog-proof@v1"
HASH_SIZE = 32
MAX_PROOF_HASHES = 64  # a tree of 2^63 entries needs 63


@dataclass(frozen=True)
class TlogProof:
    """A parsed proof: the entry's index, its inclusion proof and the checkpoint note."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None


def format_tlog_proof(index: int, proof: list[bytes], checkpoint: str,
                      extra: bytes | None = None) -> str:
    """The proof as text. Requires index >= 0 and 32-byte hashes."""
    lines = [HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode("ascii"))
    lines.append(f"index {index}")
    lines += [base64.b64encode(h).decode("ascii") for h in proof]
    return "\n".join(lines) + "\n\n" + checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a proof. Raises ProofShapeError naming what is malformed (the checkpoint itself
    is checked when it is opened)."""
    head, sep, checkpoint = text.partition("\n\n")
    if not sep or not checkpoint:
        raise ProofShapeError("tlog-proof: no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise ProofShapeError(f"tlog-proof: first line must be {HEADER!r}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _b64(rest[0][6:], "extra data")
        rest = rest[1:]
    if not rest or not rest[0].startswith("index "):
        raise ProofShapeError("tlog-proof: missing 'index' line")
    digits = rest[0][6:]
    if not digits.isdigit() or not digits.isascii() or (digits != "0" and digits[0] == "0"):
        raise ProofShapeError(f"tlog-proof: index {digits!r:.30} is not a decimal without "
                              "leading zeroes")
    hashes = tuple(_b64(line, "proof hash") for line in rest[1:])
    if len(hashes) > MAX_PROOF_HASHES or any(len(h) != HASH_SIZE for h in hashes):
        raise ProofShapeError("tlog-proof: proof lines must be at most 64 SHA-256 hashes")
    return TlogProof(int(digits), hashes, checkpoint, extra)


def _b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProofShapeError(f"tlog-proof: {what} is not base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ProofShapeError(f"tlog-proof: {what} is not canonical base64")
    return raw
