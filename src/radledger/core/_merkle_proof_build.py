"""Building inclusion and consistency proofs (RFC 9162 2.1.3.1 / 2.1.4.1) from stored nodes.

Storage arrives as a ``get_node(level, index)`` function that returns perfect subtrees only; a
ragged right-border node is rebuilt from the perfect subtrees it decomposes into. Every proof
hash is read or computed once: O(log n) reads, plus at most O(log n) for the ragged edge.
"""

from __future__ import annotations

from radledger.errors import ProofShapeError

from ._compact_range import NodeReader, subtree_root
from ._merkle_hash import EMPTY_ROOT


def inclusion_proof(index: int, tree_size: int, get_node: NodeReader) -> list[bytes]:
    """PATH(index, D[tree_size]): the audit path of leaf ``index``, bottom first.

    Requires ``0 <= index < tree_size``; raises ``ProofShapeError`` otherwise.
    """
    if not 0 <= index < tree_size:
        raise ProofShapeError(
            f"no inclusion proof for leaf {index} in a tree of size {tree_size}", index=index
        )
    return _path_to_root(0, index, tree_size, get_node)


def consistency_proof(size1: int, size2: int, get_node: NodeReader) -> list[bytes]:
    """PROOF(size1, D[size2]): shows the tree of ``size2`` extends the tree of ``size1``.

    Requires ``0 < size1 <= size2`` (empty proof when equal); raises ``ProofShapeError``
    otherwise. A proof from size 0 is refused: RFC 9162 defines them only for ``0 < size1``.
    """
    if not 0 < size1 <= size2:
        raise ProofShapeError(
            f"no consistency proof from size {size1} to size {size2}; requires 0 < size1 <= size2"
        )
    if size1 == size2:
        return []
    # The last perfect subtree of the old tree, [size1 - 2**level, size1), is a node of both
    # trees; its audit path in the new tree proves both roots.
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    path = _path_to_root(level, index, size2, get_node)
    if index == 0:
        # size1 is a power of two: that subtree is the old root, which the verifier holds.
        return path
    return [get_node(level, index), *path]


def root_from_nodes(tree_size: int, get_node: NodeReader) -> bytes:
    """MTH of the first ``tree_size`` leaves from perfect nodes; O(log tree_size) reads.

    Requires ``tree_size >= 0``; raises ``ValueError`` otherwise.
    """
    if tree_size < 0:
        raise ValueError(f"tree size {tree_size} is negative")
    if tree_size == 0:
        return EMPTY_ROOT
    return subtree_root(0, tree_size, get_node)


def _path_to_root(level: int, index: int, tree_size: int, get_node: NodeReader) -> list[bytes]:
    """Siblings of node ``(level, index)`` on its way up to the root of ``tree_size``.

    Requires a perfect node inside the tree: ``(index + 1) << level <= tree_size``.
    A node with no right sibling in this tree is carried up unchanged (RFC 6962 2.1), so
    that level contributes nothing.
    """
    proof: list[bytes] = []
    while index > 0 or (1 << level) < tree_size:
        begin = (index ^ 1) << level
        if begin < tree_size:
            end = min(begin + (1 << level), tree_size)
            proof.append(subtree_root(begin, end, get_node))
        level += 1
        index >>= 1
    return proof
