"""RELIABILITY 1-2: ``kill -9`` the writer at any point of an append.

Each run starts the real console script ``radledger append -`` on a ledger home that lives for
the whole test (so the ledger grows across crashes), feeds it JSON lines, reads its
``INDEX LEAF_HASH`` acknowledgements, and sends SIGKILL. After each kill the ledger must hold
every acknowledged entry with exactly the acknowledged leaf hash, dense indices, only whole
batches, nothing half-present (every entry has its level-0 node and is sealed in a block with
its checkpoint), and pass ``verify``; the next run is the restart. Nothing the writer forked
may outlive it.

Where a kill lands is recorded, not guessed: the child runs with a ``sitecustomize`` shim
(written by the test into its tmp folder, never shipped) that wraps five seams of the append
path and writes one ``@phase`` line to stderr at each step:

    prepare N          a batch of N lines starts parsing and signing (before BEGIN)
    batch N            N signed entries go to the writer            (before BEGIN)
    begin              BEGIN IMMEDIATE requested                    (before BEGIN)
    in-tx              the write transaction is open                (mid-transaction)
    sign-checkpoint    the checkpoint is being signed               (mid-transaction)
    signed-checkpoint  block and checkpoint being stored            (mid-transaction)
    commit             COMMIT running
    committed          COMMIT returned, nothing acknowledged yet
    ack N / acked N    the acknowledgement lines being printed / printed

The last line before death names the phase the kill hit. The shim can also hold the writer at
one named step (``RADLEDGER_CRASH_PAUSE_AT``) so that narrow windows (signing a checkpoint takes
a fraction of a millisecond) are hit every time, not by luck.

Delays and feed sizes come from a seed printed with the results; set ``RADLEDGER_CRASH_SEED``
to replay one (the timing of the machine still varies).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from radledger.ledger.home import LedgerHome
from radledger.ledger.setup import open_ledger
from radledger.ledger.signing import POOL_MIN_BATCH
from radledger.ledger.verify import verify_ledger

from crash_shim import SHIM

RADLEDGER = Path(sys.executable).parent / "radledger"
KIND = "x-lab.crash-test"
SEED = int(os.environ.get("RADLEDGER_CRASH_SEED", "0")) or random.SystemRandom().randrange(
    1, 2**31)
ACK = re.compile(rb"(\d+) ([0-9a-f]{64})\n")
RANDOM_RUNS = 52  # kills at random moments, alternating the two feed paces
TARGETED_PHASES = ("prepare", "begin", "in-tx", "sign-checkpoint", "signed-checkpoint",
                   "commit", "committed")
BIG_BATCH_LINES = 4000
BIG_BATCH_RUNS = 5
BIG = 1000  # a batch this large is "a big transaction"
LIVE_PIPE_BURST = 2000  # however the writer splits it, one batch reaches the signing pool

PHASE_NAMES = {
    None: "startup",
    "ready": "startup",
    "acked": "between batches (reading stdin)",
    "prepare": "before BEGIN (signing entries)",
    "batch": "before BEGIN (taking the writer)",
    "begin": "before BEGIN (taking the writer)",
    "in-tx": "mid-transaction",
    "sign-checkpoint": "signing the checkpoint",
    "signed-checkpoint": "mid-transaction",
    "commit": "during COMMIT",
    "committed": "after COMMIT, before the ack",
    "ack": "after COMMIT, printing the ack",
}



def line(run: int, n: int, pad: int = 0) -> bytes:
    body: dict[str, object] = {"run": run, "n": n}
    if pad:
        body["pad"] = "x" * pad
    return json.dumps({"kind": KIND, "body": body}, separators=(",", ":")).encode() + b"\n"


# -- the child ---------------------------------------------------------------------------------
@dataclass
class Marker:
    phase: str
    count: int | None


class Writer:
    """``radledger append -`` under the phase shim, with threads draining stdout and stderr."""

    def __init__(self, home: Path, shim: Path, stdin: IO[bytes] | int, *,
                 pause_at: str = "", pause_skip: int = 0, pause_min_batch: int = 0) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(shim), env.get("PYTHONPATH", "")) if p)
        env["RADLEDGER_CRASH_PAUSE_AT"] = pause_at
        env["RADLEDGER_CRASH_PAUSE_SKIP"] = str(pause_skip)
        env["RADLEDGER_CRASH_PAUSE_MIN_BATCH"] = str(pause_min_batch)
        env.pop("RADLEDGER_HOME", None)
        self.proc = subprocess.Popen(
            [str(RADLEDGER), "append", "-", "--home", str(home)],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        assert self.proc.stdout is not None
        self._stdout_pipe = os.fstat(self.proc.stdout.fileno()).st_ino
        self.acks: list[tuple[int, bytes]] = []
        self.bad_stdout: list[bytes] = []
        self.markers: list[Marker] = []
        self.paused = False
        self.stderr: list[bytes] = []
        self.changed = threading.Condition()
        self._stderr_done = False
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self.changed:
                match = ACK.fullmatch(raw)
                if match:
                    self.acks.append((int(match[1]), bytes.fromhex(match[2].decode())))
                elif raw.endswith(b"\n"):
                    self.bad_stdout.append(raw)
                # else: a line cut short by the kill; it was never an acknowledgement
                self.changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self.changed:
                if raw.startswith(b"@phase "):
                    parts = raw.split()
                    count = int(parts[2]) if len(parts) > 2 else None
                    self.markers.append(Marker(parts[1].decode(), count))
                elif raw == b"@paused\n":
                    self.paused = True
                else:
                    self.stderr.append(raw)
                self.changed.notify_all()
        with self.changed:
            self._stderr_done = True
            self.changed.notify_all()

    def wait_until(self, condition: Callable[[Writer], bool], timeout: float) -> bool:
        """Wait until ``condition(self)`` holds; False on timeout or once the child is gone."""
        with self.changed:
            self.changed.wait_for(lambda: condition(self) or self._stderr_done, timeout)
            return condition(self)

    def batches(self) -> list[int]:
        """Sizes of the batches handed to the writer, in order."""
        return [m.count or 0 for m in self.markers if m.phase == "batch"]

    def kill(self) -> None:
        """SIGKILL; then nothing the writer forked may outlive it holding its pipes."""
        if self.proc.returncode is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=5)
        if any(reader.is_alive() for reader in self._readers):
            leftovers = _pipe_holders(self._stdout_pipe)
            for pid in leftovers:  # descendants of the writer we started: end them by id
                os.kill(pid, 9)
            for reader in self._readers:
                reader.join(timeout=5)
            self._close()
            pytest.fail(f"processes {leftovers} forked by the writer outlived its SIGKILL, "
                        f"holding its pipes ({self.diagnostics()})")
        self._close()

    def _close(self) -> None:
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def diagnostics(self) -> str:
        tail = [f"{m.phase} {m.count or ''}".strip() for m in self.markers[-8:]]
        return (f"rc={self.proc.returncode}, last phases {tail}, {len(self.acks)} acks, "
                f"stderr {b''.join(self.stderr[-20:]).decode(errors='replace')!r}")


def _pipe_holders(inode: int) -> list[int]:
    """Pids of the processes that hold the pipe ``inode`` open."""
    target = f"pipe:[{inode}]"
    holders = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                holders.append(int(entry.name))
        except OSError:
            continue
    return holders


def feed(writer: Writer, run: int, pace: str, stop: threading.Event,
         rng: random.Random) -> None:
    """Feed JSON lines as fast as the writer takes them; keep stdin open until stopped.

    One line first, then nothing until it is acknowledged (the writer is up). Then ``trickle``
    writes 1-8 lines every 4-16 ms (many small transactions, the writer often idle), and
    ``window`` keeps ``window`` lines in flight, topping up on every acknowledgement (the
    writer never waits for input; batches of up to ``window`` lines).
    """
    stdin = writer.proc.stdin
    assert stdin is not None
    window = rng.randint(1, 2)
    try:
        stdin.write(line(run, 0))
        stdin.flush()
        writer.wait_until(lambda w: bool(w.acks) or stop.is_set(), 60)
        n = 1
        while not stop.is_set():
            if pace == "window":
                writer.wait_until(_room_for_more(n, window, stop), 0.05)
                burst = window - (n - len(writer.acks))
            else:
                burst = rng.randint(1, 8)
            if burst > 0:
                stdin.write(b"".join(line(run, i) for i in range(n, n + burst)))
                stdin.flush()
                n += burst
            if pace == "trickle":
                stop.wait(rng.uniform(0.004, 0.016))
    except (OSError, ValueError):
        pass  # the child is dead: EPIPE


def _room_for_more(sent: int, window: int, stop: threading.Event
                   ) -> Callable[[Writer], bool]:
    return lambda w: sent - len(w.acks) < window or stop.is_set()


@contextmanager
def feeding(writer: Writer, run: int, pace: str, rng: random.Random) -> Iterator[None]:
    """Run ``feed`` in a thread for the body of the with-statement; the body kills."""
    stop = threading.Event()
    thread = threading.Thread(target=feed, args=(writer, run, pace, stop,
                                                 random.Random(rng.random())), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if writer.proc.returncode is None:
            writer.proc.kill()
            writer.proc.wait(timeout=30)
        thread.join(timeout=10)
        assert not thread.is_alive(), "the feeding thread is stuck writing to a dead writer"
        assert writer.proc.stdin is not None
        try:
            writer.proc.stdin.close()
        except OSError:
            pass  # EPIPE on flushing what the dead writer never read


# -- the checks after each kill ----------------------------------------------------------------
@dataclass
class Tally:
    runs: int = 0
    acked: int = 0
    durable_unacked: int = 0


TALLY = Tally()
_TALLY_LOCK = threading.Lock()


def check_after_kill(home: LedgerHome, run: int, before: int, writer: Writer) -> int:
    """Every acknowledged entry present, dense, only whole batches, nothing half-present,
    verify ok. Returns the new ledger size."""
    why = writer.diagnostics()
    assert writer.proc.returncode == -9, f"the writer did not die by SIGKILL: {why}"
    assert not writer.bad_stdout, f"malformed acknowledgement lines {writer.bad_stdout[:3]}"
    _, ledger = open_ledger(home.path)
    store = ledger.store
    try:
        size = store.entry_count()
        rows = store.entries(0, size)
        assert [row[0] for row in rows] == list(range(size)), f"indices not dense ({why})"
        for index, leaf in writer.acks:
            found = store.entry(index)
            assert found is not None, f"acknowledged entry {index} is missing ({why})"
            assert found[0] == leaf, f"entry {index} has another leaf hash than acknowledged"
        # this run's entries: its lines 0..m-1 in order, at least the acknowledged ones
        mine = [(body["run"], body["n"]) for body in
                (json.loads(data)["body"] for _, _, _, data in rows[before:])]
        assert mine == [(run, n) for n in range(len(mine))], f"entries out of order ({why})"
        assert [i for i, _ in writer.acks] == list(range(before, before + len(writer.acks)))
        batches = writer.batches()
        whole = {sum(batches[:k]) for k in range(len(batches) + 1)}
        assert len(mine) >= len(writer.acks) and len(mine) in whole, (
            f"{len(mine)} new entries, {len(writer.acks)} acknowledged, batches {batches}")
        # nothing half-present: each entry has its level-0 node and a block with a checkpoint
        leaves = dict(store.nodes(0, 0, size))
        assert all(leaves.get(idx) == leaf for idx, _, leaf, _ in rows), "level-0 node missing"
        blocks = store.blocks(0, 1 << 30)
        assert blocks and blocks[-1][0].tree_size == size, "entries not sealed in a block"
        notes = store.checkpoints(0, 1 << 30)
        assert [h for h, _, _ in notes] == [b.height for b, _ in blocks], "block without note"
        assert len({tree_size for _, tree_size, _ in notes}) == len(notes)
        report = verify_ledger(store, home.ledger_verifier, workers=1)
        assert report.ok, f"verify after the kill of run {run}: {report.problems[:3]} ({why})"
    finally:
        store.close()
    with _TALLY_LOCK:
        TALLY.runs += 1
        TALLY.acked += len(writer.acks)
        TALLY.durable_unacked += len(mine) - len(writer.acks)
    return size


def phase_at_death(writer: Writer) -> str:
    last = writer.markers[-1].phase if writer.markers else None
    return PHASE_NAMES.get(last, f"unknown ({last})")


def finish(home: LedgerHome, capsys: pytest.CaptureFixture[str], title: str,
           phases: Counter[str], acked: int) -> None:
    """After the last kill: a plain restart appends densely and the CLI ``verify`` passes."""
    before = _size(home)
    done = subprocess.run([str(RADLEDGER), "append", "-", "--home", str(home.path)],
                          input=b"".join(line(-1, n) for n in range(5)), capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    indices = [int(ack.split()[0]) for ack in done.stdout.splitlines()]
    assert indices == list(range(before, before + 5))
    cli = subprocess.run([str(RADLEDGER), "verify", "--home", str(home.path)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 0 and cli.stdout.startswith("ok:"), cli.stderr
    with capsys.disabled():
        print(f"\n[crash] {title}: {sum(phases.values())} kills, {acked} acknowledged entries "
              f"checked, ledger size {before + 5}, seed {SEED}; kills landed {dict(phases)}")
        print(f"[crash] test_crash.py so far: {TALLY.runs} kills, {TALLY.acked} acknowledged "
              f"entries checked, 0 lost; {TALLY.durable_unacked} committed but unacknowledged")


def _size(home: LedgerHome) -> int:
    _, ledger = open_ledger(home.path)
    try:
        return ledger.store.entry_count()
    finally:
        ledger.store.close()


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture()
def shim(tmp_path: Path) -> Path:
    folder = tmp_path / "shim"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SHIM)
    return folder


@pytest.fixture()
def crash_home(tmp_path: Path) -> LedgerHome:
    """One ledger home per test, made by the CLI, reused by every run of the test."""
    return make_home(tmp_path / "home")


def make_home(path: Path) -> LedgerHome:
    subprocess.run([str(RADLEDGER), "init", str(path), "--origin", "example.org/crash",
                    "--actor", "alice"], check=True, capture_output=True, timeout=60)
    home, ledger = open_ledger(path)
    ledger.store.close()
    return home


# -- the tests ---------------------------------------------------------------------------------
def test_the_phase_shim_sees_every_step(crash_home: LedgerHome, shim: Path) -> None:
    """Guards the harness: if a seam is renamed, the crash tests fail instead of going blind."""
    writer = Writer(crash_home.path, shim, subprocess.PIPE)
    assert writer.proc.stdin is not None
    writer.proc.stdin.write(b"".join(line(0, n) for n in range(3)))
    writer.proc.stdin.close()
    assert writer.proc.wait(timeout=60) == 0, writer.diagnostics()
    writer.kill()  # already gone: only closes the pipes and checks for leftovers
    seen = {m.phase for m in writer.markers}
    assert seen >= set(PHASE_NAMES) - {None}, seen
    assert len(writer.acks) == 3 and not writer.stderr, writer.diagnostics()


def kill_at_random_moments(home: LedgerHome, shim: Path, pace: str, runs: range
                           ) -> tuple[Counter[str], int]:
    """For each run: start the writer, feed it, SIGKILL 0-300 ms after its first
    acknowledgement, check the ledger. Returns where the kills landed and the acks checked."""
    rng = random.Random(f"{SEED}-{pace}")
    size = _size(home)
    phases: Counter[str] = Counter()
    acked = 0
    for run in runs:
        writer = Writer(home.path, shim, subprocess.PIPE)
        with feeding(writer, run, pace, rng):
            assert writer.wait_until(lambda w: bool(w.acks), 60), writer.diagnostics()
            time.sleep(rng.uniform(0.0, 0.3))
            writer.kill()
        phases[phase_at_death(writer)] += 1
        size = check_after_kill(home, run, size, writer)
        acked += len(writer.acks)
    return phases, acked


@pytest.mark.slow
def test_kill_9_at_random_moments_of_an_append_stream(
        tmp_path: Path, shim: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL 0-300 ms after the first acknowledgement, at least 50 times in all.

    Two feed paces, each on its own ledger home made once and grown by its 26 runs, run side
    by side (a full verify after every kill costs in proportion to the ledger, so two ledgers
    of 26 runs cost half of one of 52, and the two loops overlap): ``trickle`` leaves the
    writer idle between small batches, ``window`` keeps it busy committing one or two lines
    at a time.
    """
    paces = ("trickle", "window")
    homes = {pace: make_home(tmp_path / pace) for pace in paces}
    with ThreadPoolExecutor(len(paces)) as pool:
        futures = {pace: pool.submit(kill_at_random_moments, homes[pace], shim, pace,
                                     range(i, RANDOM_RUNS, len(paces)))
                   for i, pace in enumerate(paces)}
        results = {pace: future.result() for pace, future in futures.items()}
    runs = sum(sum(phases.values()) for phases, _ in results.values())
    assert runs == RANDOM_RUNS and runs >= 50, runs  # RELIABILITY 1
    landed = sum((phases for phases, _ in results.values()), Counter())
    # random timing reached inside the append, not only the gaps between batches
    assert len(landed) >= 4, landed
    for pace, (phases, acked) in results.items():
        finish(homes[pace], capsys, f"random kills, {pace} feed", phases, acked)


@pytest.mark.slow
def test_kill_9_at_each_named_step_of_an_append(
        crash_home: LedgerHome, shim: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The shim holds the writer at one step, a few batches in; SIGKILL lands exactly there."""
    rng = random.Random(f"{SEED}-steps")
    size = _size(crash_home)
    phases: Counter[str] = Counter()
    acked = 0
    for run, phase in enumerate(TARGETED_PHASES):
        writer = Writer(crash_home.path, shim, subprocess.PIPE, pause_at=phase,
                        pause_skip=rng.randint(1, 4))
        with feeding(writer, run, "trickle", rng):
            assert writer.wait_until(lambda w: w.paused, 60), writer.diagnostics()
            writer.kill()
        assert writer.markers[-1].phase == phase, writer.diagnostics()
        phases[phase] += 1
        before = size
        size = check_after_kill(crash_home, run, size, writer)
        unacknowledged = size - before - len(writer.acks)
        if phase == "committed":
            # durable though never acknowledged: a client retrying it gets the same entry back
            assert unacknowledged == writer.batches()[-1], writer.diagnostics()
        else:
            assert unacknowledged == 0, (phase, writer.diagnostics())
        acked += len(writer.acks)
    finish(crash_home, capsys, "kills held at named steps", phases, acked)


def _uncommitted_wal_frames(wal: Path) -> int:
    """Frames after the last commit frame of the WAL's current generation: pages that a
    transaction wrote before it died uncommitted. 0 if there is no WAL."""
    if not wal.exists() or wal.stat().st_size < 32:  # the WAL header
        return 0
    data = wal.read_bytes()
    page_size = int.from_bytes(data[8:12], "big")
    salts = data[16:24]
    trailing, offset = 0, 32
    while offset + 24 + page_size <= len(data):
        header = data[offset:offset + 24]
        if header[8:16] != salts:
            break
        trailing = 0 if int.from_bytes(header[4:8], "big") else trailing + 1
        offset += 24 + page_size
    return trailing


def _big_batch_in_transaction(writer: Writer) -> bool:
    big = [i for i, m in enumerate(writer.markers) if m.phase == "batch" and (m.count or 0) >= BIG]
    return bool(big) and any(m.phase == "in-tx" for m in writer.markers[big[-1]:])


@pytest.mark.slow
def test_kill_9_inside_a_large_batch_leaves_nothing_half_present(
        crash_home: LedgerHome, shim: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """4000 lines from a file: the kill lands inside a transaction of thousands of rows, large
    enough that SQLite spills uncommitted pages into the WAL before COMMIT."""
    rng = random.Random(f"{SEED}-big")
    size = _size(crash_home)
    phases: Counter[str] = Counter()
    acked = 0
    spilled = 0
    pauses = ["commit", "sign-checkpoint"] + [""] * (BIG_BATCH_RUNS - 2)
    for run, pause in enumerate(pauses):
        source = tmp_path / f"batch-{run}.jsonl"
        source.write_bytes(b"".join(line(run, n, pad=600) for n in range(BIG_BATCH_LINES)))
        with source.open("rb") as stdin:
            writer = Writer(crash_home.path, shim, stdin, pause_at=pause,
                            pause_min_batch=BIG)
        try:
            if pause:
                held = writer.wait_until(lambda w: w.paused and _big_batch_in_transaction(w), 60)
            else:
                held = writer.wait_until(_big_batch_in_transaction, 60)
                time.sleep(rng.uniform(0.0, 0.15))
            assert held, writer.diagnostics()
        finally:
            writer.kill()
        if pause == "commit":
            spilled = _uncommitted_wal_frames(crash_home.database.with_name(
                crash_home.database.name + "-wal"))
        phases[f"held at {pause}" if pause else phase_at_death(writer)] += 1
        size = check_after_kill(crash_home, run, size, writer)
        acked += len(writer.acks)
    # the held transaction had really written uncommitted pages to disk before the kill
    assert spilled > 0, "no uncommitted WAL frames: the large transaction never spilled"
    finish(crash_home, capsys, f"kills inside {BIG_BATCH_LINES}-line batches", phases, acked)


def test_a_large_batch_from_a_live_pipe_is_acknowledged_and_nothing_outlives_a_kill(
        crash_home: LedgerHome, shim: Path) -> None:
    """A producer that keeps its pipe open (``tail -f``-style) sends one burst big enough for
    the signing pool; the burst must be acknowledged, and a kill must leave no process.

    Regression: the pool was forked while the stdin reader thread held ``sys.stdin``'s lock;
    each forked worker deadlocked closing ``sys.stdin`` before its initializer (and its
    parent-death signal) ran, so the burst was never signed and the workers outlived the kill.
    """
    writer = Writer(crash_home.path, shim, subprocess.PIPE)
    assert writer.proc.stdin is not None
    try:
        writer.proc.stdin.write(line(0, 0))
        writer.proc.stdin.flush()
        # acknowledged: the writer is up, its stdin reader blocked on the open pipe
        assert writer.wait_until(lambda w: len(w.acks) == 1, 60), writer.diagnostics()
        writer.proc.stdin.write(b"".join(line(0, n) for n in range(1, LIVE_PIPE_BURST + 1)))
        writer.proc.stdin.flush()  # and keep it open
        done = writer.wait_until(lambda w: len(w.acks) == LIVE_PIPE_BURST + 1, 10)
        pooled = max(m.count or 0 for m in writer.markers if m.phase == "prepare")
        assert pooled >= POOL_MIN_BATCH, f"no batch reached the signing pool: {pooled}"
        assert done, f"{len(writer.acks)} of {LIVE_PIPE_BURST + 1} acknowledged after 10 s"
    finally:
        writer.kill()  # fails the test if a forked signer survives (and ends it by pid)
        try:
            writer.proc.stdin.close()
        except OSError:
            pass
