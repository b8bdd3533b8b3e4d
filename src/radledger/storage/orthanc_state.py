"""The Orthanc follower's own state: how far it has read each server's change log.

One small SQLite file (``orthanc.sqlite3`` in the ledger home, schema
``orthanc_schema.sql``) with the same discipline as the other stores (WAL, synchronous=FULL,
``BEGIN IMMEDIATE`` writers). Which Orthanc instance became which entry is not kept here but
in the side store's ``files`` table, keyed by the instance's URL: that is where every clear
locator of an ingested file lives, so erasure (``forget_files``) covers it too.
"""

from __future__ import annotations

import time
from pathlib import Path

from radledger.storage.sqlite import WalDatabase, _translated

ORTHANC_APPLICATION_ID = 0x52444C4F  # "RDLO"
STATE_FILE = "orthanc.sqlite3"


class OrthancState(WalDatabase):
    """The follower state of one ledger home."""

    @classmethod
    def open_or_create(cls, path: Path, ledger_id: str) -> OrthancState:
        """Open the state file at ``path``, creating it if absent.

        Raises UnrecognisedDatabase if the file is something else or another ledger's.
        """
        return cls.open_home_file(path, ORTHANC_APPLICATION_ID, "orthanc_schema.sql",
                                  ledger_id, "Orthanc follower state")

    def cursor(self, server: str) -> int:
        """The Seq of the last change of ``server`` fully processed (0: none yet)."""
        with _translated("reading the Orthanc cursor"):
            row = self._conn.execute("SELECT seq FROM cursors WHERE server = ?",
                                     (server,)).fetchone()
        return int(row[0]) if row else 0

    def set_cursor(self, server: str, seq: int) -> None:
        """Durably record that every change of ``server`` up to ``seq`` is processed."""
        with self.write(), _translated("writing the Orthanc cursor"):
            self._conn.execute(
                "INSERT INTO cursors (server, seq, updated) VALUES (?, ?, ?) "
                "ON CONFLICT (server) DO UPDATE SET seq = excluded.seq, "
                "updated = excluded.updated", (server, seq, int(time.time())))
