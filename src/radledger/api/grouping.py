"""Group commit of concurrent ``POST /entries``: the requests waiting for the writer are
appended together, in one transaction and one block, each entry followed by its
``access.recorded`` entry, so one fsync and one signed checkpoint serve them all.

Each request queues its draft. One request at a time leads: it takes every queued draft (up
to MAX_GROUP), commits them under the process's write lock, wakes their requests, and hands
the lead to the first request still queued, if any (which arrived while it committed); the
others only wait to be woken, never queueing on the lock themselves. Nothing is acknowledged
before the transaction that holds it has committed (DESIGN section 2): every waiter gets its
receipts only after COMMIT.

The access entry of a draft names the draft's index, which is known only once the writer
holds the database: the group opens the transaction itself (``_Joined``: a LedgerStore whose
``write()`` joins the open transaction), reads the size, then appends
``[d1, a1, d2, a2, ...]`` through a Ledger of its own. If an index is not what was predicted
(a draft identical to another one in the group is stored once) or anything fails, the
transaction rolls back and each draft is appended alone, as ``ledger.delegated`` does, so
each request gets its own result or error.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from radledger.core.note import Signer
from radledger.ledger.delegated import access_draft, append_on_behalf
from radledger.ledger.drafts import Draft
from radledger.ledger.service import Ledger, Receipt
from radledger.storage.base import LedgerStore

MAX_GROUP = 512  # requests in one transaction
VIA = "api"


class _Joined:
    """A store whose ``write()`` joins the transaction opened by the outermost ``write()``.
    Used by one thread at a time (under the process's write lock)."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._open = False

    @contextmanager
    def write(self) -> Iterator[_Joined]:
        if self._open:
            yield self  # the outermost write() commits or rolls back
            return
        with self._store.write():
            self._open = True
            try:
                yield self
            finally:
                self._open = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _Mispredicted(Exception):
    """An entry did not get the index its access record names; the group rolls back."""


@dataclass
class _Job:
    draft: Draft
    on_behalf_of: str
    wake: threading.Event = field(default_factory=threading.Event)  # done, or lead now
    done: bool = False
    receipts: tuple[Receipt, Receipt] | None = None
    error: BaseException | None = None

    def finish(self) -> None:
        self.done = True
        self.wake.set()

    def result(self) -> tuple[Receipt, Receipt]:
        if self.error is not None:
            raise self.error
        assert self.receipts is not None
        return self.receipts


class GroupCommit:
    """Appends drafts on behalf of token holders, grouping concurrent ones."""

    def __init__(self, ledger: Ledger, signer: Signer, write_lock: threading.Lock) -> None:
        self._ledger = ledger  # the process's writer Ledger (used when a group falls back)
        self._signer = signer
        self._write_lock = write_lock
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._leading = False  # a request is leading (taking and committing groups)
        self._grouped: Ledger | None = None
        self.groups = 0  # transactions committed for groups (for tests and benchmarks)

    def append(self, draft: Draft, on_behalf_of: str) -> tuple[Receipt, Receipt]:
        """Append ``draft`` signed by the service, then ``access.recorded`` {action
        "append", target "entry/<index>", via "api", on_behalf_of}; returns both receipts
        once they are durable. Raises what ``Ledger.append_drafts`` raises for this draft."""
        job = _Job(draft, on_behalf_of)
        with self._queue_lock:
            self._queue.append(job)
            leads, self._leading = not self._leading, True
        if not leads:
            job.wake.wait()
            if job.done:
                return job.result()
        with self._queue_lock:  # leading: the group holds this job (it is first in line)
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
        try:
            with self._write_lock:
                self._commit(group)
        finally:
            with self._queue_lock:
                if self._queue:
                    self._queue[0].wake.set()  # hand the lead over
                else:
                    self._leading = False
        return job.result()

    def _commit(self, group: list[_Job]) -> None:
        try:
            results = self._commit_group(group)
        except BaseException:  # noqa: BLE001 - every job is answered, alone, below
            self._grouped = None  # it may cache a frontier that was rolled back
            results = None
        if results is None:
            for job in group:
                self._alone(job)
            return
        self.groups += 1
        for job, receipts in zip(group, results, strict=True):
            job.receipts = receipts
            job.finish()

    def _commit_group(self, group: list[_Job]) -> list[tuple[Receipt, Receipt]]:
        if self._grouped is None:
            ledger = self._ledger
            joined = cast(LedgerStore, _Joined(ledger.store))
            self._grouped = Ledger(joined, ledger.origin, ledger.ledger_signer, ledger.clock)
        grouped = self._grouped
        store = cast(_Joined, grouped.store)
        with store.write():
            size = grouped.store.entry_count()
            drafts: list[Draft] = []
            for position, job in enumerate(group):
                drafts += [job.draft, access_draft("append", f"entry/{size + 2 * position}",
                                                   job.on_behalf_of, VIA)]
            receipts = grouped.append_drafts(drafts, self._signer)
            if [(r.index, r.new) for r in receipts] != \
                    [(size + n, True) for n in range(len(drafts))]:
                raise _Mispredicted
        return [(receipts[2 * n], receipts[2 * n + 1]) for n in range(len(group))]

    def _alone(self, job: _Job) -> None:
        try:
            job.receipts = append_on_behalf(self._ledger, self._signer, job.draft,
                                            job.on_behalf_of, VIA)
        except BaseException as exc:  # noqa: BLE001 - handed to the request that waits
            job.error = exc
        finally:
            job.finish()
