"""Peak memory of a process tree, polled from /proc (Linux), for the benchmarks.

RSS summed over the tree counts pages that forked workers share with their parent once per
process; PSS (from smaps_rollup) splits each shared page between its sharers, so the PSS sum
is what the tree really holds. A process that lives less than the poll interval is missed:
take the largest single process from wait4/GNU time's ru_maxrss too.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, ``root`` first; empty list entries never."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name in () may hold spaces
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """RSS and PSS of one process in KiB; (0, 0) once it is gone."""
    try:
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return rss, int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0, 0


class PeakMemory:
    """Polls the tree below ``root`` (skipping ``skip`` levels of wrappers, e.g. GNU time)
    every ``interval`` seconds until ``stop``; peaks in KiB."""

    def __init__(self, root: int, skip: int = 0, interval: float = 0.1) -> None:
        self.root, self.skip, self.interval = root, skip, interval
        self.rss = self.pss = self.top = 0  # tree RSS, tree PSS, the top process's RSS
        self.processes = 0  # most processes alive at once
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(self.interval):
            mem = [m for m in map(memory_kib, descendants(self.root)[self.skip:]) if m[0]]
            if mem:
                self.rss = max(self.rss, sum(r for r, _ in mem))
                self.pss = max(self.pss, sum(p for _, p in mem))
                self.top = max(self.top, mem[0][0])
                self.processes = max(self.processes, len(mem))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
