"""The anchor receipt store: ``anchors.sqlite3`` in the ledger home.

Receipts are not in the ledger database (they are written after the checkpoint they anchor,
by a separate transaction on another system) nor in the side store (which is erasable and
never exported): they get a small file of their own. The schema is ``anchors_schema.sql``.
"""

from __future__ import annotations

from pathlib import Path

from radledger.core.anchor import AnchorReceipt
from radledger.storage.sqlite import WalDatabase, _translated

ANCHORS_APPLICATION_ID = 0x52444C41  # "RDLA"
_COLUMNS = ("chain_id, contract, tx_hash, block_number, block_hash, block_time, log_index, "
            "sender, origin, tree_size, root_hash")


class AnchorStore(WalDatabase):
    """The anchor receipts of one ledger."""

    @classmethod
    def open_or_create(cls, path: Path, ledger_id: str) -> AnchorStore:
        """Open the store at ``path``, creating it if absent.

        Raises UnrecognisedDatabase if the file is something else or another ledger's.
        """
        return cls.open_home_file(path, ANCHORS_APPLICATION_ID, "anchors_schema.sql",
                                  ledger_id, "anchors")

    def add(self, receipt: AnchorReceipt) -> None:
        """Record a receipt (a second one for the same checkpoint and contract is ignored).
        Requires an open write transaction."""
        row = receipt.to_json()
        names = [name.strip() for name in _COLUMNS.split(",")]
        with _translated("recording an anchor receipt"):
            self._conn.execute(
                f"INSERT OR IGNORE INTO anchors ({_COLUMNS}) VALUES "
                f"({', '.join('?' * len(names))})", [row[name] for name in names])

    def find(self, chain_id: int, contract: str, origin: str, tree_size: int,
             root_hash: str) -> AnchorReceipt | None:
        """The receipt of this checkpoint through this contract, or None."""
        with _translated("reading anchor receipts"):
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM anchors WHERE chain_id = ? AND contract = ? AND "
                "origin = ? AND tree_size = ? AND root_hash = ?",
                (chain_id, contract, origin, tree_size, root_hash)).fetchone()
        return AnchorReceipt(*row) if row else None

    def receipts(self, tree_size: int | None = None) -> list[AnchorReceipt]:
        """Every receipt (or those of checkpoints of ``tree_size``), oldest block first."""
        where, args = ("WHERE tree_size = ?", (tree_size,)) if tree_size is not None \
            else ("", ())
        with _translated("reading anchor receipts"):
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM anchors {where} "
                "ORDER BY tree_size, chain_id, block_number, log_index", args).fetchall()
        return [AnchorReceipt(*row) for row in rows]
