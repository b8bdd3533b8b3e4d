"""Load benchmark of the HTTP API: `radledger serve` (uvicorn, a real process) on loopback over
a fresh ledger, driven by wrk (C, event loop, little CPU of its own) with many connections.

Phases, each `--duration` seconds after a short warm-up, once per `--connections` value:
  1. appends: POST /entries (writer token), every body different;
  2. reads:   GET /entries/{i} (reader token), i uniformly random over the ledger;
  3. tiles:   GET /tile/0/{n}, n a random full level-0 tile (public read path).
Reported per phase: requests/s, p50/p90/p99/max latency (wrk --latency), non-2xx answers,
the server's CPU seconds per 1,000 requests. After the appends the ledger size is checked
against the acknowledgements (every acknowledged append is two durable entries: the entry and
its access.recorded) and `radledger verify` runs over the whole ledger.

    .venv/bin/python bench/api_load.py                # 20 s phases, 16 then 64 connections
    .venv/bin/python bench/api_load.py --quick        # 4 s phases
    .venv/bin/python bench/api_load.py --connections 8,32,128 --duration 30

Writes bench/out/api-load.md and .json (api-load-ungrouped.* with --no-group-commit).
Needs wrk (`apt-get install wrk`; `make bench-api` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from machine import machine_info
from proctree import descendants

from radledger.ledger.setup import init_ledger
from radledger.ledger.tokens import create_token, open_tokens

OUT = Path(__file__).resolve().parent / "out"
BIN = Path(sys.executable).parent
GOALS = {"appends": 1000.0, "reads": 3000.0, "tiles": 3000.0}
P99_GOAL_MS = 50.0

APPEND_LUA = """
local counter = 0
local thread_id = 0
local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"kind":"x-lab.qc-check","body":{"check":"snr","value":%d,"thread":%d,"passed":true},'
    .. '"subject":{"study":"%064x"}}', counter, thread_id, counter)
  return wrk.format("POST", "/entries", {["Authorization"] = "Bearer TOKEN",
    ["Content-Type"] = "application/json"}, body)
end
"""

READ_LUA = """
math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
request = function()
  local path = string.format(PATTERN, math.random(0, LIMIT - 1))
  return wrk.format("GET", path, {["Authorization"] = "Bearer TOKEN"})
end
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, its live descendants (``serve --workers N``) and its
    reaped children, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for one in descendants(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / ticks


def get(url: str, token: str | None = None) -> bytes:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return bytes(response.read())


def tree_size(url: str) -> int:
    return int(get(f"{url}/checkpoint").decode().split("\n")[1])


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, latency percentiles (ms), max, request count and non-2xx from wrk
    --latency output."""
    out: dict[str, float] = {"non2xx": 0.0, "socket_errors": 0.0}
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.MULTILINE)
        out[f"p{pct}"] = _ms(match.group(1)) if match else float("nan")
    match = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output, re.MULTILINE)
    out["max"] = _ms(match.group(1)) if match else float("nan")
    match = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    if match:
        out["requests"] = float(match.group(1))
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    out["rps"] = float(match.group(1)) if match else 0.0
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match:
        out["non2xx"] = float(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      output)
    if match:
        out["socket_errors"] = float(sum(int(g) for g in match.groups()))
    return out


@dataclass
class Bench:
    """One benchmark run: the server under test, where files go, the options."""

    url: str
    work: Path
    server: subprocess.Popen[bytes]
    args: argparse.Namespace

    def wrk(self, script: str, connections: int, seconds: float, name: str
            ) -> tuple[dict[str, float], str]:
        path = self.work / f"{name}.lua"
        path.write_text(script)
        argv = ["wrk", f"-t{self.args.threads}", f"-c{connections}", f"-d{seconds:g}s",
                "--latency", "--timeout", "10s", "-s", str(path), self.url]
        done = subprocess.run(argv, check=True, capture_output=True, text=True)
        return parse_wrk(done.stdout), done.stdout

    def phase(self, name: str, script: str, connections: int) -> dict[str, float]:
        tag = f"{name}-c{connections}"
        if self.args.warmup:
            self.wrk(script, connections, self.args.warmup, tag)
        cpu0, t0 = cpu_seconds(self.server.pid), time.monotonic()
        result, text = self.wrk(script, connections, self.args.duration, tag)
        wall, cpu = time.monotonic() - t0, cpu_seconds(self.server.pid) - cpu0
        result["connections"] = float(connections)
        result["server_cpu_per_1k"] = cpu / max(1.0, result.get("requests", 0.0)) * 1000
        result["server_cpu_share"] = cpu / wall
        result["load"] = os.getloadavg()[0]
        (self.work / f"{tag}.wrk.txt").write_text(text)
        log(f"{tag}: {result['rps']:,.0f}/s p50 {result['p50']:.2f} ms p99 "
            f"{result['p99']:.2f} ms non-2xx {result['non2xx']:.0f}")
        return result


# `radledger serve` with group commit switched off, to measure what it brings
_UNGROUPED = ("import sys; import radledger.api.context as c; c.GroupCommit = lambda *a: None; "
              "from radledger.cli.main import run; sys.argv[0] = 'radledger'; run()")


def start_server(home: Path, port: int, work: Path, grouped: bool = True, workers: int = 1
                 ) -> subprocess.Popen[bytes]:
    command = [str(BIN / "radledger")] if grouped else [sys.executable, "-c", _UNGROUPED]
    argv = [*command, "serve", "--home", str(home), "--port", str(port),
            "--rate-limit", "0", "--no-access-log", "--workers", str(workers)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                              stderr=(work / "server.log").open("wb"), start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            get(f"http://127.0.0.1:{port}/checkpoint")
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start; see {work / 'server.log'}") from None
            time.sleep(0.1)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def met(name: str, r: dict[str, float]) -> bool:
    return r["rps"] >= GOALS[name] and r["p99"] < P99_GOAL_MS and r["non2xx"] == 0


def table(results: list[tuple[str, dict[str, float]]]) -> str:
    rows = ["| phase | connections | requests/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx "
            "| server CPU s per 1k requests | server CPU (cores) | load | goal met |",
            "|" + "---|" * 12]
    for name, r in results:
        rows.append(f"| {name} | {r['connections']:.0f} | {r['rps']:,.0f} | {r['p50']:.2f} | "
                    f"{r['p90']:.2f} | {r['p99']:.2f} | {r['max']:.1f} | {r['non2xx']:.0f} | "
                    f"{r['server_cpu_per_1k']:.2f} | {r['server_cpu_share']:.2f} | "
                    f"{r['load']:.1f} | {'yes' if met(name, r) else 'no'} |")
    return "\n".join(rows)


def run_phases(bench: Bench, writer: str, reader: str) -> tuple[
        list[tuple[str, dict[str, float]]], dict[str, float]]:
    results: list[tuple[str, dict[str, float]]] = []
    before = tree_size(bench.url)
    appends = {"requests": 0.0, "non2xx": 0.0}
    for connections in bench.args.connections:
        result = bench.phase("appends", APPEND_LUA.replace("TOKEN", writer), connections)
        appends["requests"] += result.get("requests", 0.0)
        appends["non2xx"] += result["non2xx"]
        results.append(("appends", result))
    time.sleep(1.0)  # requests wrk abandoned at its deadline are still answered
    size = tree_size(bench.url)
    appends["entries_added"] = float(size - before)
    log(f"ledger size {before} -> {size}")
    if size // 256 > 999:  # tlog-tiles paths: x001/234 beyond 999
        raise SystemExit("more than 999 full tiles: extend the tile path pattern")
    reads = READ_LUA.replace("TOKEN", reader).replace("LIMIT", str(size)) \
        .replace("PATTERN", '"/entries/%d"')
    tiles = READ_LUA.replace("TOKEN", reader).replace("LIMIT", str(size // 256)) \
        .replace("PATTERN", '"/tile/0/%03d"')
    for name, script in (("reads", reads), ("tiles", tiles)):
        for connections in bench.args.connections:
            results.append((name, bench.phase(name, script, connections)))
    return results, appends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each phase")
    parser.add_argument("--connections", type=lambda t: [int(c) for c in t.split(",")],
                        default=[16, 64], help="comma-separated: one run of each phase each")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--quick", action="store_true", help="4 s phases, 1 s warm-up")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (`radledger serve --workers N`)")
    parser.add_argument("--no-group-commit", action="store_true",
                        help="serve with group commit off (each POST /entries: 2 transactions)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 4.0, 1.0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (or make bench-api)")
    work = OUT / "api-load"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    home, ledger = init_ledger(work / "home", "bench.example.org/api-load", "service")
    ledger.store.close()
    store = open_tokens(home)
    writer = create_token(store, "bench-writer", "writer")
    reader = create_token(store, "bench-reader", "reader")
    store.close()
    port = free_port()
    bench = Bench(f"http://127.0.0.1:{port}", work,
                  start_server(home.path, port, work, not args.no_group_commit,
                               args.workers), args)
    log(f"server pid {bench.server.pid} on {bench.url}; connections {args.connections}, "
        f"{args.duration:g} s per phase")
    try:
        results, appends = run_phases(bench, writer, reader)
    finally:
        stop_server(bench.server)
    log("radledger verify over the whole ledger")
    t0 = time.monotonic()
    verify = subprocess.run([str(BIN / "radledger"), "verify", "--home", str(home.path),
                             "--json"], capture_output=True, text=True, check=False)
    verified = json.loads(verify.stdout) if verify.stdout else {"ok": False}
    verify_s = time.monotonic() - t0
    acknowledged = appends["requests"] - appends["non2xx"]
    whole = appends["entries_added"] >= 2 * acknowledged
    checks = [
        f"ledger grew by {appends['entries_added']:.0f} entries for {acknowledged:.0f} "
        f"acknowledged appends (2 entries each): {'ok' if whole else 'ENTRIES MISSING'}",
        f"`radledger verify` of the ledger afterwards: "
        f"{'ok' if verified.get('ok') else 'FAILED'}, tree size {verified.get('tree_size')}, "
        f"{verify_s:.1f} s",
    ]
    report = "\n".join([
        "# API load benchmark", "",
        "Command: `" + " ".join([".venv/bin/python bench/api_load.py", *sys.argv[1:]]) + "`",
        f"wrk -t{args.threads}, {args.duration:g} s per phase after {args.warmup:g} s "
        f"warm-up; server: `radledger serve --rate-limit 0 --no-access-log --workers "
        f"{args.workers}`"
        + (", group commit OFF" if args.no_group_commit else ""), "",
        *(f"- {k}: {v}" for k, v in machine_info()), "", table(results), "",
        *(f"- {c}" for c in checks), ""])
    stem = ("api-load-ungrouped" if args.no_group_commit else "api-load") + (
        f"-w{args.workers}" if args.workers > 1 else "")
    (OUT / f"{stem}.md").write_text(report)
    (OUT / f"{stem}.json").write_text(json.dumps(
        {"results": results, "appends": appends, "checks": checks,
         "args": {k: v for k, v in vars(args).items()}}, indent=2))
    print(report)


if __name__ == "__main__":
    main()
