"""Reads the HTTP API serves: one entry, an inclusion proof, the checkpoint.

Each takes the store (any connection: reads never block the writer) and returns plain data;
an index beyond the sealed tree is ``NotFound`` rather than a bad request, since a client
polling a growing log asks for it before it exists.
"""

from __future__ import annotations

import json
from typing import Any

from radledger.core.block import BlockHeader
from radledger.errors import NotFound
from radledger.ledger import proofs
from radledger.storage.base import LedgerStore


def entry_json(store: LedgerStore, index: int) -> dict[str, Any]:
    """``{"index", "leaf_hash", "entry", "block"}`` of a sealed entry (as ``show --json``).

    Raises NotFound beyond the sealed tree.
    """
    leaf, data, block = sealed_entry(store, index)
    return {"index": index, "leaf_hash": leaf.hex(), "entry": json.loads(data),
            "block": block.height if block else None}


def sealed_entry(store: LedgerStore, index: int) -> tuple[bytes, bytes, BlockHeader | None]:
    """(leaf hash, entry bytes, block) of a sealed entry. Raises NotFound beyond the sealed
    tree."""
    size = proofs.sealed_size(store)
    found = store.entry(index) if 0 <= index < size else None
    if found is None:
        raise NotFound(f"no entry {index} (ledger size {size})")
    return found[0], found[1], store.block_containing(index)


def inclusion_json(store: LedgerStore, index: int, tree_size: int | None) -> dict[str, Any]:
    """An inclusion proof of ``index`` as ``proof inclusion --json`` prints it.

    Raises NotFound for an index beyond the sealed tree, InputError for an impossible size.
    """
    size = proofs.sealed_size(store)
    if index >= size:
        raise NotFound(f"no entry {index} (ledger size {size})")
    result = proofs.inclusion(store, index, tree_size)
    return {"index": result.index, "tree_size": result.tree_size,
            "leaf_hash": result.leaf_hash.hex(), "proof": [h.hex() for h in result.proof],
            "root": result.root.hex()}
