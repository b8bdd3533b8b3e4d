"""The PostgreSQL store (DESIGN sections 2 and 8): one ledger shared by many processes.

Native PostgreSQL through psycopg 3 and its connection pool; the schema is
``postgres_schema.sql`` (schema ``radledger``). A write is one transaction that first locks
the single sequencer row (``SELECT ... FOR UPDATE``), so appends from every process and host
queue there; UNIQUE constraints on index, leaf hash, height, tree size and block hash refuse
duplicates whatever happens. Reads run in REPEATABLE READ snapshots and never block the
writer.

A store object is shared by the threads of a process: a transaction holds one pooled
connection for the thread that opened it (``write()``/``snapshot()``); a call outside a
transaction borrows one for that statement. Every psycopg error is translated in one place
(``_translate``) into radledger's storage errors. Durability is checked on open: a server
running with ``fsync`` or ``synchronous_commit`` off cannot keep the acknowledgement promise
and is refused (UnsafeStorage).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any, Self

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

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

if TYPE_CHECKING:
    from radledger.storage.postgres_side import PostgresSideStore

FORMAT = "1"
SCHEMA = "radledger"
LOCK_TIMEOUT_S = 60.0
POOL_MAX = 8
_BLOCK_COLUMNS = "height, previous_hash, first_index, tree_size, root_hash, sealed_time"
_COSIG_COLUMNS = "tree_size, witness, line, time, checkpoint"
_REFUSAL_COLUMNS = "time, witness, status, old_size, tree_size, request, response, held"

Row = tuple[Any, ...]


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured PostgreSQL database"
    host, port, db = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname")
    return f"postgresql://{host}:{port}/{db or ''}"


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Map psycopg errors to radledger's storage errors, naming what was being done."""
    try:
        yield
    except psycopg.Error as exc:
        raise _translate(exc, action) from exc
    except PoolTimeout as exc:
        raise StorageBusy(f"no PostgreSQL connection became free while {action}") from exc


# psycopg error classes -> (radledger error, message template); the first match wins.
_TRANSLATIONS: tuple[tuple[tuple[type[psycopg.Error], ...], type[StorageError], str], ...] = (
    ((pg_errors.DataCorrupted, pg_errors.IndexCorrupted), StorageCorrupt,
     "storage corrupt while {}; writes refused"),
    ((pg_errors.DiskFull,), StorageFull, "storage full while {}; nothing was written"),
    ((pg_errors.LockNotAvailable, pg_errors.SerializationFailure, pg_errors.DeadlockDetected,
      pg_errors.QueryCanceled), StorageBusy, "the ledger writer stayed busy while {}"),
    ((pg_errors.UniqueViolation,), StorageError,
     "a duplicate was refused by a UNIQUE constraint while {}; nothing was written"),
    ((pg_errors.InsufficientPrivilege,), StorageError, "refused while {}"),
    ((psycopg.OperationalError,), StorageError,
     "PostgreSQL became unreachable while {}; the write was not acknowledged. Check the "
     "server, then run `radledger verify`"),
)


def _translate(exc: psycopg.Error, action: str) -> StorageError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    text = f"{action}: {first_line}"
    for kinds, error, message in _TRANSLATIONS:
        if isinstance(exc, kinds):
            return error(message.format(text))
    return StorageError(f"storage error while {text}")


def _statements(script: str) -> list[str]:
    """Split the schema file into statements ($$-quoted bodies may contain ';')."""
    statements, current, quoted = [], [], False
    for line in script.splitlines():
        stripped = line.split("--", 1)[0].rstrip() if not quoted else line.rstrip()
        if not stripped:
            continue
        current.append(stripped)
        if stripped.count("$$") % 2 == 1:
            quoted = not quoted
        if not quoted and stripped.endswith(";"):
            statements.append("\n".join(current))
            current = []
    return statements


class PgDatabase:
    """A pool of connections to one database, with per-thread transactions."""

    def __init__(self, url: str, pool: ConnectionPool[psycopg.Connection[Row]],
                 owns_pool: bool = True) -> None:
        self.url = url
        self.path = redacted(url)  # what messages name, like SQLite stores' file path
        self._pool = pool
        self._owns_pool = owns_pool
        self._local = threading.local()

    @staticmethod
    def _make_pool(url: str, max_size: int = POOL_MAX) -> ConnectionPool[psycopg.Connection[Row]]:
        def configure(conn: psycopg.Connection[Row]) -> None:
            conn.execute(f"SET search_path = {SCHEMA}")
            conn.execute(f"SET lock_timeout = '{int(LOCK_TIMEOUT_S * 1000)}ms'")

        with _translated(f"connecting to {redacted(url)}"):
            pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
                url, min_size=1, max_size=max_size, open=False, configure=configure,
                kwargs={"autocommit": True}, timeout=LOCK_TIMEOUT_S, name="radledger")
            try:
                pool.open(wait=True, timeout=10.0)
            except PoolTimeout:
                pool.close()
                # one direct attempt, for libpq's own message (refused, auth, no database)
                psycopg.connect(url, connect_timeout=5).close()
                raise
        return pool

    def close(self) -> None:
        """Close the pool (if this object owns it)."""
        if self._owns_pool:
            self._pool.close()

    @contextmanager
    def _conn(self, action: str) -> Iterator[psycopg.Connection[Row]]:
        conn: psycopg.Connection[Row] | None = getattr(self._local, "conn", None)
        with _translated(action):
            if conn is not None:
                yield conn
            else:
                with self._pool.connection() as borrowed:
                    yield borrowed

    def _all(self, action: str, sql: str, args: Iterable[Any] = ()) -> list[Row]:
        with self._conn(action) as conn:
            return conn.execute(sql, tuple(args)).fetchall()

    def _one(self, action: str, sql: str, args: Iterable[Any] = ()) -> Row | None:
        with self._conn(action) as conn:
            return conn.execute(sql, tuple(args)).fetchone()

    def _many(self, action: str, sql: str, rows: Iterable[Row]) -> None:
        with self._conn(action) as conn, conn.cursor() as cur:
            cur.executemany(sql, list(rows))

    @contextmanager
    def _transaction(self, begin: str, action: str,
                     first: Callable[[psycopg.Connection[Row]], None] | None = None
                     ) -> Iterator[Self]:
        if getattr(self._local, "conn", None) is not None:
            raise StorageError(f"{action}: a transaction is already open in this thread")
        with _translated(action), self._pool.connection() as conn:
            conn.execute(begin)
            self._local.conn = conn
            try:
                if first is not None:
                    first(conn)
                yield self
                with _translated("committing"):
                    conn.execute("COMMIT")
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    pass  # the original error is what matters; the pool discards the conn
                raise
            finally:
                self._local.conn = None

    @contextmanager
    def snapshot(self) -> Iterator[Self]:
        """A read transaction: one consistent state whatever writers commit meanwhile."""
        with self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                               "starting a read") as store:
            yield store


class PostgresStore(PgDatabase):
    """A radledger ledger in a PostgreSQL database (schema ``radledger``)."""

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, url: str, meta: dict[str, str]) -> PostgresStore:
        """Create the ledger's schema in the database at ``url`` holding ``meta``; refuses a
        database that already holds a radledger ledger."""
        pool = cls._make_pool(url)
        store = cls(url, pool)
        try:
            schema = resources.files("radledger.storage").joinpath(
                "postgres_schema.sql").read_text()
            with store._transaction("BEGIN", f"creating the ledger in {store.path}") as s, \
                    s._conn("creating the schema") as conn:
                if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                (SCHEMA,)).fetchone():
                    raise StorageError(f"{store.path} already holds a radledger ledger "
                                       f"(schema {SCHEMA!r}); refusing to overwrite it")
                for statement in _statements(schema):
                    conn.execute(statement)
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO meta (key, value) VALUES (%s, %s)",
                                    [("format", FORMAT), *sorted(meta.items())])
            store._check_durability()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open(cls, url: str, max_size: int = POOL_MAX) -> PostgresStore:
        """Open the ledger in the database at ``url``, refusing anything else unchanged."""
        store = cls(url, cls._make_pool(url, max_size))
        try:
            if store._one("opening", "SELECT 1 FROM pg_namespace WHERE nspname = %s",
                          (SCHEMA,)) is None:
                raise UnrecognisedDatabase(f"no radledger ledger in {store.path} "
                                           f"(no schema {SCHEMA!r})")
            fmt = store.meta().get("format")
            if fmt != FORMAT:
                raise UnrecognisedDatabase(
                    f"{store.path} has format {fmt!r}; this radledger reads {FORMAT}")
            store._check_durability()
        except BaseException:
            store.close()
            raise
        return store

    def _check_durability(self) -> None:
        for setting, unsafe in (("fsync", "off"), ("synchronous_commit", "off"),
                                ("full_page_writes", "off")):
            row = self._one("reading server settings", f"SHOW {setting}")
            if row is not None and str(row[0]).lower() == unsafe:
                raise UnsafeStorage(
                    f"{self.path}: the server runs with {setting}={unsafe}; radledger "
                    "acknowledges an entry only once it is durable, which that setting breaks")

    def meta(self) -> dict[str, str]:
        """The meta table (format, origin, ledger id)."""
        return {str(k): str(v) for k, v in self._all("reading meta",
                                                     "SELECT key, value FROM meta")}

    @contextmanager
    def write(self) -> Iterator[Self]:
        """One append transaction: the sequencer row is locked first (waiting up to
        LOCK_TIMEOUT_S for another writer, then StorageBusy); rolled back on any error."""
        def lock(conn: psycopg.Connection[Row]) -> None:
            conn.execute("SELECT id FROM sequencer WHERE id FOR UPDATE")

        with self._transaction("BEGIN", "starting a write", lock) as store:
            yield store

    # -- writes (inside write()) -----------------------------------------------------------
    def insert_entries(self, rows: list[EntryRow]) -> None:
        """Insert sequenced entries. Requires an open write transaction."""
        self._many("storing entries",
                   "INSERT INTO entries (idx, kind, leaf_hash, data) VALUES (%s, %s, %s, %s)",
                   rows)

    def insert_nodes(self, rows: list[NodeRow]) -> None:
        """Insert perfect tree nodes. Requires an open write transaction."""
        self._many("storing tree nodes",
                   "INSERT INTO nodes (level, idx, hash) VALUES (%s, %s, %s)", rows)

    def insert_block(self, header: BlockHeader, note: str) -> None:
        """Insert a block and its signed checkpoint. Requires an open write transaction."""
        with self._conn("sealing a block") as conn:
            conn.execute(
                f"INSERT INTO blocks ({_BLOCK_COLUMNS}, block_hash) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (header.height, header.previous_hash, header.first_index, header.tree_size,
                 header.root_hash, header.sealed_time, header.block_hash()))
            conn.execute("INSERT INTO checkpoints (tree_size, height, note) VALUES (%s, %s, %s)",
                         (header.tree_size, header.height, note))

    def insert_cosignature(self, row: StoredCosignature) -> None:
        """Store a cosignature (the first per witness and size is kept)."""
        with self._conn("storing a cosignature") as conn:
            conn.execute(
                f"INSERT INTO cosignatures ({_COSIG_COLUMNS}) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (row.tree_size, row.witness, row.line, row.time, row.checkpoint))

    def insert_refusal(self, row: Refusal) -> None:
        """Store a witness's refusal as evidence."""
        with self._conn("storing a witness refusal") as conn:
            conn.execute(
                f"INSERT INTO witness_refusals ({_REFUSAL_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (row.time, row.witness, row.status, row.old_size, row.tree_size, row.request,
                 row.response, row.held))

    # -- reads -----------------------------------------------------------------------------
    def integrity_problems(self, limit: int = 20) -> list[str]:
        """PostgreSQL's B-tree checks (amcheck's bt_index_check) on the ledger's indexes when
        the amcheck extension is installed; empty when sound or not installed. Heap pages are
        checked by the server's data checksums as they are read."""
        if self._one("checking storage integrity",
                     "SELECT 1 FROM pg_extension WHERE extname = 'amcheck'") is None:
            return []
        problems: list[str] = []
        for (name,) in self._all("checking storage integrity",
                                 "SELECT indexrelid::regclass::text FROM pg_index i "
                                 "JOIN pg_class c ON c.oid = i.indrelid "
                                 "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE n.nspname = %s", (SCHEMA,)):
            try:
                self._one("checking an index", "SELECT bt_index_check(%s::regclass)", (name,))
            except StorageError as exc:
                problems.append(f"index {name}: {exc}")
            if len(problems) >= limit:
                break
        return problems

    def entry_count(self) -> int:
        """One past the highest sequenced index (0 for an empty ledger)."""
        row = self._one("counting entries", "SELECT coalesce(max(idx) + 1, 0) FROM entries")
        return int(row[0]) if row else 0

    def entry(self, index: int) -> tuple[bytes, bytes] | None:
        """(leaf_hash, data) of one entry, or None."""
        row = self._one(f"reading entry {index}",
                        "SELECT leaf_hash, data FROM entries WHERE idx = %s", (index,))
        return (bytes(row[0]), bytes(row[1])) if row else None

    def entries(self, start: int, end: int) -> list[EntryRow]:
        """Entries with start <= idx < end, in index order."""
        return [(int(i), str(k), bytes(h), bytes(d)) for i, k, h, d in self._all(
            f"reading entries {start}..{end}",
            "SELECT idx, kind, leaf_hash, data FROM entries WHERE idx >= %s AND idx < %s "
            "ORDER BY idx", (start, end))]

    def key_entries(self, since: int = 0) -> list[tuple[int, bytes]]:
        """(idx, data) of every key.registered / key.revoked entry at idx >= since."""
        return [(int(i), bytes(d)) for i, d in self._all(
            "reading key entries",
            "SELECT idx, data FROM entries WHERE kind IN ('key.registered', 'key.revoked') "
            "AND idx >= %s ORDER BY idx", (since,))]

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        """The index of the entry with this leaf hash, or None."""
        row = self._one("looking up a leaf hash",
                        "SELECT idx FROM entries WHERE leaf_hash = %s", (leaf_hash,))
        return int(row[0]) if row else None

    def find_leaves(self, leaf_hashes: list[bytes]) -> dict[bytes, int]:
        """{leaf_hash: index} for those of ``leaf_hashes`` that are stored."""
        if not leaf_hashes:
            return {}
        return {bytes(h): int(i) for h, i in self._all(
            "looking up leaf hashes",
            "SELECT leaf_hash, idx FROM entries WHERE leaf_hash = ANY(%s)", (leaf_hashes,))}

    def node(self, level: int, index: int) -> bytes | None:
        """The stored perfect node (level, index), or None."""
        row = self._one("reading a tree node",
                        "SELECT hash FROM nodes WHERE level = %s AND idx = %s", (level, index))
        return bytes(row[0]) if row else None

    def nodes(self, level: int, start: int, end: int) -> list[tuple[int, bytes]]:
        """(idx, hash) of stored nodes at ``level`` with start <= idx < end."""
        return [(int(i), bytes(h)) for i, h in self._all(
            "reading tree nodes",
            "SELECT idx, hash FROM nodes WHERE level = %s AND idx >= %s AND idx < %s "
            "ORDER BY idx", (level, start, end))]

    def nodes_at(self, coordinates: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored nodes among (level, idx) ``coordinates``, in one query."""
        if not coordinates:
            return {}
        levels, indices = zip(*sorted(set(coordinates)), strict=True)
        return {(int(lv), int(i)): bytes(h) for lv, i, h in self._all(
            "reading tree nodes",
            "SELECT n.level, n.idx, n.hash FROM nodes n JOIN unnest(%s::smallint[], "
            "%s::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx",
            (list(levels), list(indices)))}

    def latest_block(self) -> tuple[BlockHeader, bytes] | None:
        """(header, stored block hash) of the highest block, or None."""
        row = self._one("reading the latest block",
                        f"SELECT {_BLOCK_COLUMNS}, block_hash FROM blocks "
                        "ORDER BY height DESC LIMIT 1")
        return (_header(row), bytes(row[6])) if row else None

    def blocks(self, start_height: int, limit: int) -> list[tuple[BlockHeader, bytes]]:
        """Up to ``limit`` (header, stored hash) pairs from ``start_height`` on, by height."""
        return [(_header(r), bytes(r[6])) for r in self._all(
            "reading blocks",
            f"SELECT {_BLOCK_COLUMNS}, block_hash FROM blocks WHERE height >= %s "
            "ORDER BY height LIMIT %s", (start_height, limit))]

    def block_containing(self, index: int) -> BlockHeader | None:
        """The block whose range [first_index, tree_size) holds ``index``."""
        row = self._one("finding a block",
                        f"SELECT {_BLOCK_COLUMNS} FROM blocks WHERE tree_size > %s "
                        "ORDER BY tree_size LIMIT 1", (index,))
        return _header(row) if row else None

    def checkpoint(self, tree_size: int | None = None) -> str | None:
        """The signed checkpoint for ``tree_size`` (default: the latest), or None."""
        if tree_size is None:
            row = self._one("reading a checkpoint",
                            "SELECT note FROM checkpoints ORDER BY tree_size DESC LIMIT 1")
        else:
            row = self._one("reading a checkpoint",
                            "SELECT note FROM checkpoints WHERE tree_size = %s", (tree_size,))
        return str(row[0]) if row else None

    def checkpoints(self, start_height: int, limit: int) -> list[tuple[int, int, str]]:
        """Up to ``limit`` (height, tree_size, note) from ``start_height`` on, by height."""
        return [(int(h), int(s), str(n)) for h, s, n in self._all(
            "reading checkpoints",
            "SELECT height, tree_size, note FROM checkpoints WHERE height >= %s "
            "ORDER BY height LIMIT %s", (start_height, limit))]

    def cosignatures(self, *, tree_size: int | None = None, witness: str | None = None
                     ) -> list[StoredCosignature]:
        """Stored cosignatures, optionally of one tree size and/or one witness, by size."""
        return [StoredCosignature(int(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]))
                for r in self._all(
                    "reading cosignatures",
                    f"SELECT {_COSIG_COLUMNS} FROM cosignatures "
                    "WHERE (%s::bigint IS NULL OR tree_size = %s) "
                    "AND (%s::text IS NULL OR witness = %s) ORDER BY tree_size, witness",
                    (tree_size, tree_size, witness, witness))]

    def last_cosigned(self, witness: str) -> StoredCosignature | None:
        """The cosignature of ``witness`` on the largest tree size, or None."""
        row = self._one("reading cosignatures",
                        f"SELECT {_COSIG_COLUMNS} FROM cosignatures WHERE witness = %s "
                        "ORDER BY tree_size DESC LIMIT 1", (witness,))
        return StoredCosignature(int(row[0]), str(row[1]), str(row[2]), int(row[3]),
                                 str(row[4])) if row else None

    def refusals(self, witness: str | None = None) -> list[Refusal]:
        """Stored refusals, oldest first, optionally of one witness."""
        return [Refusal(int(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]), str(r[5]),
                        str(r[6]), None if r[7] is None else str(r[7]))
                for r in self._all("reading witness refusals",
                                   f"SELECT {_REFUSAL_COLUMNS} FROM witness_refusals "
                                   "WHERE (%s::text IS NULL OR witness = %s) ORDER BY id",
                                   (witness, witness))]

    def side(self, *, same_transaction: bool = False) -> PostgresSideStore:
        """The side store in the same database, sharing this store's pool; with
        ``same_transaction``, its calls join this store's open write in the calling thread
        (``radledger migrate`` copies everything in one transaction)."""
        from radledger.storage.postgres_side import PostgresSideStore  # noqa: PLC0415

        side = PostgresSideStore(self.url, self._pool, owns_pool=False)
        if same_transaction:
            side._local = self._local  # noqa: SLF001
        return side

    def drop_empty(self) -> None:
        """Remove the ledger schema this process just created, if it holds no entry (a
        failed ``radledger migrate``); a ledger with entries is never dropped."""
        with self._transaction("BEGIN", "removing an empty ledger") as store, \
                store._conn("removing an empty ledger") as conn:
            row = conn.execute("SELECT count(*) FROM entries").fetchone()
            if row is None or row[0] != 0:
                raise StorageError(f"{self.path} holds entries; not removing it")
            conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


def _header(row: Row) -> BlockHeader:
    return BlockHeader(int(row[0]), bytes(row[1]), int(row[2]), int(row[3]), bytes(row[4]),
                       int(row[5]))
