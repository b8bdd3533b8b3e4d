"""Inclusion and consistency proofs from stored tree nodes (O(log n) reads, no rescan),
and the check of a held checkpoint against the current ledger (``verify --against``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from radledger.core import merkle
from radledger.core.checkpoint import Checkpoint, open_checkpoint
from radledger.core.note import Verifier
from radledger.errors import InputError, ProofError, RollbackError, StorageCorrupt
from radledger.storage.base import LedgerStore

T = TypeVar("T")


@dataclass(frozen=True)
class InclusionResult:
    """An inclusion proof of entry ``index`` in the tree of ``tree_size``."""

    index: int
    tree_size: int
    leaf_hash: bytes
    proof: list[bytes]
    root: bytes


@dataclass(frozen=True)
class ConsistencyResult:
    """A consistency proof from tree size ``size1`` to ``size2``."""

    size1: int
    size2: int
    proof: list[bytes]
    root1: bytes
    root2: bytes


def _prefetched(store: LedgerStore, build: Callable[[merkle.NodeReader], T]) -> T:
    """Run ``build`` with the tree nodes it reads fetched in one query, not one each (a
    round trip per node is what a proof costs on a networked database).

    Which nodes a proof or root needs depends only on indices and sizes, never on hash
    values, so a first pass with placeholder hashes lists them exactly."""
    wanted: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        wanted.append((level, index))
        return bytes(32)

    build(record)
    found = store.nodes_at(wanted)

    def get_node(level: int, index: int) -> bytes:
        node = found.get((level, index))
        if node is None:
            raise StorageCorrupt(f"tree node (level {level}, index {index}) is missing")
        return node

    return build(get_node)


def sealed_size(store: LedgerStore) -> int:
    """The tree size of the latest block (0 if none)."""
    latest = store.latest_block()
    return latest[0].tree_size if latest else 0


def _check_size(store: LedgerStore, size: int, what: str) -> None:
    current = sealed_size(store)
    if not 0 < size <= current:
        raise InputError(f"{what} {size} is outside the sealed tree (sizes 1..{current})")


def inclusion(store: LedgerStore, index: int, tree_size: int | None = None) -> InclusionResult:
    """Prove entry ``index`` is in the tree of ``tree_size`` (default: the latest sealed size).

    The proof is verified before it is returned, so corrupt nodes are never handed out.
    Raises InputError for an index or size outside the tree.
    """
    size = sealed_size(store) if tree_size is None else tree_size
    _check_size(store, size, "tree size")
    if not 0 <= index < size:
        raise InputError(f"index {index} is not in the tree of size {size}")
    leaf, proof, root = _prefetched(store, lambda get_node: (
        get_node(0, index), merkle.inclusion_proof(index, size, get_node),
        merkle.root_from_nodes(size, get_node)))
    merkle.verify_inclusion(leaf, index, size, proof, root)
    return InclusionResult(index, size, leaf, proof, root)


def consistency(store: LedgerStore, size1: int, size2: int) -> ConsistencyResult:
    """Prove the tree of ``size1`` is a prefix of the tree of ``size2``.

    Requires 0 < size1 <= size2 <= the sealed size. Raises InputError otherwise.
    """
    _check_size(store, size1, "size1")
    _check_size(store, size2, "size2")
    if size1 > size2:
        raise InputError(f"size1 {size1} is larger than size2 {size2}")
    proof, root1, root2 = _prefetched(store, lambda get_node: (
        merkle.consistency_proof(size1, size2, get_node),
        merkle.root_from_nodes(size1, get_node), merkle.root_from_nodes(size2, get_node)))
    merkle.verify_consistency(size1, size2, proof, root1, root2)
    return ConsistencyResult(size1, size2, proof, root1, root2)


@dataclass(frozen=True)
class AgainstResult:
    """The held checkpoint is consistent with the ledger's current one."""

    held: Checkpoint
    current: Checkpoint
    proof: list[bytes]


def check_against(store: LedgerStore, held_note: str, pinned: Verifier,
                  origin: str) -> AgainstResult:
    """Check a checkpoint saved earlier (by a client, monitor or reviewer) against the ledger.

    The held note must carry a valid signature of the pinned ledger key for this origin. If the
    ledger is smaller than the held tree it was rolled back; if the consistency proof fails it
    was rewritten. Either raises RollbackError whose message holds both signed checkpoints.
    """
    held = open_checkpoint(held_note, pinned, origin=origin)
    current_note = store.checkpoint()
    if current_note is None:
        raise RollbackError("the ledger has no checkpoint at all", expected=held.tree_size,
                            computed=0)
    current = open_checkpoint(current_note, pinned, origin=origin)
    evidence = f"\n--- held checkpoint ---\n{held_note}--- current checkpoint ---\n{current_note}"
    if current.tree_size < held.tree_size:
        raise RollbackError(
            "rolled back: the ledger is smaller than a checkpoint it signed earlier" + evidence,
            expected=held.tree_size, computed=current.tree_size,
        )
    if current.tree_size == held.tree_size:
        if current.root_hash != held.root_hash:
            raise RollbackError("forked: same tree size, different root" + evidence,
                                expected=held.root_hash, computed=current.root_hash)
        return AgainstResult(held, current, [])
    proof = _prefetched(store, lambda get_node: merkle.consistency_proof(
        held.tree_size, current.tree_size, get_node))
    try:
        merkle.verify_consistency(held.tree_size, current.tree_size, proof, held.root_hash,
                                  current.root_hash)
    except ProofError as exc:
        raise RollbackError("rewritten: the ledger is not an extension of the held "
                            f"checkpoint ({exc.what})" + evidence,
                            expected=exc.expected, computed=exc.computed) from None
    return AgainstResult(held, current, proof)
