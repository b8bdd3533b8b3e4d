"""The witness's own SQLite file: what it cosigned per log, and what it refused.

Same discipline as the ledger store (WAL, synchronous=FULL, ``BEGIN IMMEDIATE`` writers); the
schema is ``witness_schema.sql``. The check of a request against the latest cosigned size and
the insert of the new checkpoint run in one write transaction (``store.write()``), which is
what tlog-witness requires to avoid the rollback race it describes.
"""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

from radledger.errors import ForkRefused, UnrecognisedDatabase
from radledger.storage.mounts import refuse_network_filesystem
from radledger.storage.sqlite import FORMAT, WalDatabase, _translated, recognise

WITNESS_APPLICATION_ID = 0x52444C57  # "RDLW"


class WitnessStore(WalDatabase):
    """A witness database in one SQLite file."""

    @classmethod
    def open_or_create(cls, path: Path, witness_name: str) -> WitnessStore:
        """Open the witness database at ``path``, creating it if it does not exist."""
        if not path.exists():
            schema = resources.files("radledger.storage").joinpath(
                "witness_schema.sql").read_text()
            return cls(path, cls._create_file(path, WITNESS_APPLICATION_ID, schema,
                                              {"witness": witness_name}))
        refuse_network_filesystem(path.parent)
        recognise(path, WITNESS_APPLICATION_ID)
        store = cls(path, cls._connect(path))
        fmt = store.meta().get("format")
        if fmt != FORMAT:
            store.close()
            raise UnrecognisedDatabase(f"{path} has format {fmt!r}; this radledger reads "
                                       f"{FORMAT}")
        return store

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        """(tree size, root hash) of the largest checkpoint cosigned for ``origin``, or None."""
        with _translated("reading the latest cosigned checkpoint"):
            row = self._conn.execute(
                "SELECT tree_size, root_hash FROM cosigned WHERE origin = ? "
                "ORDER BY tree_size DESC LIMIT 1", (origin,),
            ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def record_cosigned(self, origin: str, tree_size: int, root_hash: bytes, time: int,
                        checkpoint: str) -> None:
        """Record a cosigned checkpoint. Requires an open write transaction.

        The same size with the same root again is a no-op; another root for a size already
        cosigned raises ForkRefused (the primary key refuses it).
        """
        with _translated("recording a cosigned checkpoint"):
            try:
                self._conn.execute(
                    "INSERT INTO cosigned (origin, tree_size, root_hash, time, checkpoint) "
                    "VALUES (?, ?, ?, ?, ?)", (origin, tree_size, root_hash, time, checkpoint),
                )
            except sqlite3.IntegrityError:
                row = self._conn.execute(
                    "SELECT root_hash FROM cosigned WHERE origin = ? AND tree_size = ?",
                    (origin, tree_size),
                ).fetchone()
                if row is None or bytes(row[0]) != root_hash:
                    raise ForkRefused(f"{origin}: tree size {tree_size} was already cosigned "
                                      "with another root") from None

    def record_refused(self, origin: str, time: int, status: int, reason: str,
                       request: str) -> None:
        """Keep a refused request as evidence. Requires an open write transaction."""
        with _translated("recording a refused checkpoint"):
            self._conn.execute(
                "INSERT INTO refused (origin, time, status, reason, request) "
                "VALUES (?, ?, ?, ?, ?)", (origin, time, status, reason, request),
            )

    def refused(self, origin: str) -> list[tuple[int, int, str, str]]:
        """(time, status, reason, request) of every refused request for ``origin``."""
        with _translated("reading refused checkpoints"):
            return self._conn.execute(
                "SELECT time, status, reason, request FROM refused WHERE origin = ? ORDER BY id",
                (origin,),
            ).fetchall()
