"""The benchmark workload: one realistic lab entry per index, deterministic.

Each entry is an ``x-lab.qc-check`` with a six-field body (one of them a float, as a QC metric
usually is) and a pseudonymous subject of two 64-hex keys (study, series; 40 series per study).
Every index gives a different series key, so no two entries share a leaf hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

KIND = "x-lab.qc-check"
SERIES_PER_STUDY = 40
_CHECKS = ("snr", "uniformity", "ghosting", "geometric-distortion")


def _hex(label: str, number: int) -> str:
    return hashlib.sha256(f"bench/{label}/{number}".encode()).hexdigest()


def line_value(i: int) -> dict[str, object]:
    """The JSON object of input line ``i`` (what `radledger append -` reads)."""
    value = 20.0 + (i * 7919 % 40000) / 1000  # a float in [20, 60), three decimals
    threshold = 25
    return {
        "kind": KIND,
        "body": {
            "check": _CHECKS[i % len(_CHECKS)],
            "value": value,
            "threshold": threshold,
            "passed": value >= threshold,
            "tool": "radqc",
            "tool_version": "2.3.1",
        },
        "subject": {"study": _hex("study", i // SERIES_PER_STUDY), "series": _hex("series", i)},
    }


def line_bytes(i: int) -> bytes:
    """Input line ``i`` as compact JSON with a newline."""
    return json.dumps(line_value(i), separators=(",", ":")).encode() + b"\n"


def write_lines(path: Path, count: int) -> int:
    """Write ``count`` input lines to ``path``; returns the file size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for start in range(0, count, 10_000):
            out.write(b"".join(line_bytes(i) for i in range(start, min(start + 10_000, count))))
    return path.stat().st_size
