"""Verify a reviewer bundle offline: ``python -m radledger.reviewer FILE [--data DIR]
[--trust-key VKEY] [--witness VKEY]... [--quorum K] [--json]`` (also ``radledger bundle
verify``).

Needs only the Python standard library and ``cryptography``: it imports nothing else of
radledger than its pure core, so a reviewer can run it without the ledger's dependencies,
without a ledger home, and without a network. Exit 0 when everything verifies, 1 when
something does not, 2 when the bundle or an argument is unusable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
from pathlib import Path

from radledger.core.bundle import MAX_BUNDLE_BYTES, HashFile, Report, load_bundle, verify_bundle
from radledger.core.cosignature import parse_witness_vkey
from radledger.core.note import parse_vkey
from radledger.errors import InputError, RadledgerError

_CHUNK = 1 << 20


def folder_hasher(folder: Path) -> HashFile:
    """Hash a member's file, its name resolved under ``folder`` without following links."""
    root = Path(os.path.abspath(folder))

    def hash_file(name: str) -> tuple[str | None, str | None]:
        path, mode = root, 0
        for part in Path(name).parts:
            path = path / part
            try:
                mode = path.lstat().st_mode
            except OSError:
                return None, "missing"
            if stat.S_ISLNK(mode):
                return None, "a symbolic link (not followed)"
        if not stat.S_ISREG(mode):
            return None, "not a regular file"
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest(), None

    return hash_file


def verify_file(bundle: Path, data: Path | None = None, trust_key: str | None = None,
                quorum: int = 0, witnesses: tuple[str, ...] = ()) -> Report:
    """Read and verify a bundle file. Raises RadledgerError for an unusable bundle or key."""
    try:
        size = bundle.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise InputError(f"{bundle}: {size} bytes is over the bundle limit")
        raw = bundle.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {bundle}: {exc.strerror}") from None
    doc = load_bundle(raw)
    trusted = parse_vkey(trust_key) if trust_key else None
    pinned = [parse_witness_vkey(w) for w in witnesses]
    return verify_bundle(doc, trusted, folder_hasher(data) if data else None, quorum, pinned)


def render(report: Report) -> str:
    """The plain-language report a reviewer can paste into a review."""
    lines = [("VERIFIED: " if report.ok else "") + report.summary, ""]
    lines += [f"  ok    {claim}" for claim in report.claims]
    lines += [f"  FAIL  {failure}" for failure in report.failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="radledger-reviewer", description=__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--data", type=Path, help="the released files, to rehash")
    parser.add_argument("--trust-key", help="the ledger's verifier key (C2SP vkey) to pin")
    parser.add_argument("--witness", action="append", default=[],
                        help="a witness's verifier key (C2SP vkey, type 0x04) to pin; "
                             "repeatable")
    parser.add_argument("--quorum", type=int, default=0, help="witness cosignatures required")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        report = verify_file(args.bundle, args.data, args.trust_key, args.quorum,
                             tuple(args.witness))
    except RadledgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"ok": report.ok, "summary": report.summary,
                          "claims": report.claims, "failures": report.failures},
                         sort_keys=True))
    else:
        print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
