"""Verifying inclusion and consistency proofs (RFC 9162 2.1.3.2 / 2.1.4.2).

The RFC walks the proof bit by bit and discovers its length as it goes. Here the exact length
is computed first from the sizes alone, as transparency-dev/merkle does: the audit path of
leaf ``index`` in a tree of ``size`` has ``inner`` hashes below the point where its path and
the path of the last leaf fork, then one left-sibling ``border`` hash per set bit above it.
A proof that is too long, of the wrong length, or holding a hash that is not 32 bytes is
rejected before any hashing, so the work an untrusted proof can cause is bounded.
"""

from __future__ import annotations

from collections.abc import Sequence

from radledger.errors import ProofShapeError, RootMismatch

from ._merkle_hash import HASH_SIZE, node_hash

MAX_PROOF_LENGTH = 64
"""No proof in a tree of fewer than 2**64 leaves needs more hashes than this."""

MAX_TREE_SIZE = 2**64 - 1
"""Tree sizes are uint64 (RFC 9162)."""


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` gives for leaf ``index`` of a tree of ``tree_size`` leaves.

    Requires ``0 <= index < tree_size`` and exactly as many 32-byte hashes as that shape needs;
    raises ``ProofShapeError`` (with expected and computed lengths) otherwise.
    """
    _check_length_bound(proof)
    _check_tree_size("tree_size", tree_size)
    if not 0 <= index < tree_size:
        raise ProofShapeError(
            f"leaf index {index} is outside a tree of size {tree_size}", index=index
        )
    inner, border = _inclusion_shape(index, tree_size)
    _check_length("inclusion proof", proof, inner + border, index=index)
    _check_hash("leaf hash", leaf_hash, index=index)
    _check_proof_hashes(proof, index=index)
    result = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border(result, proof[inner:])


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows leaf ``index`` with ``leaf_hash`` in the tree with ``root``.

    Requires ``0 <= index < tree_size``. Raises ``ProofShapeError`` for an impossible shape
    (see ``root_from_inclusion_proof``) and ``RootMismatch(expected=root, computed=...)`` when
    the proof leads elsewhere. A tree of size 1 has the empty proof for index 0.
    """
    _check_hash("root", root, index=index)
    computed = root_from_inclusion_proof(leaf_hash, index, tree_size, proof)
    if computed != root:
        raise RootMismatch(
            f"inclusion proof for a tree of size {tree_size} leads to another root",
            index=index,
            expected=root,
            computed=computed,
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1``/``root1``.

    Requires ``0 < size1 <= size2``; ``size1 == size2`` needs an empty proof and equal roots.
    A proof from size 0 is refused: RFC 9162 defines consistency only for ``0 < size1``.
    Raises ``ProofShapeError`` for an impossible shape or wrong proof length and
    ``RootMismatch(expected=the root given, computed=the root the proof yields)`` otherwise.
    """
    _check_length_bound(proof)
    _check_tree_size("size1", size1)
    _check_tree_size("size2", size2)
    if size1 == 0:
        raise ProofShapeError("consistency from size 0 is not defined; requires 0 < size1")
    if size1 > size2:
        raise ProofShapeError(f"size1 {size1} is larger than size2 {size2}")
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    if size1 == size2:
        _check_length("consistency proof between equal sizes", proof, 0)
        if root1 != root2:
            raise RootMismatch(
                f"two trees of size {size1} have different roots", expected=root1, computed=root2
            )
        return

    # The last perfect subtree of the old tree, [size1 - 2**level, size1), is node `index`
    # on `level`; the proof is its audit path in the new tree, preceded by the node itself
    # unless it is the old root (size1 a power of two).
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    inner, border = _inclusion_shape(index, ((size2 - 1) >> level) + 1)
    seeded = index != 0
    _check_length("consistency proof", proof, int(seeded) + inner + border)
    _check_proof_hashes(proof)
    seed, path = (proof[0], proof[1:]) if seeded else (root1, proof)

    # The old tree only has the left siblings; the new one has them all.
    computed1 = _chain_border(_chain_inner_left(seed, path[:inner], index), path[inner:])
    if computed1 != root1:
        raise RootMismatch(
            f"consistency proof leads to another root for size1 {size1}",
            expected=root1,
            computed=computed1,
        )
    computed2 = _chain_border(_chain_inner(seed, path[:inner], index), path[inner:])
    if computed2 != root2:
        raise RootMismatch(
            f"consistency proof leads to another root for size2 {size2}",
            expected=root2,
            computed=computed2,
        )


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """(inner, border) hash counts of the audit path of ``index`` in a tree of ``size``.

    Requires ``0 <= index < size``.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(sibling, seed)
        else:
            seed = node_hash(seed, sibling)
    return seed


def _chain_inner_left(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def _check_length_bound(proof: Sequence[bytes]) -> None:
    if len(proof) > MAX_PROOF_LENGTH:
        raise ProofShapeError(
            f"proof has more hashes than any tree needs (at most {MAX_PROOF_LENGTH})",
            expected=MAX_PROOF_LENGTH,
            computed=len(proof),
        )


def _check_tree_size(name: str, size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ProofShapeError(f"{name} {size} is not a tree size (0 to 2**64 - 1)")


def _check_length(
    what: str, proof: Sequence[bytes], expected: int, *, index: int | None = None
) -> None:
    if len(proof) != expected:
        raise ProofShapeError(
            f"{what} has the wrong number of hashes",
            index=index,
            expected=expected,
            computed=len(proof),
        )


def _check_proof_hashes(proof: Sequence[bytes], *, index: int | None = None) -> None:
    for position, value in enumerate(proof):
        _check_hash(f"proof hash {position}", value, index=index)


def _check_hash(what: str, value: bytes, *, index: int | None = None) -> None:
    if len(value) != HASH_SIZE:
        raise ProofShapeError(
            f"{what} has the wrong number of bytes",
            index=index,
            expected=HASH_SIZE,
            computed=len(value),
        )
