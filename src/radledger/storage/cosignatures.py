"""Witness evidence in the ledger database: cosignatures and witness refusals.

Each backend keeps them in its own tables (``cosignatures`` and ``witness_refusals`` in
``sqlite_schema.sql`` and ``postgres_schema.sql``); these functions are the services' one way
to reach them, whatever the backend.
"""

from __future__ import annotations

from radledger.storage.base import LedgerStore, Refusal, StoredCosignature

__all__ = ["Refusal", "StoredCosignature", "cosignatures", "insert_cosignature",
           "insert_refusal", "last_cosigned", "refusals"]


def insert_cosignature(store: LedgerStore, row: StoredCosignature) -> None:
    """Store a cosignature (the first one per witness and size is kept). Requires a write
    transaction."""
    store.insert_cosignature(row)


def insert_refusal(store: LedgerStore, row: Refusal) -> None:
    """Store a witness's refusal as evidence. Requires a write transaction."""
    store.insert_refusal(row)


def cosignatures(store: LedgerStore, *, tree_size: int | None = None,
                 witness: str | None = None) -> list[StoredCosignature]:
    """Stored cosignatures, optionally of one tree size and/or one witness, by size."""
    return store.cosignatures(tree_size=tree_size, witness=witness)


def last_cosigned(store: LedgerStore, witness: str) -> StoredCosignature | None:
    """The cosignature of ``witness`` on the largest tree size, or None."""
    return store.last_cosigned(witness)


def refusals(store: LedgerStore, witness: str | None = None) -> list[Refusal]:
    """Stored refusals, oldest first, optionally of one witness."""
    return store.refusals(witness)
