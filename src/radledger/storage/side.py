"""The side store: local, erasable state kept beside the ledger, never in it.

It holds a lookup index derived from the ledger (pseudonymous keys and hashes to entry
indices, rebuildable at any time) and the clear paths of ingested files. It lives in its own
SQLite file so that the ledger database holds evidence only; losing the side store loses no
evidence. The schema is ``side_schema.sql``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from radledger.storage.sqlite import WalDatabase, _translated

SIDE_APPLICATION_ID = 0x52444C53  # "RDLS"
_IN_LIMIT = 500


class SideStore(WalDatabase):
    """The side store of one ledger (``side.sqlite3`` in its home)."""

    @classmethod
    def open_or_create(cls, path: Path, ledger_id: str) -> SideStore:
        """Open the side store at ``path``, creating it if absent; deleted content is
        overwritten on disk (``secure_delete``), for erasure.

        Raises UnrecognisedDatabase if the file is something else or another ledger's.
        """
        store = cls.open_home_file(path, SIDE_APPLICATION_ID, "side_schema.sql", ledger_id,
                                   "side store")
        with _translated("opening the side store"):
            store._conn.execute("PRAGMA secure_delete = ON")
        return store

    def reopener(self, ledger_id: str) -> Callable[[], SideStore]:
        """A factory of an independent connection to this side store (for workers)."""
        path = self.path
        return lambda: SideStore.open_or_create(path, ledger_id)

    # -- the lookup index ------------------------------------------------------------------
    def indexed_to(self) -> int:
        """How many ledger entries the lookup index covers."""
        with _translated("reading the side store"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'indexed_to'").fetchone()
        return int(row[0]) if row else 0

    def add_lookups(self, rows: Iterable[tuple[bytes, int]], indexed_to: int) -> None:
        """Record (key, index) rows and that entries below ``indexed_to`` are indexed.
        Requires an open write transaction."""
        with _translated("writing the lookup index"):
            self._conn.executemany("INSERT OR IGNORE INTO lookup (key, idx) VALUES (?, ?)",
                                   rows)
            self._conn.execute("UPDATE meta SET value = ? WHERE key = 'indexed_to'",
                               (str(indexed_to),))

    def reset_lookups(self, version: str) -> None:
        """Empty the lookup index, to be rebuilt under ``version``. Requires an open write
        transaction."""
        with _translated("resetting the lookup index"):
            self._conn.execute("DELETE FROM lookup")
            self._conn.execute("UPDATE meta SET value = '0' WHERE key = 'indexed_to'")
            self._conn.execute("INSERT INTO meta (key, value) VALUES ('index_version', ?) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                               (version,))

    def lookup(self, keys: list[bytes]) -> dict[bytes, list[int]]:
        """The indices of the entries naming each key (ascending); absent keys are left out."""
        found: dict[bytes, list[int]] = {}
        with _translated("reading the lookup index"):
            for start in range(0, len(keys), _IN_LIMIT):
                part = keys[start:start + _IN_LIMIT]
                marks = ",".join("?" * len(part))
                for key, idx in self._conn.execute(
                    f"SELECT key, idx FROM lookup WHERE key IN ({marks}) ORDER BY idx", part,
                ):
                    found.setdefault(bytes(key), []).append(int(idx))
        return found

    # -- where files were found ------------------------------------------------------------
    def set_files(self, rows: Iterable[tuple[str, int]]) -> None:
        """Record that each path's latest registration is the entry at idx."""
        with _translated("writing file paths"):
            self._conn.executemany(
                "INSERT INTO files (path, idx) VALUES (?, ?) "
                "ON CONFLICT (path) DO UPDATE SET idx = excluded.idx", rows)

    def files_under(self, root: str) -> dict[str, int]:
        """Recorded paths equal to ``root`` or inside the folder ``root`` (absolute), with
        their entry indices."""
        base = root.rstrip("/")
        with _translated("reading file paths"):
            rows = self._conn.execute(
                "SELECT path, idx FROM files WHERE path = ? OR (path > ? AND path < ?)",
                (root, base + "/", base + "0"),  # "0" sorts right after "/"
            ).fetchall()
        return {str(path): int(idx) for path, idx in rows}

    # -- openings of commitments -------------------------------------------------------------
    def add_opening(self, commitment: str, salt: bytes, value: bytes | None,
                    patient: str | None) -> None:
        """Keep what opens ``commitment``. Requires an open write transaction."""
        with _translated("recording a commitment's opening"):
            self._conn.execute(
                "INSERT OR IGNORE INTO openings (commitment, salt, value, patient) "
                "VALUES (?, ?, ?, ?)", (commitment, salt, value, patient))

    def opening(self, commitment: str) -> tuple[bytes, bytes | None] | None:
        """(salt, value) of a commitment, or None if never kept or erased."""
        with _translated("reading a commitment's opening"):
            row = self._conn.execute("SELECT salt, value FROM openings WHERE commitment = ?",
                                     (commitment,)).fetchone()
        return (bytes(row[0]), None if row[1] is None else bytes(row[1])) if row else None

    def erase_patient(self, patient: str) -> list[str]:
        """Delete the openings about a patient pseudonym; returns their commitments, sorted.
        Requires an open write transaction; call ``purge`` after it commits."""
        with _translated("erasing openings"):
            rows = self._conn.execute(
                "SELECT commitment FROM openings WHERE patient = ? ORDER BY commitment",
                (patient,)).fetchall()
            self._conn.execute("DELETE FROM openings WHERE patient = ?", (patient,))
        return [str(r[0]) for r in rows]

    def paths_of(self, indices: list[int]) -> dict[int, str]:
        """A recorded path for each of these entries that has one."""
        found: dict[int, str] = {}
        with _translated("reading file paths"):
            for start in range(0, len(indices), _IN_LIMIT):
                part = indices[start:start + _IN_LIMIT]
                marks = ",".join("?" * len(part))
                for path, idx in self._conn.execute(
                        f"SELECT path, idx FROM files WHERE idx IN ({marks}) ORDER BY path",
                        part):
                    found.setdefault(int(idx), str(path))
        return found

    def forget_files(self, indices: list[int]) -> int:
        """Delete the recorded paths of these entries (folder names may identify a patient);
        returns how many. Requires an open write transaction."""
        removed = 0
        with _translated("erasing file paths"):
            for start in range(0, len(indices), _IN_LIMIT):
                part = indices[start:start + _IN_LIMIT]
                marks = ",".join("?" * len(part))
                removed += self._conn.execute(
                    f"DELETE FROM files WHERE idx IN ({marks})", part).rowcount
        return removed

    def dump(self) -> tuple[list[tuple[str, int]], list[tuple[str, bytes, bytes | None,
                                                              str | None]]]:
        """Every recorded file path (path, idx) and opening (commitment, salt, value,
        patient): what ``radledger migrate`` copies (the lookup index is rebuilt instead)."""
        with _translated("reading the side store"):
            files = self._conn.execute("SELECT path, idx FROM files ORDER BY path").fetchall()
            openings = self._conn.execute(
                "SELECT commitment, salt, value, patient FROM openings ORDER BY commitment"
            ).fetchall()
        return ([(str(p), int(i)) for p, i in files],
                [(str(c), bytes(s), None if v is None else bytes(v), p) for c, s, v, p in openings])

    def purge(self) -> None:
        """Push erased content out of the write-ahead log and free pages (secure_delete has
        overwritten the rows in the database file itself)."""
        with _translated("purging erased content"):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
