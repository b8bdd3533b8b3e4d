"""DICOM ingestion and fixity benchmark: `radledger ingest` and `radledger verify --data`
against hashing floors, BagIt and git-annex on the same files, in one run.

    .venv/bin/python bench/ingest.py [--quick | --full] [--big] [--repeat K] [--workers N]
    .venv/bin/python bench/ingest.py --profile [--profile-files 200]

Sizes: 1 GiB (20 studies x 100 slices of 512x512, 2,000 files); --big (on with --full) adds
4 GiB (8,000 files); --quick is 4 x 10 slices. Corpora come from bench/make_corpus.py and are
reused. Every file is read once before timing (warm page cache), every tool gets the same
relative file list or the corpus directory, and its output is checked (file counts, exit
codes), so a tool that did nothing fails the run. Peak memory of each tool's process tree:
/proc polled every 0.1 s (RSS and PSS summed over the tree, the tool's own RSS) and the
largest single process (GNU time's %M: ru_maxrss over the tool and its reaped children).
Writes bench/out/ingest-results*.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from machine import machine_info
from make_corpus import make_corpus
from proctree import PeakMemory
from run import CLI, load_now, log

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
BAGIT = str(Path(CLI).with_name("bagit.py"))
ANNEX = shutil.which("git-annex")
TIMEOUT_S = 3 * 3600
Pages = tuple[Path, list[str]]  # a directory and the files under it that a tool reads
SIZES = {"quick": (4, 10), "1g": (20, 100), "4g": (80, 100)}  # studies, slices


@dataclass
class Run:
    """One timed command: wall and CPU seconds, peak memory in MiB, exit code."""

    name: str
    kind: str  # "create" (hash and record) or "check" (rehash and compare)
    wall: float
    cpu: float
    load: str
    rss_tree: float = 0.0  # peak of the RSS summed over the process tree (counts shared pages)
    pss_tree: float = 0.0  # peak of the PSS summed over the tree (shared pages split)
    rss_parent: float = 0.0
    rss_largest: float = 0.0  # /usr/bin/time %M: the largest single process of the tree
    processes: int = 1  # most processes seen at once
    extra: dict[str, object] = field(default_factory=dict)


def measure(name: str, kind: str, argv: list[str], *, cwd: Path, pages: Pages,
            stdin: Path | None = None, stdout: Path | None = None) -> Run:
    """Run ``argv`` in its own session, timed, after re-reading the files it will read
    (``pages``); exit with its stderr unless it exits 0."""
    warm(*pages)
    load = load_now()
    with (open(stdin or os.devnull, "rb") as fin, open(stdout or os.devnull, "wb") as fout,
          open(OUT / "ingest-stderr.txt", "wb") as ferr):
        t0 = time.perf_counter()
        # GNU time, a small process, forks the tool: its ru_maxrss then starts near zero, not
        # at the size of this interpreter (which exec keeps as the high-water mark)
        timed = ["/usr/bin/time", "-f", "%M", "-o", str(OUT / "ingest-maxrss.txt"), *argv]
        proc = subprocess.Popen(timed, cwd=cwd, stdin=fin, stdout=fout, stderr=ferr,
                                start_new_session=True)
        peak = PeakMemory(proc.pid, skip=1)
        timer = threading.Timer(TIMEOUT_S, os.killpg, (proc.pid, 9))
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)  # CPU of every reaped descendant
        wall = time.perf_counter() - t0
        timer.cancel()
        peak.stop()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        errors = (OUT / "ingest-stderr.txt").read_text(errors="replace")[-3000:]
        sys.exit(f"{name} failed (exit {code}): {' '.join(argv)}\n{errors}")
    largest = int(lines(OUT / "ingest-maxrss.txt")[-1])
    return Run(name, kind, wall, usage.ru_utime + usage.ru_stime, load, peak.rss / 1024,
               peak.pss / 1024, peak.top / 1024, largest / 1024, max(1, peak.processes))


def lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines()


def expect(name: str, what: str, got: object, want: object) -> None:
    if got != want:
        sys.exit(f"{name}: {what} is {got!r}, expected {want!r}")


def warm(corpus: Path, files: list[str]) -> float:
    """Read every file once, so every tool starts with the same warm page cache. Done before
    each command: this machine pages out file pages idle for about a minute (DAMON)."""
    t0 = time.perf_counter()
    for rel in files:
        with open(corpus / rel, "rb") as f:
            while f.read(1 << 20):
                pass
    return time.perf_counter() - t0


def floors(pages: Pages, work: Path, listing: Path, full: bool) -> list[Run]:
    """Hash the listed files: openssl on 2 processes (the floor), sha256sum on 1 and 2."""
    tools = {"openssl dgst -sha256, 2 processes (floor)":
             ["xargs", "-0", "-P2", "-n", "500", "openssl", "dgst", "-sha256"]}
    if full:
        tools["sha256sum, 1 process"] = ["xargs", "-0", "sha256sum"]
        tools["sha256sum, 2 processes"] = ["xargs", "-0", "-P2", "-n", "500", "sha256sum"]
    runs, out = [], work / "hashes.txt"
    for name, argv in tools.items():
        runs.append(measure(name, "floor", argv, cwd=pages[0], pages=pages, stdin=listing,
                            stdout=out))
        expect(name, "lines of output", len(lines(out)), len(pages[1]))
    return runs


def annex_setup(corpus: Path, annex: Path, files: list[str]) -> Run:
    """A git-annex repository of a copy of the corpus; `git annex add` timed."""
    log("   git-annex: copy the corpus, git annex init (untimed), git annex add -J2 (timed)")
    shutil.copytree(corpus, annex)
    warm(annex, files)
    subprocess.run(["git", "init", "-q"], cwd=annex, check=True)
    subprocess.run(["git", "annex", "init", "-q", "bench"], cwd=annex, check=True)
    run = measure("git annex add -J2", "create", ["git", "annex", "add", "-J2", "--quiet", "."],
                  cwd=annex, pages=(annex, files))
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost",
                    "commit", "-qm", "corpus"], cwd=annex, check=True)
    return run


def radledger_runs(pages: Pages, work: Path, workers: int | None) -> list[Run]:
    """Ingest into a fresh home, ingest again (all known), verify --data; counts checked."""
    corpus, n = pages[0], len(pages[1])
    home, report = work / "home", work / "radledger.json"
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([CLI, "init", str(home)], check=True, capture_output=True)
    option = ["--workers", str(workers)] if workers else []
    runs = []
    for name, want in (("radledger ingest", {"registered": n, "already_registered": 0}),
                       ("radledger ingest again (nothing new)",
                        {"registered": 0, "already_registered": n})):
        argv = [CLI, "ingest", "--home", str(home), *option, "--json", str(corpus)]
        run = measure(name, "create", argv, cwd=work, pages=pages, stdout=report)
        result = json.loads(report.read_text())
        if "new_versions" not in result:  # the contract's name; the CLI says new_version
            result["new_versions"] = result.get("new_version")
        for key, value in {**want, "new_versions": 0, "rejected": 0}.items():
            expect(name, key, result.get(key), value)
        expect(name, "len(files)", len(result.get("files", [])), n)
        run.extra = {k: v for k, v in result.items() if k != "files"}
        runs.append(run)
    argv = [CLI, "verify", "--home", str(home), "--data", str(corpus), "--json"]
    run = measure("radledger verify --data", "check", argv, cwd=work, pages=pages,
                  stdout=report)
    run.extra = json.loads(report.read_text())
    counts = run.extra.get("data", {}).get("counts", {})  # type: ignore[union-attr]
    expect("radledger verify", "data counts", counts,
           {"ok": n, "missing": 0, "modified": 0, "unregistered": 0})
    return [*runs, run]


def bench_size(tag: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    studies, slices = SIZES[tag]
    corpus = OUT / f"corpus-{studies}x{slices}"
    manifest = make_corpus(corpus, studies=studies, slices=slices)
    files = sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*.dcm"))
    n, size = len(files), int(manifest["bytes"])
    expect("corpus", "file count", n, manifest["files"])
    log(f"{tag}: {n:,} files, {size / 2**30:.2f} GiB; reading them once (page cache) ...")
    warm_s = warm(corpus, files)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    listing = work / "files.nul"
    listing.write_bytes(b"".join(f.encode() + b"\0" for f in files))
    full = tag != "4g"  # at 4 GiB: the floor, bagit and radledger only
    annex, bag = work / "annex", work / "bag"
    runs = [annex_setup(corpus, annex, files)] if full and ANNEX else []
    for r in range(args.repeat):
        log(f"   round {r + 1}/{args.repeat}")
        runs += floors((corpus, files), work, listing, full)
        shutil.rmtree(bag, ignore_errors=True)
        subprocess.run(["cp", "-al", str(corpus), str(bag)], check=True)  # bagit moves files
        runs.append(measure("bagit.py --sha256 --processes 2 (create bag)", "create",
                            [BAGIT, "--sha256", "--processes", "2", "--quiet", str(bag)],
                            cwd=work, pages=(corpus, files)))
        expect("bagit", "manifest lines", len(lines(bag / "manifest-sha256.txt")), n)
        runs += radledger_runs((corpus, files), work, args.workers)
        runs.append(measure("bagit.py --validate --processes 2", "check",
                            [BAGIT, "--validate", "--processes", "2", "--quiet", str(bag)],
                            cwd=work, pages=(corpus, files)))  # the bag's files: hard links
        if full and ANNEX:
            out = work / "fsck.txt"
            runs.append(measure("git annex fsck -J2", "check", ["git", "annex", "fsck", "-J2"],
                                cwd=annex, pages=(annex, files), stdout=out))
            expect("git annex fsck", "files ok", sum(x.endswith(" ok") for x in lines(out)), n)
    best: dict[str, Run] = {}
    for run in runs:
        if run.name not in best or run.wall < best[run.name].wall:
            best[run.name] = run
    if annex.exists():  # git-annex leaves its objects read-only
        subprocess.run(["chmod", "-R", "u+w", str(annex)], check=True)
    if not args.keep:
        shutil.rmtree(work)
    return {"size": tag, "files": n, "bytes": size, "warm_read_s": warm_s, "corpus": str(corpus),
            "best": [asdict(r) for r in best.values()], "runs": [asdict(r) for r in runs]}


def table(result: dict[str, object]) -> str:
    best = [Run(**r) for r in result["best"]]  # type: ignore[attr-defined]
    size = int(str(result["bytes"]))
    floor = next(r for r in best if r.kind == "floor")
    bagit = {r.kind: r.wall for r in best if r.name.startswith("bagit")}
    out = [f"### {result['size']}: {result['files']:,} files, {size / 2**30:.2f} GiB "
           f"(warm read first: {result['warm_read_s']:.1f} s)", "",
           "| tool | wall s | MB/s | CPU s | x floor | CPU x floor | x bagit | peak MiB: tree RSS "
           "/ tree PSS / top / largest | procs | load at start |",
           "|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in best:
        vs_bagit = f"{r.wall / bagit[r.kind]:.2f}" if r.kind in bagit else ""
        out.append(f"| {r.name} | {r.wall:.2f} | {size / r.wall / 1e6:,.0f} | {r.cpu:.1f} | "
                   f"{r.wall / floor.wall:.2f} | {r.cpu / floor.cpu:.2f} | {vs_bagit} | "
                   f"{r.rss_tree:.0f} / {r.pss_tree:.0f} / {r.rss_parent:.0f} / "
                   f"{r.rss_largest:.0f} | {r.processes} | {r.load} |")
    return "\n".join(out)


def profile(count: int) -> None:
    """cProfile `radledger ingest --workers 1` (all in one process) on ``count`` files."""
    corpus = OUT / "corpus-20x100"
    make_corpus(corpus, studies=20, slices=100)
    subset = OUT / "profile-ingest-files"
    shutil.rmtree(subset, ignore_errors=True)
    for path in sorted(corpus.rglob("*.dcm"))[:count]:
        target = subset / path.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    home = OUT / "profile-ingest-home"
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([CLI, "init", str(home)], check=True, capture_output=True)
    warm(subset, [str(p.relative_to(subset)) for p in subset.rglob("*.dcm")])
    stats = OUT / "profile-ingest.prof"
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), CLI, "ingest", "--home",
                    str(home), "--workers", "1", "--json", str(subset)],
                   stdout=subprocess.DEVNULL, check=True)
    with (OUT / "profile-ingest.txt").open("w") as text:
        print(f"radledger ingest --workers 1 of {count} files", file=text)
        for key in ("tottime", "cumulative"):
            pstats.Stats(str(stats), stream=text).sort_stats(key).print_stats(40)
    log(f"wrote {OUT / 'profile-ingest.txt'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 small-corpus files, smoke test")
    parser.add_argument("--big", action="store_true", help="also the 4 GiB corpus")
    parser.add_argument("--full", action="store_true", help="1 GiB and 4 GiB (implies --big)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds at each size; the fastest run of each tool is kept")
    parser.add_argument("--workers", type=int, help="radledger ingest --workers (CLI default)")
    parser.add_argument("--keep", action="store_true", help="keep bench/out/ingest-work-*")
    parser.add_argument("--profile", action="store_true", help="only cProfile one-process ingest")
    parser.add_argument("--profile-files", type=int, default=200)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.profile:
        profile(args.profile_files)
        return
    if not ANNEX:
        log("git-annex is not installed (apt-get install -y git-annex): its rows are skipped")
    sizes = ["quick"] if args.quick else ["1g"] + (["4g"] if args.big or args.full else [])
    started = time.perf_counter()
    report = {"command": " ".join(["python bench/ingest.py", *sys.argv[1:]]),
              "machine": dict(machine_info()), "git_annex": ANNEX is not None,
              "results": [bench_size(tag, args, OUT / f"ingest-work-{tag}") for tag in sizes]}
    report["minutes"] = round((time.perf_counter() - started) / 60, 1)
    if not ANNEX:
        report["notes"] = "git-annex is not installed (apt-get install -y git-annex): no rows"
    stem = "ingest-results-quick" if args.quick else "ingest-results"
    (OUT / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = "\n\n".join(table(r) for r in report["results"])  # type: ignore[union-attr]
    text = f"Command: `{report['command']}`, {report['minutes']} min\n\n{text}\n"
    text += f"\n{report['notes']}\n" if "notes" in report else ""
    (OUT / f"{stem}.md").write_text(text)
    print(text)
    log(f"wrote {OUT / stem}.json and .md")


if __name__ == "__main__":
    main()
