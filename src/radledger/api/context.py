"""What one API process holds open: the ledger (for writes), read connections, tokens.

SQLite connections are not shared between concurrent requests: writes go through one
``Ledger`` under a lock (it caches the tree's right border between transactions, and the
single writer is SQLite's anyway), reads borrow a connection of their own from a small pool,
so a read never sees another request's open write transaction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from radledger.api.grouping import GroupCommit
from radledger.api.ratelimit import TokenBuckets
from radledger.ledger.delegated import append_on_behalf
from radledger.ledger.drafts import Draft
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Ledger, Receipt
from radledger.ledger.setup import Workspace, open_ledger, open_workspace
from radledger.ledger.tokens import TokenHolder, authenticate, open_tokens
from radledger.storage.base import LedgerStore
from radledger.storage.sqlite import SQLiteStore
from radledger.storage.tokens import TokenStorage

T = TypeVar("T")


class StorePool:
    """Read connections to one ledger database, opened on demand and reused.

    For a PostgreSQL ledger every request shares the writer's store, whose own connection
    pool gives each thread its own connection (storage/postgres.py)."""

    def __init__(self, home: LedgerHome, shared: LedgerStore | None = None) -> None:
        self._database = home.database
        self._shared = shared if home.database_url is not None else None
        self._free: list[LedgerStore] = []
        self._all: list[LedgerStore] = []
        self._lock = threading.Lock()

    @contextmanager
    def store(self) -> Iterator[LedgerStore]:
        """A connection for this request alone."""
        if self._shared is not None:
            yield self._shared
            return
        with self._lock:
            store = self._free.pop() if self._free else None
        if store is None:
            store = SQLiteStore.open(self._database)
            with self._lock:
                self._all.append(store)
        try:
            yield store
        finally:
            with self._lock:
                self._free.append(store)

    async def read(self, read: Callable[[LedgerStore], T]) -> T:
        """``read(store)`` with a connection of its own. An embedded SQLite read is a few
        indexed lookups in this process, cheaper than a worker-thread hop, so it runs on the
        event loop; a networked database's round trips go to a worker thread."""
        if self._shared is None:
            with self.store() as store:
                return read(store)

        def run() -> T:
            with self.store() as store:
                return read(store)

        return await run_in_threadpool(run)

    def close(self) -> None:
        """Close every connection (at shutdown)."""
        with self._lock:
            for store in self._all:
                store.close()
            self._all.clear()
            self._free.clear()


class TileCache:
    """The most recently served full tiles (immutable once full, so never stale), bounded
    in count; each ApiContext keeps one."""

    def __init__(self, limit: int = 4096) -> None:
        self._tiles: OrderedDict[tuple[int | None, int], bytes] = OrderedDict()
        self._limit = limit

    def get(self, key: tuple[int | None, int]) -> bytes | None:
        body = self._tiles.get(key)
        if body is not None:
            self._tiles.move_to_end(key)
        return body

    def put(self, key: tuple[int | None, int], body: bytes) -> None:
        self._tiles[key] = body
        if len(self._tiles) > self._limit:
            self._tiles.popitem(last=False)


@dataclass
class ApiContext:
    """The open ledger home behind an app."""

    home: LedgerHome
    ledger: Ledger
    tokens: TokenStorage
    reads: StorePool
    public_log: bool
    limits: TokenBuckets = field(default_factory=TokenBuckets)
    tiles: TileCache = field(default_factory=TileCache)
    workspace: Workspace | None = None  # the ledger with its side store, for DICOM and trail
    after_write: Callable[[], None] | None = None  # e.g. api.witnessing.WitnessSync.poke
    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    _token_lock: threading.Lock = field(default_factory=threading.Lock)
    _group: GroupCommit | None = None  # concurrent POST /entries, committed together

    @classmethod
    def open(cls, home_path: Path, public_log: bool,
             limits: TokenBuckets | None = None) -> ApiContext:
        """Open the ledger home at ``home_path`` (its token store is created if absent)."""
        home, ledger = open_ledger(home_path)
        try:
            tokens = open_tokens(home)
        except BaseException:
            ledger.store.close()
            raise
        ctx = cls(home, ledger, tokens, StorePool(home, ledger.store), public_log,
                  limits or TokenBuckets())
        try:
            ctx.workspace = open_workspace(home, ledger)
        except BaseException:
            ctx.close()
            raise
        ctx._group = GroupCommit(ledger, home.actor_signer, ctx._write_lock)
        return ctx

    def close(self) -> None:
        """Close every connection."""
        self.reads.close()
        self.tokens.close()
        if self.workspace is not None:
            self.workspace.side.close()
        self.ledger.store.close()

    def authenticate(self, token: str | None) -> TokenHolder:
        """The holder of a bearer token (see ledger.tokens.authenticate)."""
        with self._token_lock:
            return authenticate(self.tokens, token)

    @contextmanager
    def writing(self) -> Iterator[Workspace]:
        """The workspace, held by this request alone (the one writer of this process); trail,
        ingest and release services run inside it, in a worker thread."""
        assert self.workspace is not None  # set by open()
        try:
            with self._write_lock:
                yield self.workspace
        finally:
            self._written()

    def _written(self) -> None:
        """After a writer released the lock (never under it: the hook must not delay)."""
        if self.after_write is not None:
            self.after_write()

    def append(self, draft: Draft, holder: TokenHolder) -> tuple[Receipt, Receipt]:
        """Append ``draft`` signed by the home's actor key, recorded as done on behalf of
        ``holder`` (as ledger.delegated does); appends waiting for the writer at the same
        time share one transaction (api.grouping). Returns once both are durable."""
        try:
            if self._group is not None:
                return self._group.append(draft, holder.name)
            with self._write_lock:
                return append_on_behalf(self.ledger, self.home.actor_signer, draft,
                                        holder.name)
        finally:
            self._written()
