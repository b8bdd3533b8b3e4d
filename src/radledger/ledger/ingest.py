"""Ingesting DICOM files: fingerprint on every core, decide, append in batches.

A file is fingerprinted and its identifiers pseudonymised in a worker process
(``radledger.dicom.instance``); the main process then decides, per file:

- ``registered``: content never seen: a new ``instance.registered`` entry;
- ``new-version``: a known path with new content: a new entry whose ``refs`` name the
  path's previous entry (which stays);
- ``already-registered``: this exact file (same ``file_sha256``) is in the ledger: nothing
  is appended;
- ``rejected``: not DICOM or malformed: a typed error naming the reason; the run goes on.

Decisions and appends for a batch happen while holding the side store's writer, so two
ingests running at once cannot both register one file. Paths go to the side store only; the
ledger holds their keyed pseudonym (``source.path_key``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from radledger.core.jcs import JSONValue
from radledger.core.note import Signer
from radledger.core.pseudonym import pseudonym
from radledger.dicom.instance import Instance
from radledger.ledger import lookup
from radledger.ledger.drafts import Draft
from radledger.ledger.files import Known, Result, describe, describe_task, in_order, walk
from radledger.ledger.setup import Workspace

BATCH = 256  # files decided and appended per transaction


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file."""

    path: str
    status: str  # registered | new-version | already-registered | rejected
    index: int | None = None
    previous: int | None = None
    error: str | None = None
    flags: tuple[str, ...] = ()

    def as_json(self) -> dict[str, JSONValue]:
        """The stable machine form (``radledger ingest --json``)."""
        out: dict[str, JSONValue] = {"path": self.path, "status": self.status}
        if self.index is not None:
            out["index"] = self.index
        if self.previous is not None:
            out["previous"] = self.previous
        if self.error is not None:
            out["error"] = self.error
        if self.flags:
            out["flags"] = list(self.flags)
        return out


@dataclass
class IngestSummary:
    """Counts of a run, by outcome."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("registered", "new-version", "already-registered", "rejected"), 0))

    def add(self, outcome: FileOutcome) -> None:
        """Count one outcome."""
        self.counts[outcome.status] += 1


@dataclass(frozen=True)
class Source:
    """How files came to the ledger, as their registrations say: ``type`` (folder, scp,
    orthanc, derivation, deidentify), more ``fields`` about it, the protocol they were
    acquired under."""

    type: str = "folder"
    fields: dict[str, JSONValue] = field(default_factory=dict)
    protocol: int | None = None


def registration(instance: Instance, path_key: str, previous: int | None,
                 source: Source | None = None) -> Draft:
    """The ``instance.registered`` draft for one file; ``refs`` names the path's previous
    version and the protocol it was acquired under, if any."""
    source = source or Source()
    fp = instance.fingerprint
    body: dict[str, JSONValue] = {
        "file_sha256": fp.file_sha256, "pixel_sha256": fp.pixel_sha256,
        "pixel_hash_kind": fp.pixel_hash_kind, "meta_sha256": fp.meta_sha256,
        "transfer_syntax_uid": fp.transfer_syntax_uid, "size": instance.size,
        "source": {**source.fields, "type": source.type, "path_key": path_key},
    }
    if fp.sop_class_uid:
        body["sop_class_uid"] = fp.sop_class_uid
    if fp.modality:
        body["modality"] = fp.modality
    if instance.attributes:
        body["attributes"] = dict(instance.attributes)
    if instance.flags:
        body["flags"] = list(instance.flags)
    refs = tuple(r for r in (previous, source.protocol) if r is not None)
    return Draft("instance.registered", body, dict(instance.subject), refs)


class Ingester:
    """Decides and appends batches of fingerprinted files for one ledger."""

    def __init__(self, space: Workspace, signer: Signer, protocol: int | None = None,
                 source: str = "folder",
                 source_fields: dict[str, JSONValue] | None = None) -> None:
        self.ledger, self.side, self.signer = space.ledger, space.side, signer
        self.project_key = space.project_key
        self.source = Source(source, dict(source_fields or {}), protocol)

    def path_key(self, path: str) -> str:
        """The keyed pseudonym of a file's absolute path."""
        return pseudonym(self.project_key, "FilePath", path)

    def commit(self, results: list[Result]) -> list[FileOutcome]:
        """Decide and append one batch; returns an outcome per result, in order."""
        with self.side.write():
            lookup.catch_up(self.ledger.store, self.side)
            outcomes = self._decide_and_append(results)
            self.side.set_files((o.path, o.index) for o in outcomes if o.index is not None)
            lookup.catch_up(self.ledger.store, self.side)
        return outcomes

    def known_files(self) -> Callable[[], Known]:
        """A factory, run in each worker, of the check "is a file with this SHA-256
        registered?" against the side store (each worker opens its own connection)."""
        reopen = self.side.reopener(self.side.meta()["ledger_id"])

        def build() -> Known:
            side = reopen()

            def known(file_sha256: str) -> bool:
                wanted = lookup.key(lookup.FILE, file_sha256)
                return wanted in side.lookup([wanted])

            return known

        return build

    def _parsed(self, results: list[Result]) -> list[Result]:
        """Results a worker did not parse because their bytes were registered: kept if the
        lookup under the lock agrees, else parsed here."""
        skipped = [lookup.key(lookup.FILE, sha) for _, i, e, sha in results
                   if i is None and e is None and sha is not None]
        if not skipped:
            return results
        hits = self.side.lookup(skipped)
        return [describe(Path(path), self.project_key)
                if instance is None and error is None and sha is not None
                and lookup.key(lookup.FILE, sha) not in hits else (path, instance, error, sha)
                for path, instance, error, sha in results]

    def _decide_and_append(self, results: list[Result]) -> list[FileOutcome]:
        results = self._parsed(results)
        path_keys = {path: self.path_key(path) for path, instance, _, _ in results if instance}
        wanted = [lookup.key(lookup.FILE, i.fingerprint.file_sha256 if i else sha or "")
                  for _, i, _, sha in results if i is not None or sha is not None]
        wanted += [lookup.key(lookup.PATH, k) for k in path_keys.values()]
        known = self.side.lookup(wanted)
        outcomes: list[FileOutcome] = []
        drafts: list[tuple[int, Draft]] = []  # (position of its outcome, draft)
        first_with: dict[str, int] = {}  # file_sha256 -> position of the batch's first copy
        copies: list[tuple[int, int]] = []  # (position, position of the first copy)
        for path, instance, error, sha in results:
            if instance is None and sha is not None:  # registered: a worker checked the bytes
                outcomes.append(FileOutcome(path, "already-registered",
                                            known[lookup.key(lookup.FILE, sha)][-1]))
                continue
            if instance is None:
                outcomes.append(FileOutcome(path, "rejected", error=error))
                continue
            fp = instance.fingerprint
            same = known.get(lookup.key(lookup.FILE, fp.file_sha256))
            if same or fp.file_sha256 in first_with:
                if not same:
                    copies.append((len(outcomes), first_with[fp.file_sha256]))
                outcomes.append(FileOutcome(path, "already-registered",
                                            same[-1] if same else None, flags=instance.flags))
                continue
            versions = known.get(lookup.key(lookup.PATH, path_keys[path]))
            previous = versions[-1] if versions else None
            first_with[fp.file_sha256] = len(outcomes)
            drafts.append((len(outcomes), registration(instance, path_keys[path], previous,
                                                       self.source)))
            outcomes.append(FileOutcome(path, "new-version" if previous is not None
                                        else "registered", previous=previous,
                                        flags=instance.flags))
        receipts = self.ledger.append_drafts([draft for _, draft in drafts], self.signer)
        for (position, _), receipt in zip(drafts, receipts, strict=True):
            outcomes[position] = replace(outcomes[position], index=receipt.index)
        for position, first in copies:
            outcomes[position] = replace(outcomes[position], index=outcomes[first].index)
        return outcomes


def ingest(ingester: Ingester, paths: Iterable[Path], workers: int,
           on_outcome: Callable[[FileOutcome, int], None]) -> IngestSummary:
    """Ingest every file under ``paths``. ``on_outcome(outcome, size)`` is called for each
    file, in order, once its batch is durable (or it was rejected)."""
    summary = IngestSummary()
    batch: list[Result] = []
    sizes: list[int] = []

    def flush() -> None:
        for outcome, size in zip(ingester.commit(batch), sizes, strict=True):
            summary.add(outcome)
            on_outcome(outcome, size)
        batch.clear()
        sizes.clear()

    with ingester.side.write():  # workers skip what the index knows: bring it up to date
        lookup.catch_up(ingester.ledger.store, ingester.side)
    for result in in_order(describe_task, walk(paths), ingester.project_key, workers,
                           ingester.known_files()):
        batch.append(result)
        sizes.append(result[1].size if result[1] is not None else _size(result[0]))
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return summary


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0
