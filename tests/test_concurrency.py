"""RELIABILITY 6 and 16 under concurrency: several processes appending to one ledger at once,
readers verifying while writers append, and the same signed entry racing itself.

Threads appending through one process are covered in test_ledger.py; here the writers are
separate ``radledger append -`` processes, each with its own SQLite connection, so the only
thing serialising them is the database lock (``BEGIN IMMEDIATE`` plus the busy timeout).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from radledger.core.entry import Statement, actor_id, sign_entry
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Draft, Receipt, rfc3339
from radledger.ledger.setup import init_ledger, open_ledger
from radledger.ledger.verify import verify_ledger

RADLEDGER = Path(sys.executable).parent / "radledger"
KIND = "x-lab.concurrency-test"
PROCESSES = 4
LINES = 200
ACK = re.compile(r"(\d+) ([0-9a-f]{64})")


@pytest.fixture()
def home(tmp_path: Path) -> LedgerHome:
    made, ledger = init_ledger(tmp_path / "home", origin="example.org/lab", actor_name="alice")
    ledger.store.close()
    return made


class Appender:
    """One ``radledger append -`` process, fed by a thread, its output drained by threads."""

    def __init__(self, home: LedgerHome, number: int, lines: int) -> None:
        self.number = number
        self.lines = lines
        self.proc = subprocess.Popen(
            [str(RADLEDGER), "append", "-", "--home", str(home.path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self._acked = threading.Condition()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.out)),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self.err))]
        for thread in self._threads:
            thread.start()

    def _drain(self, stream: IO[bytes], into: list[bytes]) -> None:
        for raw in stream:
            with self._acked:
                into.append(raw)
                self._acked.notify_all()
        with self._acked:
            self._acked.notify_all()

    def wait_for_acks(self, count: int, timeout: float) -> bool:
        with self._acked:
            return self._acked.wait_for(
                lambda: len(self.out) >= count or self.proc.poll() is not None, timeout
            ) and len(self.out) >= count

    def line(self, n: int) -> bytes:
        body = {"proc": self.number, "n": n}
        return json.dumps({"kind": KIND, "body": body}).encode() + b"\n"

    def feed(self, pace: str, start: threading.Barrier, seed: int) -> None:
        """Write line 0 and wait for its acknowledgement (the process is up); once every
        process is up, write the rest (all at once, or in bursts with pauses); close stdin."""
        rng = random.Random(seed)
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(self.line(0))
            stdin.flush()
            up = self.wait_for_acks(1, 60)
            start.wait(timeout=120)
            n = 1 if up else self.lines
            while n < self.lines:
                burst = self.lines if pace == "burst" else rng.randint(1, 5)
                stdin.write(b"".join(self.line(i) for i in range(n, min(n + burst, self.lines))))
                stdin.flush()
                n += burst
                if pace == "trickle":
                    time.sleep(rng.uniform(0.002, 0.006))
        finally:
            try:
                stdin.close()
            except OSError:
                pass  # the process died; finish() reports how

    def finish(self) -> tuple[int, list[tuple[int, bytes]], str]:
        """Exit code, acknowledgements (index, leaf hash), stderr."""
        code = self.proc.wait(timeout=120)
        for thread in self._threads:
            thread.join(timeout=10)
        stderr = b"".join(self.err).decode(errors="replace")
        acks = []
        for raw in self.out:
            match = ACK.fullmatch(raw.decode().rstrip("\n"))
            assert match, f"process {self.number}: malformed acknowledgement {raw!r}"
            acks.append((int(match[1]), bytes.fromhex(match[2])))
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code, acks, stderr


def run_appenders(home: LedgerHome, pace: str, count: int, lines: int
                  ) -> list[tuple[int, list[tuple[int, bytes]], str]]:
    appenders = [Appender(home, p, lines) for p in range(count)]
    start = threading.Barrier(count)
    feeders = [threading.Thread(target=a.feed, args=(pace, start, a.number))
               for a in appenders]
    for feeder in feeders:
        feeder.start()
    for feeder in feeders:
        feeder.join(timeout=120)
    return [a.finish() for a in appenders]


@pytest.mark.slow
@pytest.mark.parametrize("pace", ["trickle", "burst"])
def test_processes_appending_at_once_get_one_dense_history(home: LedgerHome, pace: str) -> None:
    results = run_appenders(home, pace, PROCESSES, LINES)
    for number, (code, _, stderr) in enumerate(results):
        assert "locked" not in stderr.lower() and "busy" not in stderr.lower(), stderr
        assert (code, stderr) == (0, ""), f"process {number}: exit {code}, stderr {stderr!r}"
    acked = [index for _, acks, _ in results for index, _ in acks]
    assert len(acked) == PROCESSES * LINES
    assert sorted(acked) == list(range(2, 2 + PROCESSES * LINES)), "duplicate or missing index"

    _, ledger = open_ledger(home.path)
    store = ledger.store
    try:
        size = store.entry_count()
        assert size == 2 + PROCESSES * LINES
        rows = store.entries(0, size)
        assert [row[0] for row in rows] == list(range(size))
        owner = {0: -1, 1: -1}  # index -> process; the genesis entries belong to none
        for number, (_, acks, _) in enumerate(results):
            # each process's acknowledgements are its own lines, in its own order
            for n, (index, leaf) in enumerate(acks):
                stored_leaf, data = rows[index][2], rows[index][3]
                assert stored_leaf == leaf, f"entry {index}: another leaf than acknowledged"
                assert json.loads(data)["body"] == {"proc": number, "n": n}, index
                owner[index] = number
        # one transaction is one process's batch: no block mixes two writers' entries
        blocks = store.blocks(0, 1 << 30)
        for header, _ in blocks[1:]:
            writers = {owner[i] for i in range(header.first_index, header.tree_size)}
            assert len(writers) == 1, (header.height, writers)
        assert blocks[-1][0].tree_size == size
        if pace == "trickle":  # the writers really took turns, many times
            switches = sum(owner[i] != owner[i + 1] for i in range(2, size - 1))
            assert switches >= 10, switches
        report = verify_ledger(store, home.ledger_verifier, workers=1)
        assert report.ok, report.problems[:3]
    finally:
        store.close()
    cli = subprocess.run([str(RADLEDGER), "verify", "--home", str(home.path)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 0 and cli.stdout.startswith(f"ok: {size} entries"), cli.stderr


@pytest.mark.slow
def test_verify_while_processes_append_sees_one_consistent_state(home: LedgerHome) -> None:
    """A reader verifying during appends must never report a healthy ledger as broken
    (blocks read after entries, in separate snapshots, once did)."""
    done = threading.Event()
    results: list[tuple[int, list[tuple[int, bytes]], str]] = []

    def append() -> None:
        results.extend(run_appenders(home, "trickle", 2, 400))
        done.set()

    appending = threading.Thread(target=append)
    appending.start()
    reports = []
    _, ledger = open_ledger(home.path)
    try:
        while not done.is_set():
            reports.append(verify_ledger(ledger.store, home.ledger_verifier, workers=1))
    finally:
        appending.join(timeout=120)
        ledger.store.close()
    assert all(code == 0 and not stderr for code, _, stderr in results), results
    bad = [r.problems[:2] for r in reports if not r.ok]
    assert not bad, f"{len(bad)} of {len(reports)} verifies during appends failed: {bad[:2]}"
    sizes = [r.tree_size for r in reports]
    assert sizes == sorted(sizes), "a later verify saw a smaller ledger"
    assert any(2 < size < 2 + 800 for size in sizes), "no verify overlapped the appends"


def test_the_same_signed_entry_racing_itself_is_stored_once(home: LedgerHome) -> None:
    """RELIABILITY 16 across connections: two writers submit one signed entry at the same
    instant; one stores it, the other gets its index back, never a second entry."""
    signer = home.actor_signer
    actor = actor_id(signer.name, signer.signing_key.public_key)
    ledgers = [open_ledger(home.path)[1] for _ in range(2)]
    try:
        for attempt in range(10):
            data = sign_entry(Statement(KIND, actor, rfc3339(1_700_000_000 + attempt), {},
                                        {"attempt": attempt}, ()), signer.signing_key.sign)
            start = threading.Barrier(2)
            receipts: list[list[Receipt]] = [[], []]

            def submit(which: int, payload: bytes = data, gate: threading.Barrier = start,
                       out: list[list[Receipt]] = receipts) -> None:
                gate.wait()
                out[which].extend(ledgers[which].append_signed([payload]))

            threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            (first,), (second,) = receipts
            assert first.index == second.index == 2 + attempt
            assert sorted([first.new, second.new]) == [False, True]
            assert first.leaf_hash == second.leaf_hash
        assert ledgers[0].store.entry_count() == 2 + 10
        report = verify_ledger(ledgers[0].store, home.ledger_verifier, workers=1)
        assert report.ok, report.problems[:3]
    finally:
        for ledger in ledgers:
            ledger.store.close()


def test_two_threads_verifying_two_ledgers_both_pass(tmp_path: Path) -> None:
    homes = []
    for name in ("a", "b"):
        made, ledger = init_ledger(tmp_path / name, origin=f"example.org/{name}",
                                   actor_name="alice")
        for start in range(0, 300, 100):
            ledger.append_drafts([Draft(KIND, {"n": n}) for n in range(start, start + 100)],
                                 made.actor_signer)
        ledger.store.close()
        homes.append(made)
    problems: list[object] = []

    def verify(made: LedgerHome) -> None:
        _, ledger = open_ledger(made.path)
        try:
            for _ in range(3):
                report = verify_ledger(ledger.store, made.ledger_verifier, workers=1)
                problems.extend(report.problems[:1])
        finally:
            ledger.store.close()

    threads = [threading.Thread(target=verify, args=(made,)) for made in homes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not problems, problems[:2]
