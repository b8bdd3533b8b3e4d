"""A record of full verification runs, kept in the ledger home (``verify-runs.jsonl``).

``radledger verify``, the API's verification runs and the web UI's dashboard share it: each
finished run is one JSON line (appended and fsynced), so "when was the ledger last fully
verified, and what did it find" survives restarts. The record is local bookkeeping, not
evidence: the evidence is the ledger itself, which any later run re-checks.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from radledger.ledger.verify import VerifyReport

RUNS_FILE = "verify-runs.jsonl"
_lock = threading.Lock()


@dataclass(frozen=True)
class VerifyRun:
    """One finished full verification: when, by whom, over what size, and what it found."""

    started: str  # RFC 3339 UTC
    finished: str
    by: str  # "cli" or the API token's name
    ok: bool
    tree_size: int
    entries_checked: int
    blocks_checked: int
    problem_count: int
    problems: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def from_report(cls, report: VerifyReport, started: str, finished: str, by: str
                    ) -> VerifyRun:
        """The run a VerifyReport describes (its first 20 problems kept)."""
        return cls(started, finished, by, report.ok, report.tree_size,
                   report.entries_checked, report.blocks_checked, report.problem_count,
                   [p.as_json() for p in report.problems[:20]])


def record_run(home: Path, run: VerifyRun) -> None:
    """Append ``run`` to the home's record (one line, fsynced)."""
    line = json.dumps(asdict(run), sort_keys=True, separators=(",", ":")) + "\n"
    with _lock:
        fd = os.open(home / RUNS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


def runs(home: Path, limit: int = 20) -> list[VerifyRun]:
    """The last ``limit`` recorded runs, newest first (unreadable lines are skipped)."""
    try:
        lines = (home / RUNS_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out: list[VerifyRun] = []
    for line in reversed(lines):
        try:
            out.append(VerifyRun(**json.loads(line)))
        except (ValueError, TypeError):
            continue  # a line cut by a crash mid-write
        if len(out) >= limit:
            break
    return out


def latest_run(home: Path) -> VerifyRun | None:
    """The most recent recorded run, or None if the ledger was never fully verified."""
    found = runs(home, limit=1)
    return found[0] if found else None
