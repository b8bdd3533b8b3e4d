"""The embedded SQLite store (DESIGN section 2): WAL, synchronous=FULL, one writer at a time.

Writes happen inside ``store.write()``, a ``BEGIN IMMEDIATE`` transaction, so concurrent
processes queue for the writer instead of failing; readers never block it. The schema lives in
``sqlite_schema.sql`` beside this file. Every sqlite3 error is translated in one place
(``_translated``) into radledger's storage errors.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Self

from radledger.core.block import BlockHeader
from radledger.errors import (
    StorageBusy,
    StorageCorrupt,
    StorageError,
    StorageFull,
    UnrecognisedDatabase,
    UnsafeStorage,
)
from radledger.storage.base import EntryRow, NodeRow, Refusal, StoredCosignature
from radledger.storage.mounts import refuse_network_filesystem

__all__ = ["EntryRow", "NodeRow", "SQLiteStore", "WalDatabase"]

APPLICATION_ID = 0x52444C47  # "RDLG"
FORMAT = "1"
BUSY_TIMEOUT_S = 60.0
_SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
_APP_ID_AT = 68
_IN_LIMIT = 500  # values bound in one IN (...) list

_COSIG_COLUMNS = "tree_size, witness, line, time, checkpoint"
_REFUSAL_COLUMNS = "time, witness, status, old_size, tree_size, request, response, held"

_BLOCK_COLUMNS = "height, previous_hash, first_index, tree_size, root_hash, sealed_time"


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Map sqlite3 errors to radledger's storage errors, naming what was being done."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _translate(exc, action) from exc


def _translate(exc: sqlite3.Error, action: str) -> StorageError:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    text = f"{action}: {exc}"
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StorageCorrupt(f"storage corrupt while {text}; writes refused")
    if code == sqlite3.SQLITE_FULL:
        return StorageFull(f"storage full while {text}; nothing was written")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StorageBusy(f"the ledger writer stayed busy while {text}")
    if code == sqlite3.SQLITE_IOERR:
        return StorageError(
            f"I/O error while {text}; the write was not acknowledged. Stop, check the disk, "
            "and run `radledger verify` after restarting"
        )
    return StorageError(f"storage error while {text}")


def _row_to_header(row: tuple[int, bytes, int, int, bytes, int]) -> BlockHeader:
    return BlockHeader(row[0], row[1], row[2], row[3], row[4], row[5])


class WalDatabase:
    """One SQLite file in WAL mode with synchronous=FULL: a writer transaction, snapshot
    reads. The ledger store and the side store both are one."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._writer_fd: int | None = None  # <path>-writer, flocked around each write
        self._file = _file_key(path)
        if self._file is not None:
            _OPEN_FILES[self._file] = _OPEN_FILES.get(self._file, 0) + 1

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        """Connect to an existing file and put it in WAL, synchronous=FULL."""
        with _translated(f"opening {path}"):
            conn = sqlite3.connect(
                f"file:{path}?mode=rw", uri=True, isolation_level=None,
                timeout=BUSY_TIMEOUT_S, check_same_thread=False,
            )
        try:
            with _translated(f"opening {path}"):
                journal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            if str(journal).lower() != "wal":
                raise UnsafeStorage(
                    f"{path}: SQLite refused WAL journal mode (got {journal!r}); radledger "
                    "needs WAL for crash safety with concurrent readers"
                )
            if sync < 2:  # noqa: PLR2004 - 2 is FULL in SQLite's numbering
                raise UnsafeStorage(f"{path}: synchronous=FULL could not be set")
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _create_file(path: Path, application_id: int, schema: str,
                     meta: dict[str, str]) -> sqlite3.Connection:
        """Create ``path`` (which must not exist) with ``schema`` and ``meta`` rows."""
        if path.exists():
            raise StorageError(f"{path} already exists; refusing to overwrite a database")
        refuse_network_filesystem(path.parent)
        with _translated(f"creating {path}"):
            conn = sqlite3.connect(f"file:{path}?mode=rwc", uri=True, isolation_level=None)
            # before WAL, so the mark lands in the main file's header, where open() reads it
            conn.execute(f"PRAGMA application_id = {application_id}")
            conn.close()
        conn = WalDatabase._connect(path)
        with _translated("creating the schema"):
            conn.execute("BEGIN IMMEDIATE")
            # not executescript(): it commits on its own, outside this transaction
            for statement in _statements(schema):
                conn.execute(statement)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                             [("format", FORMAT), *sorted(meta.items())])
            conn.execute("COMMIT")
        return conn

    @classmethod
    def open_home_file(cls, path: Path, application_id: int, schema_file: str,
                       ledger_id: str, what: str) -> Self:
        """Open one of a ledger home's own stores (side store, tokens, anchors, follower
        state), creating it if absent; its schema, idempotent, is applied on every open, so a
        store made by an earlier radledger gains the tables added since.

        Raises UnrecognisedDatabase if the file is something else, or ``what`` of another
        ledger.
        """
        schema = resources.files("radledger.storage").joinpath(schema_file).read_text()
        if not path.exists():
            return cls(path, cls._create_file(path, application_id, schema,
                                              {"ledger_id": ledger_id}))
        refuse_network_filesystem(path.parent)
        recognise(path, application_id)
        store = cls(path, cls._connect(path))
        meta = store.meta()
        if meta.get("format") != FORMAT or meta.get("ledger_id") != ledger_id:
            store.close()
            raise UnrecognisedDatabase(
                f"{path} holds the {what} of another ledger (ledger id "
                f"{meta.get('ledger_id')!r}, not {ledger_id!r}); move it away to start over")
        with store.write(), _translated(f"upgrading the {what}"):
            for statement in _statements(schema):
                store._conn.execute(statement)
        return store

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
        if self._writer_fd is not None:
            os.close(self._writer_fd)
            self._writer_fd = None
        if self._file is not None and _OPEN_FILES.get(self._file, 0) > 0:
            _OPEN_FILES[self._file] -= 1
            self._file = None

    def meta(self) -> dict[str, str]:
        """The meta table (format, origin, ledger id)."""
        with _translated("reading meta"):
            return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    @contextmanager
    def write(self) -> Iterator[Self]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT); rolled back on any error.

        Writers of every process first queue on an flock of ``<database>-writer``: the kernel
        wakes a waiter the moment the lock is released, where SQLite's busy handler sleeps up
        to 100 ms between tries, so under contention (``serve --workers N``) one process
        could take the writer again and again while another waited seconds. SQLite's own
        lock stays the guarantee: a writer without the flock is still serialised by it, and
        waits up to BUSY_TIMEOUT_S before StorageBusy.
        """
        with self._writer_turn():
            with self._sqlite_write():
                yield self

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        if self._writer_fd is None:
            try:
                self._writer_fd = os.open(f"{self.path}-writer", os.O_RDWR | os.O_CREAT,
                                          0o600)
            except OSError as exc:
                raise StorageError(f"cannot open the writer lock of {self.path}: "
                                   f"{exc.strerror}") from None
        fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writer_fd, fcntl.LOCK_UN)

    @contextmanager
    def _sqlite_write(self) -> Iterator[None]:
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if (exc.sqlite_errorcode & 0xFF) != sqlite3.SQLITE_BUSY or (
                    time.monotonic() > deadline
                ):
                    raise _translate(exc, "starting a write") from exc
                time.sleep(0.01)
        try:
            yield
            with _translated("committing"):
                self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the original error is what matters; SQLite rolls back on close
            raise

    @contextmanager
    def snapshot(self) -> Iterator[Self]:
        """A read transaction: every read inside sees one consistent state,
        whatever writers commit meanwhile (WAL snapshot isolation)."""
        with _translated("starting a read"):
            self._conn.execute("BEGIN DEFERRED")
            self._conn.execute("SELECT 1 FROM meta LIMIT 1").fetchone()  # takes the snapshot
        try:
            yield self
        finally:
            if self._conn.in_transaction:
                with _translated("ending a read"):
                    self._conn.execute("COMMIT")


class SQLiteStore(WalDatabase):
    """A radledger database in one SQLite file."""

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, meta: dict[str, str]) -> SQLiteStore:
        """Create a new database at ``path`` (which must not exist) holding ``meta``."""
        schema = resources.files("radledger.storage").joinpath("sqlite_schema.sql").read_text()
        return cls(path, cls._create_file(path, APPLICATION_ID, schema, meta))

    @classmethod
    def open(cls, path: Path) -> SQLiteStore:
        """Open an existing radledger database, refusing anything else without changing it."""
        if not path.is_file():
            raise UnrecognisedDatabase(f"no ledger database at {path}")
        refuse_network_filesystem(path.parent)
        recognise(path)
        conn = cls._connect(path)
        try:
            with _translated(f"opening {path}"):
                row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except StorageError:
            conn.close()
            raise
        fmt = row[0] if row else None
        if fmt != FORMAT:
            conn.close()
            raise UnrecognisedDatabase(f"{path} has format {fmt!r}; this radledger reads {FORMAT}")
        store = cls(path, conn)
        try:
            store._add_later_tables()
        except BaseException:
            conn.close()
            raise
        return store

    def _add_later_tables(self) -> None:
        """Run the schema's ``IF NOT EXISTS`` statements (tables added after format 1, e.g.
        witness cosignatures) when one of their objects is missing, in a write transaction.
        When all exist nothing is written, so opening never queues for the writer."""
        schema = resources.files("radledger.storage").joinpath("sqlite_schema.sql").read_text()
        later = [s for s in _statements(schema) if "IF NOT EXISTS" in s]
        names = {m.group(1) for s in later if (m := re.search(r"IF NOT EXISTS (\w+)", s))}
        with _translated("reading the schema"):
            have = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master")}
        if not names <= have:
            with self.write(), _translated("adding tables to an older ledger"):
                for statement in later:
                    self._conn.execute(statement)

    def insert_entries(self, rows: list[EntryRow]) -> None:
        """Insert sequenced entries. Requires an open write transaction."""
        with _translated("storing entries"):
            self._conn.executemany(
                "INSERT INTO entries (idx, kind, leaf_hash, data) VALUES (?, ?, ?, ?)", rows
            )

    def insert_nodes(self, rows: list[NodeRow]) -> None:
        """Insert perfect tree nodes. Requires an open write transaction."""
        with _translated("storing tree nodes"):
            self._conn.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", rows)

    def insert_block(self, header: BlockHeader, note: str) -> None:
        """Insert a block and its signed checkpoint. Requires an open write transaction."""
        with _translated("sealing a block"):
            self._conn.execute(
                f"INSERT INTO blocks ({_BLOCK_COLUMNS}, block_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (header.height, header.previous_hash, header.first_index, header.tree_size,
                 header.root_hash, header.sealed_time, header.block_hash()),
            )
            self._conn.execute(
                "INSERT INTO checkpoints (tree_size, height, note) VALUES (?, ?, ?)",
                (header.tree_size, header.height, note),
            )

    # -- reads -----------------------------------------------------------------------------
    def integrity_problems(self, limit: int = 20) -> list[str]:
        """SQLite's own full check of pages, records and indexes (PRAGMA integrity_check);
        empty when the file is sound."""
        with _translated("checking storage integrity"):
            rows = self._conn.execute(f"PRAGMA integrity_check({int(limit)})").fetchall()
        messages = [str(row[0]) for row in rows]
        return [] if messages == ["ok"] else messages

    def entry_count(self) -> int:
        """One past the highest sequenced index (0 for an empty ledger)."""
        with _translated("counting entries"):
            row = self._conn.execute("SELECT coalesce(max(idx) + 1, 0) FROM entries").fetchone()
        return int(row[0])

    def entry(self, index: int) -> tuple[bytes, bytes] | None:
        """(leaf_hash, data) of one entry, or None."""
        with _translated(f"reading entry {index}"):
            row = self._conn.execute(
                "SELECT leaf_hash, data FROM entries WHERE idx = ?", (index,)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def entries(self, start: int, end: int) -> list[EntryRow]:
        """Entries with start <= idx < end, in index order."""
        with _translated(f"reading entries {start}..{end}"):
            return self._conn.execute(
                "SELECT idx, kind, leaf_hash, data FROM entries WHERE idx >= ? AND idx < ? "
                "ORDER BY idx", (start, end),
            ).fetchall()

    def key_entries(self, since: int = 0) -> list[tuple[int, bytes]]:
        """(idx, data) of every key.registered / key.revoked entry at idx >= since."""
        with _translated("reading key entries"):
            return self._conn.execute(
                "SELECT idx, data FROM entries WHERE kind IN ('key.registered', 'key.revoked') "
                "AND idx >= ? ORDER BY idx", (since,),
            ).fetchall()

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        """The index of the entry with this leaf hash, or None."""
        with _translated("looking up a leaf hash"):
            row = self._conn.execute(
                "SELECT idx FROM entries WHERE leaf_hash = ?", (leaf_hash,)
            ).fetchone()
        return int(row[0]) if row else None

    def find_leaves(self, leaf_hashes: list[bytes]) -> dict[bytes, int]:
        """{leaf_hash: index} for those of ``leaf_hashes`` that are stored."""
        found: dict[bytes, int] = {}
        with _translated("looking up leaf hashes"):
            for start in range(0, len(leaf_hashes), _IN_LIMIT):
                chunk = leaf_hashes[start:start + _IN_LIMIT]
                marks = ",".join("?" * len(chunk))
                found.update(self._conn.execute(
                    f"SELECT leaf_hash, idx FROM entries WHERE leaf_hash IN ({marks})", chunk
                ).fetchall())
        return found

    def node(self, level: int, index: int) -> bytes | None:
        """The stored perfect node (level, index), or None."""
        with _translated("reading a tree node"):
            row = self._conn.execute(
                "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        return row[0] if row else None

    def nodes(self, level: int, start: int, end: int) -> list[tuple[int, bytes]]:
        """(idx, hash) of stored nodes at ``level`` with start <= idx < end."""
        with _translated("reading tree nodes"):
            return self._conn.execute(
                "SELECT idx, hash FROM nodes WHERE level = ? AND idx >= ? AND idx < ? "
                "ORDER BY idx", (level, start, end),
            ).fetchall()

    def nodes_at(self, coordinates: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored nodes among (level, idx) ``coordinates`` (one primary-key lookup each:
        in process, that is cheaper than any combined query)."""
        found: dict[tuple[int, int], bytes] = {}
        with _translated("reading tree nodes"):
            for level, idx in set(coordinates):
                row = self._conn.execute("SELECT hash FROM nodes WHERE level = ? AND idx = ?",
                                         (level, idx)).fetchone()
                if row is not None:
                    found[(level, idx)] = bytes(row[0])
        return found

    def latest_block(self) -> tuple[BlockHeader, bytes] | None:
        """(header, stored block hash) of the highest block, or None."""
        with _translated("reading the latest block"):
            row = self._conn.execute(
                f"SELECT {_BLOCK_COLUMNS}, block_hash FROM blocks ORDER BY height DESC LIMIT 1"
            ).fetchone()
        return (_row_to_header(row[:6]), row[6]) if row else None

    def blocks(self, start_height: int, limit: int) -> list[tuple[BlockHeader, bytes]]:
        """Up to ``limit`` (header, stored hash) pairs from ``start_height`` on, by height."""
        with _translated("reading blocks"):
            rows = self._conn.execute(
                f"SELECT {_BLOCK_COLUMNS}, block_hash FROM blocks WHERE height >= ? "
                "ORDER BY height LIMIT ?", (start_height, limit),
            ).fetchall()
        return [(_row_to_header(r[:6]), r[6]) for r in rows]

    def block_containing(self, index: int) -> BlockHeader | None:
        """The block whose range [first_index, tree_size) holds ``index``."""
        with _translated("finding a block"):
            row = self._conn.execute(
                f"SELECT {_BLOCK_COLUMNS} FROM blocks WHERE tree_size > ? "
                "ORDER BY tree_size LIMIT 1", (index,),
            ).fetchone()
        return _row_to_header(row) if row else None

    def checkpoint(self, tree_size: int | None = None) -> str | None:
        """The signed checkpoint for ``tree_size`` (default: the latest), or None."""
        with _translated("reading a checkpoint"):
            if tree_size is None:
                row = self._conn.execute(
                    "SELECT note FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
                ).fetchone()
            else:
                row = self._conn.execute(
                    "SELECT note FROM checkpoints WHERE tree_size = ?", (tree_size,)
                ).fetchone()
        return str(row[0]) if row else None

    def checkpoints(self, start_height: int, limit: int) -> list[tuple[int, int, str]]:
        """Up to ``limit`` (height, tree_size, note) from ``start_height`` on, by height."""
        with _translated("reading checkpoints"):
            return self._conn.execute(
                "SELECT height, tree_size, note FROM checkpoints WHERE height >= ? "
                "ORDER BY height LIMIT ?", (start_height, limit),
            ).fetchall()

    # -- witness evidence --------------------------------------------------------------------
    def insert_cosignature(self, row: StoredCosignature) -> None:
        """Store a cosignature (the first per witness and size is kept). Requires a write
        transaction."""
        with _translated("storing a cosignature"):
            self._conn.execute(
                f"INSERT OR IGNORE INTO cosignatures ({_COSIG_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (row.tree_size, row.witness, row.line, row.time, row.checkpoint))

    def insert_refusal(self, row: Refusal) -> None:
        """Store a witness's refusal as evidence. Requires a write transaction."""
        with _translated("storing a witness refusal"):
            self._conn.execute(
                f"INSERT INTO witness_refusals ({_REFUSAL_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row.time, row.witness, row.status, row.old_size, row.tree_size, row.request,
                 row.response, row.held))

    def cosignatures(self, *, tree_size: int | None = None, witness: str | None = None
                     ) -> list[StoredCosignature]:
        """Stored cosignatures, optionally of one tree size and/or one witness, by size."""
        with _translated("reading cosignatures"):
            rows = self._conn.execute(
                f"SELECT {_COSIG_COLUMNS} FROM cosignatures "
                "WHERE (:size IS NULL OR tree_size = :size) "
                "AND (:witness IS NULL OR witness = :witness) ORDER BY tree_size, witness",
                {"size": tree_size, "witness": witness}).fetchall()
        return [StoredCosignature(*row) for row in rows]

    def last_cosigned(self, witness: str) -> StoredCosignature | None:
        """The cosignature of ``witness`` on the largest tree size, or None."""
        with _translated("reading cosignatures"):
            row = self._conn.execute(
                f"SELECT {_COSIG_COLUMNS} FROM cosignatures WHERE witness = ? "
                "ORDER BY tree_size DESC LIMIT 1", (witness,)).fetchone()
        return StoredCosignature(*row) if row else None

    def refusals(self, witness: str | None = None) -> list[Refusal]:
        """Stored refusals, oldest first, optionally of one witness."""
        with _translated("reading witness refusals"):
            rows = self._conn.execute(
                f"SELECT {_REFUSAL_COLUMNS} FROM witness_refusals "
                "WHERE (:witness IS NULL OR witness = :witness) ORDER BY id",
                {"witness": witness}).fetchall()
        return [Refusal(*row) for row in rows]


# (device, inode) -> how many of this process's connections have that database file open.
# A file is read outside SQLite only while none has: closing any descriptor of a file drops
# every POSIX lock this process holds on it, so reading the header while one of our SQLite
# connections has the file open would silently release that connection's locks
# (https://www.sqlite.org/howtocorrupt.html, section 2.2). Such a file was recognised when
# that connection opened it.
_OPEN_FILES: dict[tuple[int, int], int] = {}


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def recognise(path: Path, application_id: int = APPLICATION_ID) -> None:
    """Read the file header, without SQLite, and refuse anything but a radledger database.

    SQLite's header starts with a fixed 16-byte string; the application id is the big-endian
    integer at offset 68 (https://www.sqlite.org/fileformat.html). A file that a connection
    of this process has open is not read again (see _OPEN_FILES).
    """
    key = _file_key(path)
    if key is not None and _OPEN_FILES.get(key, 0) > 0:
        return
    try:
        with path.open("rb") as f:
            header = f.read(_HEADER_SIZE)
    except OSError as exc:
        raise UnrecognisedDatabase(f"cannot read {path}: {exc.strerror}") from None
    if len(header) < _HEADER_SIZE or not header.startswith(_SQLITE_MAGIC):
        what = "an empty file" if not header else "not an SQLite database"
        raise UnrecognisedDatabase(f"{path} is not a radledger database ({what})")
    app_id = int.from_bytes(header[_APP_ID_AT:_APP_ID_AT + 4], "big")
    if app_id != application_id:
        raise UnrecognisedDatabase(
            f"{path} is not the radledger database expected there (application_id {app_id:#x})"
        )


def _statements(script: str) -> list[str]:
    """Split the schema file into statements (triggers contain ';' inside BEGIN ... END)."""
    statements, current = [], []
    for line in script.splitlines():
        stripped = line.split("--", 1)[0].rstrip()
        if not stripped:
            continue
        current.append(stripped)
        joined = "\n".join(current)
        if sqlite3.complete_statement(joined):
            statements.append(joined)
            current = []
    return statements
