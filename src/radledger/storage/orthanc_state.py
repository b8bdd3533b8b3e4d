"""The Orthanc follower's own state: how far it has read each server's change log.

One small SQLite file (``orthanc.sqlite3`` in the ledger home, schema
``orthanc_schema.sql``) with the same discipline as the other stores (WAL, synchronous=FULL,
``BEGIN IMMEDIATE`` writers). Which Orthanc instance became which entry is not kept here but
in the side store's ``files`` table, keyed by the instance's URL: that is where every clear
locator of an ingested file lives, so erasure (``forget_files``) covers it too.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from radledger.errors import UnrecognisedDatabase
from radledger.storage.mounts import refuse_network_filesystem
from radledger.storage.sqlite import FORMAT, WalDatabase, _statements, _translated, recognise

ORTHANC_APPLICATION_ID = 0x52444C4F  # "RDLO"
STATE_FILE = "orthanc.sqlite3"


class OrthancState(WalDatabase):
    """The follower state of one ledger home."""

    @classmethod
    def open_or_create(cls, path: Path, ledger_id: str) -> OrthancState:
        """Open the state file at ``path``, creating it if absent.

        Raises UnrecognisedDatabase if the file is something else or another ledger's.
        """
        schema = resources.files("radledger.storage").joinpath("orthanc_schema.sql").read_text()
        if not path.exists():
            return cls(path, cls._create_file(path, ORTHANC_APPLICATION_ID, schema,
                                              {"ledger_id": ledger_id}))
        refuse_network_filesystem(path.parent)
        recognise(path, ORTHANC_APPLICATION_ID)
        state = cls(path, cls._connect(path))
        meta = state.meta()
        if meta.get("format") != FORMAT or meta.get("ledger_id") != ledger_id:
            state.close()
            raise UnrecognisedDatabase(
                f"{path} is the Orthanc follower state of another ledger or format (ledger "
                f"id {meta.get('ledger_id')!r}); move it away to follow from the start")
        with state.write(), _translated("upgrading the Orthanc follower state"):
            for statement in _statements(schema):
                state._conn.execute(statement)
        return state

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
