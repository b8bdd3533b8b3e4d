"""Blocks: sealed batches of entries, chained by hash (DESIGN section 1).

A block covers the entries [first_index, tree_size) and commits to the RFC 6962 root at
tree_size. Its hash is SHA-256 of the RFC 8785 canonical header, and each header names the
previous block's hash, so altering any entry changes its block's root and every later block.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from radledger.core import jcs

GENESIS_PREVIOUS = bytes(32)


@dataclass(frozen=True)
class BlockHeader:
    """One block's header. ``sealed_time`` is Unix seconds (the sealer's clock)."""

    height: int
    previous_hash: bytes
    first_index: int
    tree_size: int
    root_hash: bytes
    sealed_time: int

    def canonical(self) -> bytes:
        """The RFC 8785 bytes the block hash is taken over."""
        return jcs.canonicalize({
            "v": 1,
            "height": self.height,
            "previous_hash": self.previous_hash.hex(),
            "first_index": self.first_index,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "sealed_time": self.sealed_time,
        })

    def block_hash(self) -> bytes:
        """SHA-256 of the canonical header."""
        return hashlib.sha256(self.canonical()).digest()


def next_header(previous: BlockHeader | None, tree_size: int, root_hash: bytes,
                now: int) -> BlockHeader:
    """The header sealing entries [previous.tree_size, tree_size) at time ``now``.

    Requires tree_size > previous.tree_size. The sealed time never goes backwards: a clock
    that steps back yields the previous block's time.
    """
    if previous is None:
        return BlockHeader(0, GENESIS_PREVIOUS, 0, tree_size, root_hash, now)
    if tree_size <= previous.tree_size:
        raise ValueError("a block must add at least one entry")
    return BlockHeader(
        previous.height + 1,
        previous.block_hash(),
        previous.tree_size,
        tree_size,
        root_hash,
        max(now, previous.sealed_time),
    )
