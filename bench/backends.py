"""PostgreSQL against SQLite in one run (issue 7): appends/s and inclusion-proof latency.

    .venv/bin/python bench/backends.py [--entries N] [--singles N] [--proofs N] [--repeat K]

Starts its own throwaway PostgreSQL cluster (tests/pgcluster.py: initdb/pg_ctl of Debian's
postgresql, fsync and synchronous_commit on, data checksums) on loopback, and for each backend
in turn, alternating, builds a fresh ledger through the library (``Ledger.append_drafts``,
the path every shell uses) and measures:

1. batched appends: N entries in blocks of 256 (one transaction, one block each);
2. single appends: one entry per transaction/block, the interactive case (a note, an API
   POST), one client;
3. the same with 4 client processes at once (the sequencer serialises them);
4. ``proofs.inclusion`` latency for random indices on the batched ledger.

Writes bench/out/backends.md; bench/README.md has the table and the command.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from machine import machine_info  # noqa: E402

from pgcluster import PgCluster  # noqa: E402
from radledger.ledger import proofs  # noqa: E402
from radledger.ledger.service import Draft  # noqa: E402
from radledger.ledger.setup import init_ledger, open_ledger  # noqa: E402

BATCH = 256
CLIENTS = 4


def _draft(n: int) -> Draft:
    return Draft("x-lab.bench", {"n": n, "series": "1.2.826.0.1.3680043.8.498.1",
                                 "qc": "pass", "reader": "r1"})


def batched(home: Path, url: str | None, entries: int) -> float:
    made, ledger = init_ledger(home, "bench.example/backends", "bench", database_url=url)
    start = time.perf_counter()
    for first in range(0, entries, BATCH):
        ledger.append_drafts([_draft(n) for n in range(first, min(entries, first + BATCH))],
                             made.actor_signer)
    took = time.perf_counter() - start
    ledger.store.close()
    return entries / took


def _singles(home: Path, count: int, offset: int) -> None:
    made, ledger = open_ledger(home)
    for n in range(count):
        ledger.append_drafts([_draft(offset + n)], made.actor_signer)
    ledger.store.close()


def singles(home: Path, url: str | None, count: int, clients: int) -> float:
    made, ledger = init_ledger(home, "bench.example/singles", "bench", database_url=url)
    ledger.store.close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_singles, args=(home, count, c * count))
             for c in range(clients)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    took = time.perf_counter() - start
    assert all(p.exitcode == 0 for p in procs)
    _, ledger = open_ledger(home)
    size = ledger.store.entry_count()
    ledger.store.close()
    assert size == 2 + clients * count, size
    return clients * count / took


def proof_latency(home: Path, count: int) -> tuple[float, float]:
    _, ledger = open_ledger(home)
    size = ledger.store.entry_count()
    rng = random.Random(7)
    times = []
    for _ in range(count):
        index = rng.randrange(size)
        start = time.perf_counter()
        proofs.inclusion(ledger.store, index)
        times.append((time.perf_counter() - start) * 1000)
    ledger.store.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--singles", type=int, default=500, help="per client")
    parser.add_argument("--proofs", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    cluster = PgCluster()
    cluster.init()
    cluster.start()
    results: dict[str, dict[str, list[float]]] = {"sqlite": {}, "postgresql": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="radledger-bench-") as tmp:
            for round_ in range(args.repeat):
                for name in ("sqlite", "postgresql") if round_ % 2 == 0 else (
                        "postgresql", "sqlite"):
                    def url(backend: str = name) -> str | None:
                        return cluster.create_database() if backend == "postgresql" else None

                    base = Path(tmp) / f"{name}-{round_}"
                    r = results[name]
                    r.setdefault("batched", []).append(
                        batched(base / "batched", url(), args.entries))
                    median, p99 = proof_latency(base / "batched", args.proofs)
                    r.setdefault("proof_median", []).append(median)
                    r.setdefault("proof_p99", []).append(p99)
                    r.setdefault("single", []).append(
                        singles(base / "single", url(), args.singles, 1))
                    r.setdefault("single4", []).append(
                        singles(base / "single4", url(), args.singles, CLIENTS))
                    print(name, {k: round(v[-1], 3) for k, v in r.items()}, flush=True)
    finally:
        cluster.stop()
    _report(results, args)


def _report(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    best = {name: {k: (min(v) if k.startswith("proof") else max(v)) for k, v in r.items()}
            for name, r in results.items()}
    s, p = best["sqlite"], best["postgresql"]
    rows = [
        (f"batched appends, {BATCH} per block ({args.entries:,} entries)", "entries/s",
         s["batched"], p["batched"]),
        (f"single appends, 1 client ({args.singles:,})", "entries/s", s["single"],
         p["single"]),
        (f"single appends, {CLIENTS} client processes ({CLIENTS} x {args.singles:,})",
         "entries/s", s["single4"], p["single4"]),
        (f"inclusion proof, median of {args.proofs:,}", "ms", s["proof_median"],
         p["proof_median"]),
        (f"inclusion proof, p99 of {args.proofs:,}", "ms", s["proof_p99"], p["proof_p99"]),
    ]
    lines = [f"# SQLite vs PostgreSQL ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "", *(f"- {k}: {v}" for k, v in machine_info()), "",
             f"best of {args.repeat} (max for rates, min for latencies), backends alternating",
             "", "| figure | unit | SQLite | PostgreSQL | PostgreSQL / SQLite |",
             "|---|---|---:|---:|---:|"]
    for label, unit, sq, pg in rows:
        fmt = ",.3f" if unit == "ms" else ",.0f"
        lines.append(f"| {label} | {unit} | {sq:{fmt}} | {pg:{fmt}} | {pg / sq:.2f}x |")
    lines += ["", "all runs:", ""]
    for name, r in results.items():
        lines.append(f"- {name}: " + "; ".join(
            f"{k} " + ", ".join(f"{v:,.1f}" for v in vs) for k, vs in r.items()))
    out = Path(__file__).parent / "out" / "backends.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
