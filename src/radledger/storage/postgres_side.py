"""The side store in a PostgreSQL ledger's database: the ``side_*`` tables of
``postgres_schema.sql``, shared by every process using the ledger (see storage/side.py for
what the side store holds and why it is not evidence)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Self

import psycopg

from radledger.errors import UnrecognisedDatabase
from radledger.storage.postgres import PgDatabase, PostgresStore, Row

_SIDE_LOCK = 0x52444C53  # advisory lock key of the side store's writer ("RDLS")


class PostgresSideStore(PgDatabase):
    """The side store's tables (``side_*``) in the ledger's PostgreSQL database.

    Writers are serialised by a transaction-scoped advisory lock, as SQLite's single writer
    serialises them, so "catch up the lookup index" never runs twice at once.
    """

    @classmethod
    def connect(cls, url: str, ledger_id: str) -> PostgresSideStore:
        """A side store with a pool of its own (for a worker process)."""
        store = cls(url, cls._make_pool(url, max_size=2))
        try:
            meta = PostgresStore(url, store._pool, owns_pool=False).meta()
            if meta.get("ledger_id") != ledger_id:
                raise UnrecognisedDatabase(f"{store.path} holds another ledger")
        except BaseException:
            store.close()
            raise
        return store

    def reopener(self, ledger_id: str) -> Callable[[], PostgresSideStore]:
        """A factory of an independent connection to this side store (for workers)."""
        url = self.url
        return lambda: PostgresSideStore.connect(url, ledger_id)

    def meta(self) -> dict[str, str]:
        """The side store's meta (indexed_to, index_version) plus the ledger's ledger_id."""
        rows = self._all("reading the side store", "SELECT key, value FROM side_meta "
                         "UNION ALL SELECT key, value FROM meta WHERE key = 'ledger_id'")
        return {str(k): str(v) for k, v in rows}

    @contextmanager
    def write(self) -> Iterator[Self]:
        """One side-store write transaction, serialised with every other side writer."""
        def lock(conn: psycopg.Connection[Row]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SIDE_LOCK,))

        with self._transaction("BEGIN", "starting a side-store write", lock) as store:
            yield store

    def indexed_to(self) -> int:
        """How many ledger entries the lookup index covers."""
        row = self._one("reading the side store",
                        "SELECT value FROM side_meta WHERE key = 'indexed_to'")
        return int(row[0]) if row else 0

    def add_lookups(self, rows: Iterable[tuple[bytes, int]], indexed_to: int) -> None:
        """Record (key, index) rows and that entries below ``indexed_to`` are indexed."""
        self._many("writing the lookup index",
                   "INSERT INTO side_lookup (key, idx) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                   list(rows))
        self._one("writing the lookup index",
                  "UPDATE side_meta SET value = %s WHERE key = 'indexed_to' RETURNING 1",
                  (str(indexed_to),))

    def reset_lookups(self, version: str) -> None:
        """Empty the lookup index, to be rebuilt under ``version``."""
        with self._conn("resetting the lookup index") as conn:
            conn.execute("DELETE FROM side_lookup")
            conn.execute("UPDATE side_meta SET value = '0' WHERE key = 'indexed_to'")
            conn.execute("INSERT INTO side_meta (key, value) VALUES ('index_version', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (version,))

    def lookup(self, keys: list[bytes]) -> dict[bytes, list[int]]:
        """The indices of the entries naming each key (ascending); absent keys left out."""
        found: dict[bytes, list[int]] = {}
        if not keys:
            return found
        for key, idx in self._all("reading the lookup index",
                                  "SELECT key, idx FROM side_lookup WHERE key = ANY(%s) "
                                  "ORDER BY idx", (keys,)):
            found.setdefault(bytes(key), []).append(int(idx))
        return found

    def set_files(self, rows: Iterable[tuple[str, int]]) -> None:
        """Record that each path's latest registration is the entry at idx."""
        self._many("writing file paths",
                   "INSERT INTO side_files (path, idx) VALUES (%s, %s) "
                   "ON CONFLICT (path) DO UPDATE SET idx = excluded.idx", list(rows))

    def files_under(self, root: str) -> dict[str, int]:
        """Recorded paths equal to ``root`` or inside the folder ``root``."""
        base = root.rstrip("/")
        return {str(p): int(i) for p, i in self._all(
            "reading file paths",
            "SELECT path, idx FROM side_files WHERE path = %s OR "
            "(path COLLATE \"C\" > %s AND path COLLATE \"C\" < %s)",
            (root, base + "/", base + "0"))}

    def add_opening(self, commitment: str, salt: bytes, value: bytes | None,
                    patient: str | None) -> None:
        """Keep what opens ``commitment``."""
        self._one("recording a commitment's opening",
                  "INSERT INTO side_openings (commitment, salt, value, patient) "
                  "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                  (commitment, salt, value, patient))

    def opening(self, commitment: str) -> tuple[bytes, bytes | None] | None:
        """(salt, value) of a commitment, or None if never kept or erased."""
        row = self._one("reading a commitment's opening",
                        "SELECT salt, value FROM side_openings WHERE commitment = %s",
                        (commitment,))
        return (bytes(row[0]), None if row[1] is None else bytes(row[1])) if row else None

    def erase_patient(self, patient: str) -> list[str]:
        """Delete the openings about a patient pseudonym; returns their commitments, sorted.
        Call ``purge`` after the transaction commits."""
        rows = self._all("erasing openings",
                         "DELETE FROM side_openings WHERE patient = %s RETURNING commitment",
                         (patient,))
        return sorted(str(r[0]) for r in rows)

    def paths_of(self, indices: list[int]) -> dict[int, str]:
        """A recorded path for each of these entries that has one."""
        found: dict[int, str] = {}
        for path, idx in self._all("reading file paths",
                                   "SELECT path, idx FROM side_files WHERE idx = ANY(%s) "
                                   "ORDER BY path", (indices,)):
            found.setdefault(int(idx), str(path))
        return found

    def forget_files(self, indices: list[int]) -> int:
        """Delete the recorded paths of these entries; returns how many."""
        return len(self._all("erasing file paths",
                             "DELETE FROM side_files WHERE idx = ANY(%s) RETURNING 1",
                             (indices,)))

    def purge(self) -> None:
        """Rewrite the side tables (VACUUM FULL), so erased rows leave the table files.

        The server's write-ahead log still holds them until its segments are recycled, and
        base backups and replicas hold what they copied: the README says what an operator
        must do about those."""
        with self._conn("purging erased content") as conn:
            conn.execute("VACUUM FULL side_openings, side_files")
            try:  # the old table files are unlinked at the next checkpoint
                conn.execute("CHECKPOINT")
            except psycopg.errors.InsufficientPrivilege:
                pass  # needs pg_checkpoint or superuser; the server's own checkpoint follows
