"""Fixity of the data: rehash the registered files under a folder (``verify --data``).

Each file's bytes are hashed on every core and compared with the ``file_sha256`` its
signed ``instance.registered`` entry holds. Only a file whose bytes differ is parsed again,
to say what changed: ``pixels`` (the decoded image), ``header`` (the dataset without pixel
data), or only ``encoding`` (same pixels and header, other bytes: a lossless re-encoding).

Statuses: ``ok``; ``modified``; ``missing`` (registered at a path under the folder, not there
now); ``unregistered`` (a file under the folder whose content the ledger does not know).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from radledger.core.jcs import JSONValue
from radledger.ledger import lookup
from radledger.ledger.files import Hashed, describe, hash_task, in_order, walk
from radledger.ledger.service import Ledger
from radledger.ledger.setup import Workspace
from radledger.storage.base import SideStorage

FAILING = ("modified", "missing")


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one file."""

    path: str
    status: str  # ok | modified | missing | unregistered
    index: int | None = None  # the entry the file was checked against
    changed: tuple[str, ...] = ()  # for modified: pixels, header, encoding or unreadable
    error: str | None = None

    def as_json(self) -> dict[str, JSONValue]:
        """The stable machine form (``radledger verify --data --json``)."""
        out: dict[str, JSONValue] = {"path": self.path, "status": self.status}
        if self.index is not None:
            out["index"] = self.index
        if self.changed:
            out["changed"] = list(self.changed)
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class DataReport:
    """Counts by status; ``ok`` is False if anything is modified or missing."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("ok", "modified", "missing", "unregistered"), 0))

    @property
    def ok(self) -> bool:
        """Nothing modified or missing."""
        return not any(self.counts[status] for status in FAILING)


def check_data(space: Workspace, folder: Path, workers: int,
               on_check: Callable[[FileCheck, int], None]) -> DataReport:
    """Rehash every file under ``folder`` and account for every file registered there.

    ``on_check(check, size)`` is called for each file as it is decided.
    """
    ledger, side, project_key = space.ledger, space.side, space.project_key
    with side.write():
        lookup.catch_up(ledger.store, side)
    root = os.path.abspath(folder)
    expected = side.files_under(root)
    report = DataReport()

    def decide(check: FileCheck, size: int) -> None:
        report.counts[check.status] += 1
        on_check(check, size)

    for hashed in in_order(hash_task, walk([Path(root)]), project_key, workers):
        path = hashed[0]
        check = _check(ledger, side, project_key, hashed, expected.pop(path, None))
        decide(check, _size(path))
    for path, index in sorted(expected.items()):
        decide(FileCheck(path, "missing", index), 0)
    return report


def _check(ledger: Ledger, side: SideStorage, project_key: bytes, hashed: Hashed,
           index: int | None) -> FileCheck:
    path, digest, error = hashed
    if index is None:  # not registered at this path: is its content known?
        if digest is not None:
            known = side.lookup([lookup.key(lookup.FILE, digest)]).get(
                lookup.key(lookup.FILE, digest))
            if known:
                return FileCheck(path, "ok", known[-1])
        return FileCheck(path, "unregistered", error=error)
    body = _registered_body(ledger, index)
    if digest == body.get("file_sha256"):
        return FileCheck(path, "ok", index)
    if digest is None:
        return FileCheck(path, "modified", index, ("unreadable",), error)
    _, instance, error, _ = describe(Path(path), project_key)
    if instance is None:
        return FileCheck(path, "modified", index, ("unreadable",), error)
    fp = instance.fingerprint
    changed = tuple(name for name, now, then in (
        ("pixels", fp.pixel_sha256, body.get("pixel_sha256")),
        ("header", fp.meta_sha256, body.get("meta_sha256"))) if now != then)
    return FileCheck(path, "modified", index, changed or ("encoding",))


def _registered_body(ledger: Ledger, index: int) -> dict[str, JSONValue]:
    row = ledger.store.entry(index)
    if row is None:
        return {}
    body = json.loads(row[1]).get("body", {})
    return body if isinstance(body, dict) else {}


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0
