"""Releases as the web pages need them: the list, the members a form names, a release's
reviewer bundle, and that bundle verified as a reviewer would (``radledger.reviewer``).

The members are chosen as ``radledger release create`` chooses them (entry indices or real
UIDs, identified instances replaced by their de-identified copies, or every de-identified
instance); what would happen is the API's dry run (``api.routes_releases.check_release``),
so the page and ``POST /releases/check`` can never disagree.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radledger.api.context import ApiContext
from radledger.api.writes import UID_PATTERN, targets
from radledger.core import jcs
from radledger.core.bundle import Report
from radledger.errors import InputError, NotFound
from radledger.ledger import release
from radledger.ledger.anchor import anchor_receipts
from radledger.ledger.bundle import BundleRequest, create_bundle, ledger_vkey
from radledger.ledger.derive import resolve_inputs
from radledger.ledger.setup import Workspace
from radledger.reviewer import Checks, verify_file
from radledger.storage.base import LedgerStore
from radledger.web.describe import obj, parse, seq

_UID = re.compile(UID_PATTERN)
_SCAN = 5000
MAX_MEMBER_LINES = 1000
MAX_LISTED = 200
MAX_UID = 64  # PS3.5 9.1


@dataclass(frozen=True)
class ReleaseRow:
    """A release entry as the lists show it."""

    index: int
    name: str
    version: str
    members: int
    description: str
    claimed_time: str


def releases(store: LedgerStore) -> list[ReleaseRow]:
    """Every ``dataset.released`` entry, newest first (at most MAX_LISTED). Reads the whole
    log: there is no index by kind."""
    found: list[ReleaseRow] = []
    size = store.entry_count()
    for start in range(0, size, _SCAN):
        for index, kind, _, data in store.entries(start, min(size, start + _SCAN)):
            if kind == "dataset.released":
                found.append(release_row(index, parse(data)))
    return found[::-1][:MAX_LISTED]


def release_row(index: int, entry: dict[str, Any]) -> ReleaseRow:
    """One release entry as a row."""
    body = obj(entry.get("body"))
    return ReleaseRow(index, str(body.get("name", "")), str(body.get("version", "")),
                      len(seq(body.get("members"))), str(body.get("description") or ""),
                      str(entry.get("claimed_time", "")))


def member_lines(text: str) -> list[str]:
    """The members a form lists, one a line: entry indices or Study/Series/SOP Instance UIDs.
    Raises InputError for anything else (a path would be read on the server)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_MEMBER_LINES:
        raise InputError(f"at most {MAX_MEMBER_LINES} members a release form")
    for number, line in enumerate(lines, 1):
        if not _UID.match(line) or len(line) > MAX_UID:  # not echoed: it may identify
            raise InputError(f"member line {number} is neither an entry index nor a UID")
    return lines


def chosen_members(space: Workspace, lines: list[str], every: bool) -> list[int]:
    """The instance registrations to release, as ``release create`` resolves them."""
    if every:
        return release.deidentified_instances(space)
    if not lines:
        raise InputError("name the members (entry indices or UIDs), or choose every "
                         "de-identified instance")
    given: list[int | str] = list(lines)
    found = resolve_inputs(space, targets(space, given), files=False)
    return release.prefer_deidentified(space, found)


def release_entry(store: LedgerStore, index: int) -> dict[str, Any]:
    """The release entry at ``index``. Raises NotFound if it is not one."""
    row = store.entry(index) if index >= 0 else None
    entry = parse(row[1]) if row else {}
    if entry.get("kind") != "dataset.released":
        raise NotFound(f"no release at entry {index}")
    return entry


def _files_root(space: Workspace, entry: dict[str, Any]) -> Path | None:
    """The folder this server holds the release's files in (their common folder), if any."""
    indices = [m["index"] for m in entry["body"].get("members", [])
               if isinstance(m, dict) and isinstance(m.get("index"), int)]
    paths = space.side.paths_of(indices)
    if not paths:
        return None
    return Path(os.path.commonpath([os.path.dirname(p) for p in paths.values()]))


@dataclass(frozen=True)
class BuiltBundle:
    """A release's bundle as bytes, with the folder its files are named relative to."""

    data: bytes
    files_root: Path | None
    filename: str


def home_vkey(ctx: ApiContext) -> str:
    """The ledger's verifier key, as ``radledger key show`` prints it."""
    return ledger_vkey(ctx.home.origin, ctx.home.ledger_signer.signing_key.public_key)


def build_bundle(ctx: ApiContext, space: Workspace, index: int) -> BuiltBundle:
    """The reviewer bundle of the release at ``index``, as ``radledger bundle create`` writes
    it. Requires the write lock (``ApiContext.writing``)."""
    entry = release_entry(space.ledger.store, index)
    body = entry["body"]
    root = _files_root(space, entry)
    made = create_bundle(space, home_vkey(ctx), BundleRequest(
        str(body["name"]), str(body["version"]), root, tuple(anchor_receipts(ctx.home))))
    if made.release != index:
        raise InputError(f"entry {index} is not the latest release of {body['name']!r:.80} "
                         f"version {body['version']!r:.40}")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{body['name']}-{body['version']}")[:100]
    return BuiltBundle(jcs.canonicalize(made.to_json()), root, f"{safe}.rlbundle")


def verify_bytes(data: bytes, trust_key: str | None, files_root: Path | None = None
                 ) -> Report:
    """Verify bundle bytes exactly as ``python -m radledger.reviewer`` verifies a file
    (pinned key if given; with ``files_root``, every member file rehashed). Raises
    RadledgerError for an unusable bundle or key."""
    with tempfile.TemporaryDirectory(prefix="radledger-review-") as folder:
        path = Path(folder) / "bundle.rlbundle"
        path.write_bytes(data)
        return verify_file(path, Checks(data=files_root, trust_key=trust_key or None))
