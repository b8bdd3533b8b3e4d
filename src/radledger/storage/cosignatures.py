"""Witness evidence in the ledger database: the ``cosignatures`` and ``witness_refusals``
tables of ``sqlite_schema.sql`` (created on open for ledgers older than them)."""

from __future__ import annotations

from dataclasses import dataclass

from radledger.storage.sqlite import SQLiteStore, _translated


@dataclass(frozen=True)
class StoredCosignature:
    """One cosignature row: the checkpoint it cosigned, the line, its timestamp."""

    tree_size: int
    witness: str
    line: str
    time: int
    checkpoint: str


@dataclass(frozen=True)
class Refusal:
    """One refusal row: what was sent, what came back, and what was held before."""

    time: int
    witness: str
    status: int
    old_size: int
    tree_size: int
    request: str
    response: str
    held: str | None


_COSIG_COLUMNS = "tree_size, witness, line, time, checkpoint"
_REFUSAL_COLUMNS = "time, witness, status, old_size, tree_size, request, response, held"


def insert_cosignature(store: SQLiteStore, row: StoredCosignature) -> None:
    """Store a cosignature (the first one per witness and size is kept). Requires a write
    transaction."""
    with _translated("storing a cosignature"):
        store._conn.execute(  # noqa: SLF001 - the storage package's own connection
            f"INSERT OR IGNORE INTO cosignatures ({_COSIG_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (row.tree_size, row.witness, row.line, row.time, row.checkpoint),
        )


def insert_refusal(store: SQLiteStore, row: Refusal) -> None:
    """Store a witness's refusal as evidence. Requires a write transaction."""
    with _translated("storing a witness refusal"):
        store._conn.execute(  # noqa: SLF001
            f"INSERT INTO witness_refusals ({_REFUSAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.time, row.witness, row.status, row.old_size, row.tree_size, row.request,
             row.response, row.held),
        )


def cosignatures(store: SQLiteStore, *, tree_size: int | None = None,
                 witness: str | None = None) -> list[StoredCosignature]:
    """Stored cosignatures, optionally of one tree size and/or one witness, by size."""
    clauses: list[str] = []
    args: list[object] = []
    if tree_size is not None:
        clauses.append("tree_size = ?")
        args.append(tree_size)
    if witness is not None:
        clauses.append("witness = ?")
        args.append(witness)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with _translated("reading cosignatures"):
        rows = store._conn.execute(  # noqa: SLF001
            f"SELECT {_COSIG_COLUMNS} FROM cosignatures {where} ORDER BY tree_size, witness",
            args,
        ).fetchall()
    return [StoredCosignature(*row) for row in rows]


def last_cosigned(store: SQLiteStore, witness: str) -> StoredCosignature | None:
    """The cosignature of ``witness`` on the largest tree size, or None."""
    with _translated("reading cosignatures"):
        row = store._conn.execute(  # noqa: SLF001
            f"SELECT {_COSIG_COLUMNS} FROM cosignatures WHERE witness = ? "
            "ORDER BY tree_size DESC LIMIT 1", (witness,),
        ).fetchone()
    return StoredCosignature(*row) if row else None


def refusals(store: SQLiteStore, witness: str | None = None) -> list[Refusal]:
    """Stored refusals, oldest first, optionally of one witness."""
    where, args = ("WHERE witness = ?", [witness]) if witness is not None else ("", [])
    with _translated("reading witness refusals"):
        rows = store._conn.execute(  # noqa: SLF001
            f"SELECT {_REFUSAL_COLUMNS} FROM witness_refusals {where} ORDER BY id", args,
        ).fetchall()
    return [Refusal(*row) for row in rows]
