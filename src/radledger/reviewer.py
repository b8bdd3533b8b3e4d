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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from radledger.core.bundle import (
    MAX_BUNDLE_BYTES,
    Bundle,
    CheckFile,
    Report,
    load_bundle,
    verify_bundle,
)
from radledger.core.cosignature import parse_witness_vkey
from radledger.core.note import parse_vkey
from radledger.errors import InputError, RadledgerError

_CHUNK = 1 << 20


def folder_hasher(folder: Path) -> CheckFile:
    """Check a member's file, its name resolved under ``folder`` without following links:
    its SHA-256, and when it differs and pydicom is installed, which fingerprint changed."""
    root = Path(os.path.abspath(folder))

    def check_file(name: str, member: Mapping[str, object]) -> str | None:
        path, mode = root, 0
        for part in Path(name).parts:
            path = path / part
            try:
                mode = path.lstat().st_mode
            except OSError:
                return "missing"
            if stat.S_ISLNK(mode):
                return "a symbolic link (not followed)"
        if not stat.S_ISREG(mode):
            return "not a regular file"
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() == member.get("file_sha256"):
            return None
        return "file_sha256 differs (modified)" + _which(path, member)

    return check_file


def _which(path: Path, member: Mapping[str, object]) -> str:
    """Which fingerprint changed, if pydicom is at hand (the reviewer may not have it)."""
    try:
        from radledger.dicom.fingerprint import fingerprint_file  # noqa: PLC0415
    except ImportError:
        return "; install pydicom to see whether pixels or the header changed"
    try:
        now = fingerprint_file(path)
    except RadledgerError as exc:
        return f"; no longer readable DICOM: {exc}"
    changed = [name for name, value in (("pixels", now.pixel_sha256),
                                        ("header", now.meta_sha256))
               if value != member.get(f"{'pixel' if name == 'pixels' else 'meta'}_sha256")]
    return f"; {' and '.join(changed)} changed" if changed else "; only the encoding changed"


@dataclass(frozen=True)
class Checks:
    """What the reviewer asks for besides the bundle itself."""

    data: Path | None = None  # the released files, to rehash
    trust_key: str | None = None  # the ledger's vkey, pinned
    quorum: int = 0  # witness cosignatures required
    witnesses: tuple[str, ...] = ()  # witness vkeys, pinned
    rpc: str | None = None  # re-check anchors online


def verify_file(bundle: Path, checks: Checks | None = None) -> Report:
    """Read and verify a bundle file. Raises RadledgerError for an unusable bundle or key."""
    checks = checks or Checks()
    data, trust_key, quorum = checks.data, checks.trust_key, checks.quorum
    witnesses, rpc = checks.witnesses, checks.rpc
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
    report = verify_bundle(doc, trusted, folder_hasher(data) if data else None, quorum, pinned)
    if rpc is not None and doc.anchors:
        _check_anchors(doc, rpc, report)
    return report


def _check_anchors(doc: Bundle, rpc: str, report: Report) -> None:
    """Online, only when asked: each anchor receipt against the chain at ``rpc``. Loads
    web3, which the offline reviewer never needs."""
    from radledger.core.checkpoint import parse_checkpoint  # noqa: PLC0415
    from radledger.core.note import parse_note  # noqa: PLC0415
    from radledger.errors import AnchorError  # noqa: PLC0415
    from radledger.ledger.anchor import verify_anchor  # noqa: PLC0415

    checkpoint = parse_checkpoint(parse_note(doc.checkpoint).text)
    for receipt in doc.anchors:
        try:
            check = verify_anchor(receipt, rpc, checkpoint)
        except AnchorError as exc:
            report.claims.append(f"anchor not checked: {exc}")
            continue
        if check.failures:
            report.failures += [f"anchors: {f}" for f in check.failures]
        else:
            report.claims.append(f"anchors: {check.claim}")


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
    parser.add_argument("--rpc", help="re-check anchor receipts against this chain (online; "
                                      "needs web3)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        report = verify_file(args.bundle, Checks(args.data, args.trust_key, args.quorum,
                                                 tuple(args.witness), args.rpc))
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
