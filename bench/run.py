"""radledger benchmark: appends, verify and inclusion proofs, each against a floor measured in
the same run, so results compare as ratios on a noisy machine.

    .venv/bin/python bench/run.py [--entries N] [--verify-entries N] [--quick]
                                  [--repeat K] [--rebuild] [--proofs N]
    .venv/bin/python bench/run.py --profile      # cProfile of the CLI append and verify paths

1. ``radledger append -`` fed N JSON lines from a file on stdin, end to end, acks counted;
   against a plain SQLite insert of the same entry bytes and the signing floor (1 and 2
   processes).
2. ``radledger verify`` on a ledger of --verify-entries entries (built through
   ``Ledger.append_drafts`` and cached under bench/out/) against the verify floor on all cores.
3. ``proofs.inclusion`` latency for random indices, proof size, and the CLI for context.

Writes bench/out/results.md (bench/out/results-quick.md with --quick). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import floors
import workload
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from floors import Timed
from machine import machine_info

from radledger.core import jcs
from radledger.core.entry import actor_id
from radledger.ledger import proofs
from radledger.ledger.home import load_home
from radledger.ledger.service import Draft
from radledger.ledger.setup import init_ledger, open_ledger

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
BATCH = 4096
CORES = os.cpu_count() or 1
GOAL_APPEND_RATE = 20_000
GOAL_APPEND_VS_FLOOR = 2.0
GOAL_VERIFY_VS_FLOOR = 1.5
GOAL_PROOF_MEDIAN_MS = 2.0
STALL_S = 120  # an append run silent this long is declared hung
VERIFY_TIMEOUT_S = 4 * 3600
LEDGER_FORMAT = 1  # bump when the workload changes, so cached ledgers are rebuilt


def radledger_cli() -> str:
    """The CLI of the interpreter's environment (the venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("radledger")
    if beside.exists():
        return str(beside)
    found = shutil.which("radledger")
    if found is None:
        sys.exit("radledger CLI not found: run with the venv's python (.venv/bin/python)")
    return found


CLI = radledger_cli()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_now() -> str:
    """1-minute load average, and CPU pressure (share of the last 10 s some task waited for
    a CPU, Linux PSI) where the kernel reports it."""
    text = f"load {os.getloadavg()[0]:.2f}"
    try:
        some = Path("/proc/pressure/cpu").read_text().split("\n")[0]
        text += f", cpu pressure {float(some.split()[1].split('=')[1]):.0f}%"
    except (OSError, IndexError, ValueError):
        pass
    return text


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Results:
    """Everything measured, plus notes, in measurement order."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # figure, value, goal, met
    diagnostics: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    loads: list[tuple[str, str]] = field(default_factory=list)

    def row(self, figure: str, value: str, goal: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("**yes**" if met else "**NO**")
        self.rows.append((figure, value, goal, verdict))

    def load(self, what: str) -> None:
        self.loads.append((what, load_now()))


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} entries/s"


# -- 1. appends ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CliAppend:
    count: int
    wall: float
    cpu: float
    first_ack: float
    blocks: int
    failure: str | None = None  # why the run did not acknowledge every line


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """End a CLI run and any workers it forked (it was started in its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def cli_append(home: Path, input_path: Path, expected: int) -> CliAppend:
    """Run `radledger append -` with the input file on stdin; count acknowledgement lines.

    A run that prints nothing for STALL_S seconds is killed with its workers and reported.
    """
    errors = OUT / "append-stderr.txt"
    stalled = threading.Event()
    with input_path.open("rb") as stdin, errors.open("wb") as stderr:
        cpu0, t0 = children_cpu(), time.perf_counter()
        proc = subprocess.Popen([CLI, "append", "-", "--home", str(home)], stdin=stdin,
                                stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
        assert proc.stdout is not None
        last_output = [time.monotonic()]

        def watchdog() -> None:
            while proc.poll() is None:
                if time.monotonic() - last_output[0] > STALL_S:
                    stalled.set()
                    kill_group(proc)
                    return
                time.sleep(1)

        threading.Thread(target=watchdog, daemon=True).start()
        acks, first_ack, tail = 0, 0.0, b""
        while chunk := proc.stdout.read1(1 << 16):
            last_output[0] = time.monotonic()
            if not acks:
                first_ack = time.perf_counter() - t0
            acks += chunk.count(b"\n")
            tail = (tail + chunk)[-200:]
        code = proc.wait()
        wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
        kill_group(proc)  # workers left behind by a crashed run hold no pipe of ours now
    failure = None
    if stalled.is_set():
        failure = (f"hung: no output for {STALL_S} s, killed after {acks:,} of "
                   f"{expected:,} acks")
    elif code != 0 or acks != expected:
        failure = (f"exit {code} after {acks:,} of {expected:,} acks: "
                   f"{errors.read_text()[-300:].strip()}")
    elif int(tail.strip().splitlines()[-1].split()[0]) != expected + 1:
        failure = f"unexpected last acknowledgement {tail.strip().splitlines()[-1]!r}"
    with sqlite3.connect(f"file:{load_home(home).database}?mode=ro", uri=True) as conn:
        blocks = conn.execute("SELECT count(*) FROM blocks").fetchone()[0] - 1  # minus genesis
    return CliAppend(acks, wall, cpu, first_ack, blocks, failure)


def run_cli(argv: list[str], timeout: float) -> tuple[int | None, str, float, float]:
    """(exit code or None on timeout, stdout + stderr, wall s, CPU s incl. workers)."""
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.Popen([CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, _ = proc.communicate()
        code = None
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    kill_group(proc)
    return code, out.decode(errors="replace"), wall, cpu


def plain_sqlite(datas: list[bytes]) -> Timed:
    """Insert the same entry bytes into a bare table: WAL, synchronous=FULL, 4096 per txn."""
    db = OUT / "plain.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    rows = list(enumerate(datas))
    cpu0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, len(rows), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO entries (idx, data) VALUES (?, ?)", rows[start:start + BATCH])
        conn.execute("COMMIT")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    conn.close()
    return Timed(len(rows), wall, cpu, 1)


def fresh_home(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([CLI, "init", str(home), "--origin", "bench.local/append", "--actor", "bench"],
                   check=True, capture_output=True)


def entry_bytes(home: Path, n: int, res: Results) -> list[bytes]:
    """The entries the CLI stored, or, if it failed, the same entries signed here."""
    loaded = load_home(home)
    with sqlite3.connect(f"file:{loaded.database}?mode=ro", uri=True) as conn:
        datas = [r[0] for r in conn.execute("SELECT data FROM entries WHERE idx >= 2 ORDER BY idx")]
    if len(datas) < n:
        signer = loaded.actor_signer
        actor = actor_id(signer.name, signer.signing_key.public_key)
        datas = [floors.signed_bytes(floors.envelope(i, actor), signer.signing_key.sign)
                 for i in range(n)]
        res.notes.append("The CLI append failed, so the plain SQLite insert used the same "
                         "entries signed by the benchmark (same format and size).")
    return datas


def runs(values: list[float], unit: str = "", digits: int = 0) -> str:
    """All repetitions, for the reader to judge the noise."""
    if len(values) < 2:
        return ""
    return "; runs: " + ", ".join(f"{v:,.{digits}f}" for v in values) + unit


def bench_append(n: int, repeat: int, res: Results) -> None:
    input_path = OUT / f"append-input-{n}.jsonl"
    size = workload.write_lines(input_path, n)
    home = OUT / "append-ledger"
    seed = os.urandom(32)
    actor = actor_id("bench", Ed25519PrivateKey.from_private_bytes(seed).public_key()
                     .public_bytes_raw())
    floors.check_sign_splice(seed, actor)
    apps: list[CliAppend] = []
    plains: list[Timed] = []
    sign1s: list[Timed] = []
    sign_ns: list[Timed] = []
    datas: list[bytes] = []
    for r in range(repeat):
        tag = f" #{r + 1}" if repeat > 1 else ""
        fresh_home(home)
        log(f"1.{tag} radledger append - : {n:,} lines ({size / n:.0f} bytes each) ...")
        res.load("append (CLI)" + tag)
        app = cli_append(home, input_path, n)
        apps.append(app)
        log(f"   {app.count / app.wall:,.0f} entries/s" if app.failure is None
            else f"   FAILED: {app.failure}")
        datas = datas or entry_bytes(home, n, res)
        log("   plain SQLite insert of the same bytes ...")
        res.load("plain SQLite" + tag)
        plains.append(plain_sqlite(datas))
        log("   signing floor, 1 process ...")
        res.load("signing floor 1 proc" + tag)
        sign1s.append(floors.run_single(floors.prepare_sign, n, seed, actor))
        log(f"   signing floor, {CORES} processes ...")
        res.load(f"signing floor {CORES} procs" + tag)
        sign_ns.append(floors.run_parallel(floors.prepare_sign, n, CORES, seed, actor))

    entry_size = sum(map(len, datas)) / len(datas)
    ok = [a for a in apps if a.failure is None]
    failures = [a.failure for a in apps if a.failure is not None]
    best = min(ok, key=lambda a: a.wall) if ok else None
    app_rate = best.count / best.wall if best else 0.0
    figure = "**1. `radledger append -`** (durable, signed, sealed; acks counted)"
    goal = f">= {GOAL_APPEND_RATE:,} entries/s"
    failed = (f"; **{len(failures)} of {repeat} runs FAILED**: {failures[0]}"
              if failures else "")
    if best is None:
        res.row(figure, f"**FAILED**: {failures[0]} ({n:,} lines, entry {entry_size:.0f} B)",
                goal, False)
    else:
        res.row(figure,
                f"**{app_rate:,.0f} entries/s** ({n:,} in {best.wall:.1f} s wall, "
                f"{best.cpu:.1f} s CPU; first ack {best.first_ack:.2f} s; {best.blocks} blocks, "
                f"{best.count / max(best.blocks, 1):,.0f} entries each; entry {entry_size:.0f} B"
                f"{runs([a.count / a.wall for a in ok])}){failed}",
                goal, app_rate >= GOAL_APPEND_RATE)

    def compare(floor: Timed) -> str:
        if best is None:
            return "append: n/a"
        return (f"append is **{floor.rate / app_rate:.2f}x** slower "
                f"(CPU work {best.cpu / floor.cpu:.2f}x)")

    plain = min(plains, key=lambda t: t.wall)
    res.row("1a. plain SQLite insert, same bytes (WAL, synchronous=FULL, 4096 per txn)",
            f"{plain.rate:,.0f} entries/s ({plain.wall:.2f} s); {compare(plain)}")
    for label, timings in (("1 process", sign1s), (f"{CORES} processes", sign_ns)):
        floor = min(timings, key=lambda t: t.wall)
        met = best is not None and floor.rate / app_rate <= GOAL_APPEND_VS_FLOOR
        res.row(f"1b. signing floor, {label} (JCS + Ed25519 sign + leaf hash)",
                f"{floor.rate:,.0f} entries/s ({floor.wall:.2f} s, {floor.cpu:.2f} s CPU"
                f"{runs([t.rate for t in timings], ' entries/s')}); {compare(floor)}",
                f"append within {GOAL_APPEND_VS_FLOOR:g}x", met)


# -- 2. verify -----------------------------------------------------------------------------
def warm_page_cache(database: Path) -> None:
    """Read the database files once (untimed), so verify and its floor both start warm."""
    for path in (database, Path(f"{database}-wal")):
        if path.exists():
            with path.open("rb") as f:
                while f.read(1 << 23):
                    pass


def verify_ledger_dir(v: int) -> Path:
    return OUT / f"verify-ledger-{v}"


def build_verify_ledger(v: int, rebuild: bool, res: Results) -> Path:
    """The cached ledger of ``v`` workload entries (+2 genesis), built if missing."""
    base = verify_ledger_dir(v)
    home, marker = base / "home", base / "complete.json"
    if marker.exists() and not rebuild:
        info = json.loads(marker.read_text())
        if info.get("format") == LEDGER_FORMAT and info.get("entries") == v:
            log(f"2. reusing cached ledger {base} (built {info['built']})")
            res.notes.append(f"Verify ledger reused from cache ({base.relative_to(BENCH.parent)}, "
                             f"built {info['built']} at {info['rate']:,.0f} entries/s through "
                             "`Ledger.append_drafts`).")
            return home
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    loaded, ledger = init_ledger(home, "bench.local/verify", "bench")
    log(f"2. building a ledger of {v:,} entries via Ledger.append_drafts ({BATCH} per batch) ...")
    res.load("build (append_drafts)")
    spent, next_report = 0.0, v // 10
    for start in range(0, v, BATCH):
        drafts = []
        for i in range(start, min(start + BATCH, v)):
            value = workload.line_value(i)
            drafts.append(Draft(kind=workload.KIND, body=value["body"], subject=value["subject"]))
        t0 = time.perf_counter()
        ledger.append_drafts(drafts, loaded.actor_signer)
        spent += time.perf_counter() - t0
        if start + BATCH >= next_report:
            log(f"   {start + len(drafts):,} entries, {(start + len(drafts)) / spent:,.0f}/s")
            next_report += v // 10
    ledger.store.close()
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    marker.write_text(json.dumps({"format": LEDGER_FORMAT, "entries": v, "built": built,
                                  "rate": v / spent}))
    res.row("2a. building it: `Ledger.append_drafts`, 4096 per call (library, no CLI)",
            f"{v / spent:,.0f} entries/s ({spent:.1f} s)")
    return home


def bench_verify(v: int, rebuild: bool, repeat: int, res: Results) -> Path:
    home = build_verify_ledger(v, rebuild, res)
    loaded = load_home(home)
    with sqlite3.connect(f"file:{loaded.database}?mode=ro", uri=True) as conn:
        total = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    keys = {actor_id(s.name, s.signing_key.public_key): s.signing_key.public_key
            for s in (loaded.ledger_signer, loaded.actor_signer)}
    floors.check_unsign(loaded.database)
    warm_page_cache(loaded.database)
    clis: list[tuple[float, float]] = []
    floor_runs: list[Timed] = []
    for r in range(repeat):
        tag = f" #{r + 1}" if repeat > 1 else ""
        log(f"   radledger verify on {total:,} entries{tag} ...")
        res.load("verify (CLI)" + tag)
        code, output, wall, cpu = run_cli(["verify", "--home", str(home)], VERIFY_TIMEOUT_S)
        if code != 0 or not output.startswith("ok:"):
            sys.exit(f"radledger verify failed (exit {code}): {output[-2000:]}")
        log(f"   {wall:.1f} s: {output.strip()}")
        clis.append((wall, cpu))
        log(f"   verify floor, {CORES} processes ...")
        res.load(f"verify floor {CORES} procs" + tag)
        floor_runs.append(floors.run_parallel(floors.prepare_verify, total, CORES,
                                              loaded.database, keys))
        log(f"   {floor_runs[-1].wall:.1f} s")
    wall, cpu = min(clis)
    floor = min(floor_runs, key=lambda t: t.wall)
    ratio = wall / floor.wall
    res.row(f"**2. `radledger verify`** on {total:,} entries (CLI, default workers = {CORES})",
            f"**{wall:.1f} s** ({rate(total, wall)}, {cpu:.1f} s CPU"
            f"{runs([w for w, _ in clis], ' s', 1)})")
    res.row(f"2b. verify floor, {CORES} processes (leaf hash + loads_canonical + Ed25519 verify)",
            f"{floor.wall:.1f} s ({floor.rate:,.0f} entries/s, {floor.cpu:.1f} s CPU"
            f"{runs([t.wall for t in floor_runs], ' s', 1)}); verify takes **{ratio:.2f}x** the "
            f"floor (CPU work {cpu / floor.cpu:.2f}x)",
            f"verify within {GOAL_VERIFY_VS_FLOOR:g}x", ratio <= GOAL_VERIFY_VS_FLOOR)
    return home


# -- 3. proofs -----------------------------------------------------------------------------
def bench_proofs(home: Path, count: int, cli_runs: int, res: Results) -> None:
    _, ledger = open_ledger(home)
    store = ledger.store
    size = proofs.sealed_size(store)
    rng = random.Random(20260131)
    indices = [rng.randrange(size) for _ in range(count)]
    log(f"3. {count:,} inclusion proofs at tree size {size:,} ...")
    res.load("inclusion proofs")
    for index in indices[:20]:  # warm-up: imports, statement cache
        proofs.inclusion(store, index)
    times, lengths = [], []
    for index in indices:
        t0 = time.perf_counter_ns()
        result = proofs.inclusion(store, index)
        times.append((time.perf_counter_ns() - t0) / 1e6)
        lengths.append(len(result.proof))
    store.close()
    median, p99 = statistics.median(times), statistics.quantiles(times, n=100)[98]
    res.row(f"**3. `proofs.inclusion(store, i)`**, {count:,} random i, tree {size:,} (library)",
            f"**median {median:.3f} ms**, p99 {p99:.3f} ms, max {max(times):.3f} ms",
            f"median < {GOAL_PROOF_MEDIAN_MS:g} ms", median < GOAL_PROOF_MEDIAN_MS)
    res.row("3a. proof size",
            f"{min(lengths)}-{max(lengths)} hashes, median {statistics.median(lengths):g} "
            f"({32 * statistics.median(lengths):,.0f} bytes)")

    walls = []
    for index, length in zip(indices[:cli_runs], lengths, strict=False):
        t0 = time.perf_counter()
        done = subprocess.run([CLI, "proof", "inclusion", str(index), "--home", str(home),
                               "--json"], check=False, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        if done.returncode != 0 or len(json.loads(done.stdout)["proof"]) != length:
            sys.exit(f"radledger proof inclusion {index} failed: {done.stderr[-2000:]}")
    starts = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([CLI, "--help"], check=True, capture_output=True)
        starts.append(time.perf_counter() - t0)
    res.row(f"3b. `radledger proof inclusion` CLI, {cli_runs} runs (process start included)",
            f"median {statistics.median(walls) * 1000:.0f} ms wall (`radledger --help` alone: "
            f"{statistics.median(starts) * 1000:.0f} ms)")


# -- diagnostics ---------------------------------------------------------------------------
def per_op_us(fn: Callable[[object], object], items: list[object]) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - t0) / len(items) * 1e6


def diagnostics(res: Results, count: int = 3000) -> None:
    """Single-process cost of each step of an entry, in microseconds."""
    key = Ed25519PrivateKey.generate()
    actor = actor_id("bench", key.public_key().public_bytes_raw())
    envs = [floors.envelope(i, actor) for i in range(count)]
    integral = [{**e, "body": {**e["body"], "value": round(e["body"]["value"])}} for e in envs]
    datas = [floors.signed_bytes(e, key.sign) for e in envs]
    messages = [(floors.SIGNATURE_CONTEXT + m, sig) for m, sig in map(floors.unsign, datas)]
    lines = [workload.line_bytes(i) for i in range(count)]
    public = key.public_key()
    res.diagnostics += [
        ("`jcs.loads` of an input line (CLI parse)", f"{per_op_us(jcs.loads, lines):.1f}"),
        ("`jcs.canonicalize` of the envelope (body has a float)",
         f"{per_op_us(jcs.canonicalize, envs):.1f}"),
        ("`jcs.canonicalize`, same envelope with the float made an integer",
         f"{per_op_us(jcs.canonicalize, integral):.1f}"),
        ("Ed25519 sign (`cryptography`)",
         f"{per_op_us(key.sign, [m for m, _ in messages]):.1f}"),
        ("Ed25519 verify (`cryptography`)",
         f"{per_op_us(lambda ms: public.verify(ms[1], ms[0]), messages):.1f}"),
        ("`jcs.loads_canonical` of the entry bytes",
         f"{per_op_us(jcs.loads_canonical, datas):.1f}"),
        ("SHA-256 leaf hash", f"{per_op_us(floors.leaf_hash, datas):.2f}"),
    ]


# -- profiling (optional) ------------------------------------------------------------------
def profile(n: int) -> None:
    """cProfile the CLI append of ``n`` lines and a single-process verify of that ledger."""
    input_path = OUT / f"append-input-{n}.jsonl"
    workload.write_lines(input_path, n)
    home = OUT / "profile-ledger"
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([CLI, "init", str(home), "--origin", "bench.local/profile", "--actor", "bench"],
                   check=True, capture_output=True)
    runs = {"append": ["append", "-"], "verify": ["verify", "--workers", "1"]}
    for name, argv in runs.items():
        stats_path = OUT / f"profile-{name}.prof"
        with input_path.open("rb") as stdin:
            subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats_path), CLI, *argv,
                            "--home", str(home)], stdin=stdin, stdout=subprocess.DEVNULL,
                           check=True)
        text_path = OUT / f"profile-{name}.txt"
        with text_path.open("w") as out:
            stats = pstats.Stats(str(stats_path), stream=out)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(30)
        log(f"wrote {text_path}")


# -- report --------------------------------------------------------------------------------
def render(command: str, info: list[tuple[str, str]], res: Results) -> str:
    out = ["# radledger benchmark results", "", f"Command: `{command}`", ""]
    out += ["| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info] + [""]
    out += ["| figure | measured (same run) | goal | met |", "|---|---|---|---|"]
    out += [f"| {f} | {v} | {g} | {m} |" for f, v, g, m in res.rows] + [""]
    if res.diagnostics:
        out += ["Per-entry costs, one process, microseconds (3,000 workload entries):", "",
                "| step | us |", "|---|---:|"]
        out += [f"| {k} | {v} |" for k, v in res.diagnostics] + [""]
    out += ["Notes:", ""] + [f"- {n}" for n in res.notes]
    out += ["- Machine load when each measurement started (other users' jobs included; "
            "2 cores): " + "; ".join(f"{what}: {value}" for what, value in res.loads) + ".", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int,
                        help="lines fed to `radledger append -` (default 200,000; 5,000 with "
                             "--quick; 20,000 with --profile)")
    parser.add_argument("--verify-entries", type=int,
                        help="entries in the ledger verified and proved (default 1,000,000; "
                             "20,000 with --quick)")
    parser.add_argument("--proofs", type=int, default=2000, help="random inclusion proofs")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (5,000 appends, 20,000 verify entries), < 1 minute")
    parser.add_argument("--repeat", type=int,
                        help="run each timed figure of steps 1 and 2 this many times, "
                             "alternating, and keep the fastest (default 2; 1 with --quick)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached verify ledger")
    parser.add_argument("--profile", action="store_true",
                        help="only cProfile the CLI append of --entries lines and a one-worker "
                             "verify of that ledger, into bench/out/profile-*.txt")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.profile:
        profile(args.entries or 20_000)
        return
    quick = args.quick
    args.entries = args.entries or (5000 if quick else 200_000)
    args.verify_entries = args.verify_entries or (20_000 if quick else 1_000_000)
    args.repeat = max(1, args.repeat or (1 if quick else 2))
    cli_runs = 3 if quick else 5
    command = " ".join(["python bench/run.py", *sys.argv[1:]])
    info = machine_info()
    res = Results()
    t0 = time.perf_counter()
    bench_append(args.entries, args.repeat, res)
    home = bench_verify(args.verify_entries, args.rebuild, args.repeat, res)
    bench_proofs(home, args.proofs, cli_runs, res)
    diagnostics(res)
    res.notes.insert(0, f"Steps 1 and 2: each figure is the fastest of {args.repeat} run(s), "
                     "subject and floors alternating. 'CPU work' is the subject's CPU seconds "
                     "(user + sys, all its processes) over the floor's: other jobs on the "
                     "machine stretch wall time much more than CPU time.")
    res.notes.append(f"Whole run took {(time.perf_counter() - t0) / 60:.1f} minutes. "
                     "Ledgers live in bench/out/ on the local disk; the verify ledger's files were "
                     "read once before timing, so verify, its floor and the proofs ran with a "
                     "warm page cache.")
    text = render(command, info, res)
    path = OUT / ("results-quick.md" if args.quick else "results.md")
    path.write_text(text)
    print(text)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
