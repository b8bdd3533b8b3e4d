"""The machine facts every benchmark report starts with."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import cryptography


def machine_info() -> list[tuple[str, str]]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], check=False, capture_output=True, text=True).stdout.strip()
    return [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("nproc", nproc or str(os.cpu_count() or 1)),
        ("CPU", model),
        ("Python", platform.python_version()),
        ("OS", platform.platform()),
        ("cryptography / SQLite", f"{cryptography.__version__} / {sqlite3.sqlite_version}"),
    ]
