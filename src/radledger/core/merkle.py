"""RFC 6962 / RFC 9162 Merkle tree math: hashing, compact ranges, proof building, verifying.

Pure: stdlib ``hashlib`` only, no I/O; storage comes in as a ``get_node(level, index)``
function returning perfect subtree hashes. The pieces live in separate private modules:

- ``_merkle_hash``: ``leaf_hash``, ``node_hash``, ``root`` (MTH)
- ``_compact_range``: ``CompactRange`` (the writer's right border), ``NodeReader``
- ``_merkle_proof_build``: ``inclusion_proof``, ``consistency_proof``, ``root_from_nodes``
- ``_merkle_verify``: ``verify_inclusion``, ``verify_consistency``, ``root_from_inclusion_proof``

Verifiers raise ``ProofShapeError`` for impossible shapes and ``RootMismatch`` (with expected
and computed roots) when a proof leads to another root; both are ``ProofError``.
"""

from __future__ import annotations

from ._compact_range import CompactRange, NewNode, NodeReader
from ._merkle_hash import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash, root
from ._merkle_proof_build import consistency_proof, inclusion_proof, root_from_nodes
from ._merkle_verify import (
    MAX_PROOF_LENGTH,
    MAX_TREE_SIZE,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_PROOF_LENGTH",
    "MAX_TREE_SIZE",
    "CompactRange",
    "NewNode",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion_proof",
    "root_from_nodes",
    "verify_consistency",
    "verify_inclusion",
]
