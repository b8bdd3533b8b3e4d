"""Compact ranges: the perfect subtrees that cover a run of leaves.

Storage keeps only *perfect* subtrees: node ``(level, index)`` is the root of the complete
subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds leaf hashes.
Any prefix ``[0, size)`` of the log is covered by one perfect subtree per set bit of ``size``
(largest first); that list is the *compact range*, the right border a writer extends.
"""

from __future__ import annotations

from collections.abc import Callable

from ._merkle_hash import EMPTY_ROOT, HASH_SIZE, fold_right, node_hash

NodeReader = Callable[[int, int], bytes]
"""``get_node(level, index)``: the hash of the perfect subtree at ``level`` covering leaves
``[index * 2**level, (index + 1) * 2**level)``. Storage comes in as this function."""

NewNode = tuple[int, int, bytes]
"""A perfect node completed by an append: ``(level, index, hash)``."""


def perfect_subtrees(begin: int, end: int) -> list[tuple[int, int]]:
    """The maximal perfect subtrees ``(level, index)`` covering leaves ``[begin, end)``.

    Left to right; at most two per level. Requires ``0 <= begin <= end``.
    """
    nodes: list[tuple[int, int]] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            # A subtree may not start before its own alignment boundary.
            level = min(level, (begin & -begin).bit_length() - 1)
        nodes.append((level, begin >> level))
        begin += 1 << level
    return nodes


def subtree_root(begin: int, end: int, get_node: NodeReader) -> bytes:
    """The RFC 6962 hash of leaves ``[begin, end)`` read from perfect nodes.

    Requires ``[begin, end)`` to be a node of the tree, possibly a ragged right-border one:
    ``0 <= begin < end`` and ``begin`` a multiple of the smallest power of two >= ``end - begin``.
    O(log n) reads.
    """
    return fold_right([get_node(level, index) for level, index in perfect_subtrees(begin, end)])


class CompactRange:
    """The right border of perfect subtrees over leaves ``[0, size)``; what a writer appends to.

    ``append`` returns every perfect node it completes so the caller can store them; ``root``
    is the tree head of the current size. Neither reads storage.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int, hashes: list[bytes]) -> None:
        """Requires one hash per set bit of ``size``, largest subtree first.

        Raises ``ValueError`` otherwise; prefer ``empty()`` and ``from_nodes()``.
        """
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a compact range of size {size} needs {size.bit_count()} hashes")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def empty(cls) -> CompactRange:
        """The compact range of the empty tree."""
        return cls(0, [])

    @classmethod
    def from_nodes(cls, size: int, get_node: NodeReader) -> CompactRange:
        """Read the O(log size) perfect subtree roots that cover ``[0, size)``.

        Requires ``size >= 0`` (raises ``ValueError`` otherwise).
        """
        if size < 0:
            raise ValueError(f"tree size {size} is negative")
        nodes = perfect_subtrees(0, size)
        return cls(size, [get_node(level, index) for level, index in nodes])

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The border's subtree roots, largest (leftmost) first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> list[NewNode]:
        """Add one leaf; return the perfect nodes this completes, the leaf itself first.

        The returned ``(level, index, hash)`` triples are bottom-up; nothing else in the tree
        changes. Requires a 32-byte ``leaf_hash`` (raises ``ValueError`` otherwise).
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
        level, index, current = 0, self._size, leaf_hash
        new_nodes: list[NewNode] = [(level, index, current)]
        # Each set low bit of the old size is a left sibling waiting for this subtree.
        while (self._size >> level) & 1:
            current = node_hash(self._hashes.pop(), current)
            level += 1
            index >>= 1
            new_nodes.append((level, index, current))
        self._hashes.append(current)
        self._size += 1
        return new_nodes

    def root(self) -> bytes:
        """MTH of leaves ``[0, size)``; ``EMPTY_ROOT`` when empty. O(log size) hashes."""
        return fold_right(self._hashes) if self._hashes else EMPTY_ROOT

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, hashes={len(self._hashes)})"
