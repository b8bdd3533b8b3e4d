"""The full audit behind ``radledger verify`` (DESIGN section 5).

It re-derives everything from the entry bytes and compares with what is stored:

- every entry: canonical form, envelope, signer in force at its index, signature, stored leaf
  hash and kind, dense indices;
- the tree: every stored perfect node against recomputation;
- every block: height, link to the previous block, range, root at its size, stored hash,
  non-decreasing time; and its checkpoint: ledger-key signature, origin, size, root, block line.

Work streams in chunks (memory stays flat as the ledger grows); entry checks, which are
dominated by Ed25519 verification, run in a pool of worker processes. Problems carry the first
bad index or block with expected and computed values.
"""

from __future__ import annotations

import base64
import os
from bisect import bisect_left
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

from radledger.core.block import BlockHeader
from radledger.core.checkpoint import open_checkpoint, parse_block_extension
from radledger.core.entry import actor_id, parse_entry
from radledger.core.keys import KEY_KINDS, KeyRing, check_entry
from radledger.core.merkle import CompactRange, leaf_hash
from radledger.core.note import Verifier
from radledger.errors import (
    EvidenceValue,
    RadledgerError,
    StorageCorrupt,
    StorageError,
    VerificationError,
)
from radledger.ledger.workers import worker_pool
from radledger.storage.base import EntryRow, LedgerStore

CHUNK = 4096
PARALLEL_THRESHOLD = 20_000  # below this, a process pool costs more than it saves
MAX_PROBLEMS = 100

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Problem:
    """One thing that does not verify, with its evidence."""

    what: str
    index: int | None = None
    block: int | None = None
    expected: EvidenceValue = None
    computed: EvidenceValue = None

    def as_json(self) -> dict[str, object]:
        """The stable machine form: index or block, what, expected, computed (hex for bytes)."""
        out: dict[str, object] = {}
        if self.index is not None:
            out["index"] = self.index
        if self.block is not None:
            out["block"] = self.block
        out["what"] = self.what
        out["expected"] = _hex(self.expected)
        out["computed"] = _hex(self.computed)
        return out

    def __str__(self) -> str:
        return str(VerificationError(self.what, index=self.index, block=self.block,
                                     expected=self.expected, computed=self.computed))


def _hex(value: EvidenceValue) -> object:
    return value.hex() if isinstance(value, bytes) else value


@dataclass
class VerifyReport:
    """What a verification run found."""

    tree_size: int = 0
    entries_checked: int = 0
    blocks_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong."""
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        """Record a problem (the first MAX_PROBLEMS are kept, all are counted)."""
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def first_bad_index(self) -> int | None:
        """The lowest entry index named by any problem."""
        indices = [p.index for p in self.problems if p.index is not None]
        return min(indices) if indices else None


# -- entry checks (run in worker processes) ------------------------------------------------
KeyTimeline = list[tuple[int, bytes]]  # (index, data) of the key entries, in index order
_worker_checker: _RowChecker | None = None  # set once in each pool worker


def _build_keyring(timeline: KeyTimeline, report: VerifyReport | None) -> KeyRing:
    keyring = KeyRing()
    for index, data in timeline:
        try:
            entry = check_entry(keyring, index, data)
            if entry.kind not in KEY_KINDS:
                raise VerificationError(f"indexed as a key entry but is {entry.kind}")
            keyring.apply(index, entry)
        except RadledgerError as exc:
            if report is not None:
                report.add(Problem(f"key entry does not verify: {_what(exc)}", index=index))
    return keyring

class _RowChecker:
    """Checks entry rows against one key timeline."""

    def __init__(self, timeline: KeyTimeline) -> None:
        self.keyring = _build_keyring(timeline, None)
        self.key_indices = frozenset(i for i, _ in timeline)

    def check(self, rows: list[EntryRow]) -> tuple[list[bytes], list[Problem]]:
        """The leaf hashes computed from the entry bytes, and the problems found."""
        leaves: list[bytes] = []
        problems: list[Problem] = []
        for index, kind, stored_leaf, data in rows:
            if not (isinstance(data, bytes) and isinstance(stored_leaf, bytes)
                    and isinstance(kind, str)):
                leaves.append(bytes(32))  # a damaged row: the tree check names it too
                problems.append(Problem("stored row is damaged (wrong column types)",
                                        index=index))
                continue
            computed = leaf_hash(data)
            leaves.append(computed)
            if computed != stored_leaf:
                problems.append(Problem("stored leaf hash differs from the entry bytes",
                                        index=index, expected=stored_leaf, computed=computed))
                continue
            problems.extend(self._check_entry(index, kind, data))
        return leaves, problems

    def _check_entry(self, index: int, kind: str, data: bytes) -> list[Problem]:
        try:
            entry = check_entry(self.keyring, index, data)
        except RadledgerError as exc:
            return [Problem(f"entry does not verify: {_what(exc)}", index=index)]
        if entry.kind != kind:
            return [Problem("stored kind differs from the entry", index=index,
                            expected=entry.kind, computed=kind)]
        if (entry.kind in KEY_KINDS) != (index in self.key_indices):
            return [Problem("key entry missing from the key index", index=index)]
        return []


def _what(exc: RadledgerError) -> str:
    return exc.what if isinstance(exc, VerificationError) else str(exc)


def _init_worker(timeline: KeyTimeline) -> None:
    global _worker_checker  # noqa: PLW0603 - per-process worker state
    _worker_checker = _RowChecker(timeline)


def _check_in_worker(rows: list[EntryRow]) -> tuple[list[bytes], list[Problem]]:
    assert _worker_checker is not None
    return _worker_checker.check(rows)


# -- the run -------------------------------------------------------------------------------
def verify_ledger(store: LedgerStore, pinned: Verifier, *, workers: int | None = None,
                  progress: Progress | None = None, now: int | None = None) -> VerifyReport:
    """Audit the whole ledger, in one read snapshot. Never raises for what it finds: problems
    go in the report.

    ``pinned`` is the ledger key the caller trusts (from the ledger home); its name is the
    origin, and entry 0 must register exactly that key. ``workers`` defaults to the number of
    CPUs. With ``now`` (Unix seconds), a checkpoint dated more than five minutes after it is a
    problem.
    """
    with store.snapshot():
        return _verify(store, pinned, workers, progress, now)


def _verify(store: LedgerStore, pinned: Verifier, workers: int | None,
            progress: Progress | None, now: int | None) -> VerifyReport:
    report = VerifyReport()
    for message in store.integrity_problems():
        report.add(Problem(f"storage integrity: {message}"))
    timeline = store.key_entries()
    keyring = _build_keyring(timeline, report)
    _check_genesis(store, pinned, report)
    walker = _TreeWalker(store, report)
    blocks = _BlockWalker(store, pinned.name, keyring, report, now)
    chunks = _checked_chunks(store, store.entry_count(), timeline, workers)
    try:
        size = _scan(chunks, report, walker, blocks, progress)
    except StorageError as exc:
        raise StorageCorrupt(
            f"{exc}; entries 0..{report.entries_checked - 1} were verified before the damage"
        ) from exc
    return _finish(report, walker, blocks if size is not None else None,
                   size if size is not None else report.entries_checked)


def _scan(chunks: Iterator[tuple[list[EntryRow], list[bytes], list[Problem]]],
          report: VerifyReport, walker: _TreeWalker, blocks: _BlockWalker,
          progress: Progress | None) -> int | None:
    """Walk the checked entries in index order; the size reached, or None at a gap."""
    expected_index = 0
    for rows, leaves, problems in chunks:
        for problem in problems:
            report.add(problem)
        for (index, *_), leaf in zip(rows, leaves, strict=True):
            if index != expected_index:
                report.add(Problem("entry missing (indices must be dense)",
                                   index=expected_index, expected=expected_index,
                                   computed=index))
                walker.note_problem(expected_index)
                report.entries_checked = expected_index
                return None
            walker.add(index, leaf)
            blocks.reached(walker.crange)
            expected_index = index + 1
        report.entries_checked = expected_index
        if progress is not None:
            progress(expected_index)
    return expected_index


def _finish(report: VerifyReport, walker: _TreeWalker, blocks: _BlockWalker | None,
            size: int) -> VerifyReport:
    """Close the run; ``blocks`` is None when the scan stopped at a missing entry."""
    walker.flush()
    if blocks is not None:
        blocks.finish(size)
        report.tree_size = blocks.sealed_size
    report.problems.sort(key=lambda p: (p.index if p.index is not None else 1 << 62,
                                        p.block if p.block is not None else -1))
    return report


def _check_genesis(store: LedgerStore, pinned: Verifier, report: VerifyReport) -> None:
    first = store.entry(0)
    if first is None:
        report.add(Problem("the ledger has no genesis entry", index=0))
        return
    want = actor_id(pinned.name, pinned.public_key)
    try:
        entry = parse_entry(first[1])
        body_key = base64.b64decode(str(entry.body.get("public_key", "")))
        got = actor_id(str(entry.body.get("name", "")), body_key)
    except RadledgerError as exc:
        report.add(Problem(f"genesis entry unreadable: {_what(exc)}", index=0))
        return
    if got != want:
        report.add(Problem("entry 0 registers another ledger key than the pinned one",
                           index=0, expected=want, computed=got))


def _checked_chunks(store: LedgerStore, total: int, timeline: KeyTimeline,
                    workers: int | None
                    ) -> Iterator[tuple[list[EntryRow], list[bytes], list[Problem]]]:
    starts = range(0, total, CHUNK)
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or total < PARALLEL_THRESHOLD:
        checker = _RowChecker(timeline)
        for start in starts:
            rows = store.entries(start, start + CHUNK)
            yield (rows, *checker.check(rows))
        return
    window = workers * 2  # chunks in flight: bounded, so memory stays flat
    with worker_pool(workers, _init_worker, (timeline,)) as pool:
        pending: list[tuple[list[EntryRow], Future[tuple[list[bytes], list[Problem]]]]] = []
        for start in starts:
            rows = store.entries(start, start + CHUNK)
            pending.append((rows, pool.submit(_check_in_worker, rows)))
            if len(pending) >= window:
                rows0, future = pending.pop(0)
                yield (rows0, *future.result())
        for rows0, future in pending:
            yield (rows0, *future.result())


class _TreeWalker:
    """Recomputes the tree from the leaves and compares every stored perfect node."""

    def __init__(self, store: LedgerStore, report: VerifyReport) -> None:
        self.store = store
        self.report = report
        self.crange = CompactRange.empty()
        self._pending: list[tuple[int, int, bytes]] = []
        self._bad_leaves: list[int] = []  # sorted indices already reported

    def note_problem(self, index: int) -> None:
        self._bad_leaves.append(index)
        self._bad_leaves.sort()

    def add(self, index: int, leaf: bytes) -> None:
        self._pending.extend(self.crange.append(leaf))
        if len(self._pending) >= 2 * CHUNK:
            self.flush()

    def flush(self) -> None:
        by_level: dict[int, list[tuple[int, bytes]]] = {}
        for level, idx, digest in self._pending:
            by_level.setdefault(level, []).append((idx, digest))
        self._pending = []
        for level in sorted(by_level):
            computed = by_level[level]
            lo, hi = computed[0][0], computed[-1][0] + 1
            stored = dict(self.store.nodes(level, lo, hi))
            for idx, digest in computed:
                if stored.get(idx) != digest:
                    self._mismatch(level, idx, stored.get(idx), digest)

    def _mismatch(self, level: int, idx: int, stored: bytes | None, computed: bytes) -> None:
        first, end = idx << level, (idx + 1) << level
        pos = bisect_left(self._bad_leaves, first)
        if pos < len(self._bad_leaves) and self._bad_leaves[pos] < end:
            return  # a lower node under this one was already reported
        what = ("tree node missing" if stored is None else
                "leaf differs from the integrated tree" if level == 0 else
                "stored tree node differs from recomputation")
        self.report.add(Problem(f"{what} (level {level}, node {idx})", index=first,
                                expected=stored, computed=computed))
        self.note_problem(first)


class _BlockWalker:
    """Checks each block and checkpoint when the recomputed tree reaches its size."""

    def __init__(self, store: LedgerStore, origin: str, keyring: KeyRing,
                 report: VerifyReport, now: int | None) -> None:
        self.now = now
        self.store = store
        self.origin = origin
        self.keyring = keyring
        self.report = report
        self.previous: BlockHeader | None = None
        self.sealed_size = 0
        self._queue: list[tuple[BlockHeader, bytes]] = []
        self._next_height = 0
        self._notes: dict[int, str] = {}

    def _peek(self) -> tuple[BlockHeader, bytes] | None:
        if not self._queue:
            self._queue = self.store.blocks(self._next_height, 1000)
            self._notes = {h: n for h, _, n in self.store.checkpoints(self._next_height, 1000)}
            self._queue.reverse()
        return self._queue[-1] if self._queue else None

    def reached(self, crange: CompactRange) -> None:
        item = self._peek()
        while item is not None and item[0].tree_size <= crange.size:
            self._queue.pop()
            header, stored_hash = item
            self._check(header, stored_hash, crange)
            item = self._peek()

    def _check(self, header: BlockHeader, stored_hash: bytes, crange: CompactRange) -> None:
        h, prev = header.height, self.previous
        self._next_height = h + 1
        want_first = prev.tree_size if prev else 0
        want_prev_hash = prev.block_hash() if prev else bytes(32)
        checks: list[tuple[str, EvidenceValue, EvidenceValue]] = [
            ("block height out of sequence", (prev.height + 1) if prev else 0, h),
            ("previous block hash does not link", want_prev_hash, header.previous_hash),
            ("block first index does not follow the previous block", want_first,
             header.first_index),
            ("block size does not match the entries", crange.size, header.tree_size),
            ("stored block hash differs from its header", header.block_hash(), stored_hash),
        ]
        for what, expected, computed in checks:
            if expected != computed:
                self.report.add(Problem(what, block=h, expected=expected, computed=computed))
        if header.tree_size == crange.size and header.root_hash != crange.root():
            self.report.add(Problem("block root differs from the recomputed tree", block=h,
                                    expected=header.root_hash, computed=crange.root()))
        if prev is not None and header.sealed_time < prev.sealed_time:
            self.report.add(Problem("block time goes backwards", block=h,
                                    expected=prev.sealed_time, computed=header.sealed_time))
        self._check_checkpoint(header, crange)
        self.previous = header
        self.sealed_size = header.tree_size
        self.report.blocks_checked += 1

    def _check_checkpoint(self, header: BlockHeader, crange: CompactRange) -> None:
        h = header.height
        note = self._notes.get(h)
        if note is None:
            self.report.add(Problem("block has no checkpoint", block=h))
            return
        # a ledger key may seal the block that registers it or that revokes it
        verifiers = [
            Verifier(k.name, k.public_key) for k in self.keyring.ledger_keys()
            if k.registered_at < header.tree_size
            and (k.revoked_at is None or k.revoked_at >= header.first_index)
        ]
        errors: list[str] = []
        for verifier in verifiers:
            try:
                cp = open_checkpoint(note, verifier, origin=self.origin, now=self.now)
                break
            except RadledgerError as exc:
                errors.append(_what(exc))
        else:
            self.report.add(Problem(f"checkpoint does not verify: {'; '.join(errors)}",
                                    block=h))
            return
        if (cp.tree_size, cp.root_hash) != (header.tree_size, header.root_hash):
            self.report.add(Problem("checkpoint differs from its block", block=h,
                                    expected=header.root_hash, computed=cp.root_hash))
        ext = [parse_block_extension(line) for line in cp.extensions
               if line.startswith("radledger-block ")]
        want = (h, header.block_hash(), header.sealed_time)
        if ext != [want]:
            self.report.add(Problem("checkpoint block line differs from the block", block=h,
                                    expected=header.block_hash(),
                                    computed=ext[0][1] if ext else None))

    def finish(self, size: int) -> None:
        item = self._peek()
        if item is not None:
            self.report.add(Problem("block covers entries that do not exist",
                                    block=item[0].height, expected=size,
                                    computed=item[0].tree_size))
        if self.sealed_size < size:
            self.report.add(Problem("entries are not sealed in any block",
                                    index=self.sealed_size, expected=self.sealed_size,
                                    computed=size))

