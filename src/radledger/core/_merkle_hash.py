"""RFC 6962 / RFC 9162 section 2.1 hashing: leaf and interior node hashes, and the tree head.

Leaves and interior nodes are hashed with different one-byte prefixes (0x00 and 0x01) so that
no interior node can be passed off as a leaf (second-preimage resistance, RFC 6962 section 2.1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
"""Bytes in every hash of the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}): the root of the empty tree, SHA-256 of the empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one log entry."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH, the Merkle Tree Hash of a list of leaf hashes (``EMPTY_ROOT`` for none).

    Pairs neighbours level by level and carries an unpaired last node up unchanged, which
    builds exactly the tree of RFC 6962 section 2.1 (left subtree = largest power of two).
    O(n) hashes; use ``CompactRange`` or ``root_from_nodes`` to avoid holding every leaf.
    """
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            parents.append(level[-1])
        level = parents
    return level[0]


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hash a left-to-right run of perfect subtree roots of strictly decreasing size.

    That run is the decomposition of a range that starts on a tree-node boundary, so the
    result is the RFC 6962 hash of that range: h0 . (h1 . (h2 . ...)).
    Requires a non-empty sequence.
    """
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result
