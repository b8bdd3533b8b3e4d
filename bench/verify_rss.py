"""Peak memory of `radledger verify` on a ledger home: is it flat as the ledger grows?

Usage: .venv/bin/python bench/verify_rss.py HOME [HOME ...]
Prints, per home, the exit code, wall time and the largest resident set of the verify process
(RUSAGE_CHILDREN's ru_maxrss: the biggest single child, i.e. the verify process itself; its
worker processes are smaller).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

CLI = Path(sys.executable).parent / "radledger"


def main(homes: list[str]) -> None:
    for home in homes:
        start = time.perf_counter()
        done = subprocess.run([str(CLI), "verify", "--home", home], capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - start
        # ru_maxrss of children is a running maximum: run one home per process to compare
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"{home}: exit {done.returncode}, {wall:.1f} s, max RSS {rss:.0f} MiB, "
              f"{done.stdout.strip() or done.stderr.strip()}")


if __name__ == "__main__":
    main(sys.argv[1:])
