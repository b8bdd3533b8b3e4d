"""Following an Orthanc server: register every instance it receives, note stable studies,
and re-check what it serves against what was registered (issue 7).

Orthanc numbers every change it makes (``GET /changes?since=N&limit=M``: ``NewInstance``,
``StableStudy``, ...). The follower reads that log a page at a time:

1. each ``NewInstance``: ``GET /instances/{id}/file`` into a private temporary file, which
   is fingerprinted like any file and registered (``radledger.ledger.ingest.Ingester``) with
   ``source`` ``{"type": "orthanc", "orthanc": <server URL>, "path_key": ...}``;
2. each ``StableStudy``: an ``x-orthanc.stable-study`` entry (``record_stable_studies``);
3. only then, the cursor (the page's last ``Seq``) is written to ``orthanc.sqlite3``.

A crash between 1-2 and 3 replays the page on restart, and replaying appends nothing: the
fetched bytes are found registered (by ``file_sha256``) and an identical study event is
found in the ledger. A cursor is never ahead of the ledger, so no change is skipped.

**No Orthanc identifier goes in the ledger.** Orthanc's IDs are SHA-1 hashes of the
PatientID and the Study/Series/SOP Instance UIDs: a pseudonym without a key, which anyone
holding a candidate UID can recompute. An instance's locator ``<server>/instances/<id>``
takes the place a file path has in a folder ingest: the ledger gets its keyed pseudonym
(``source.path_key``, HMAC with the project key, namespace ``FilePath``), and the clear
locator goes to the side store's ``files`` table only (local, erasable), where ``verify``
finds it. The server URL is recorded in clear (``source.orthanc``): it names a machine, not
a patient; credentials are never part of it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from radledger.core.entry import MAX_REFS
from radledger.core.jcs import JSONValue
from radledger.core.note import Signer
from radledger.core.pseudonym import pseudonym
from radledger.errors import InputError, OrthancError
from radledger.ledger import lookup
from radledger.ledger.drafts import Draft
from radledger.ledger.files import Result, describe, file_sha256
from radledger.ledger.fixity import FileCheck
from radledger.ledger.ingest import FileOutcome, Ingester
from radledger.ledger.orthanc_http import OrthancClient
from radledger.ledger.setup import Workspace
from radledger.storage.orthanc_state import OrthancState

STABLE_STUDY = "x-orthanc.stable-study"
PAGE = 100  # changes asked for per request (Orthanc's own default)
FETCHERS = 4  # instances downloaded and fingerprinted at once
_CHUNK = 1 << 20


@dataclass
class PassReport:
    """What one pass over the pending changes did."""

    since: int
    last: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("registered", "new-version", "already-registered", "rejected", "gone"), 0))
    studies: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("recorded", "already-recorded", "gone"), 0))
    restarted: bool = False  # the server's change log was behind the cursor

    def as_json(self) -> dict[str, JSONValue]:
        """The stable machine form (``radledger orthanc follow --json``)."""
        return {"since": self.since, "last": self.last, "instances": dict(self.counts),
                "stable_studies": dict(self.studies), "restarted": self.restarted}


@dataclass
class VerifyReport:
    """Counts of a verification by status; ``ok`` is False if any was modified or missing."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("ok", "modified", "missing"), 0))

    @property
    def ok(self) -> bool:
        """Nothing modified or missing."""
        return not (self.counts["modified"] or self.counts["missing"])


class Follower:
    """Follows one Orthanc server into one ledger."""

    page = PAGE
    fetchers = FETCHERS

    def __init__(self, space: Workspace, signer: Signer, client: OrthancClient,
                 state: OrthancState) -> None:
        self.space, self.signer, self.client, self.state = space, signer, client, state
        self.ingester = Ingester(space, signer, source="orthanc",
                                 source_fields={"orthanc": client.url})

    def locator(self, instance_id: str) -> str:
        """Where an instance is found: ``<server>/instances/<id>`` (kept out of the ledger)."""
        return f"{self.client.url}/instances/{instance_id}"

    def follow_once(self, on_outcome: Callable[[FileOutcome], None] = lambda _o: None,
                    stop: Callable[[], bool] = lambda: False) -> PassReport:
        """Process every pending change, a page at a time; returns what was done.

        ``on_outcome`` is called for each instance once its registration is durable;
        ``stop()`` is asked between pages (a service being stopped ends the pass early).
        Raises an OrthancError if the server cannot be read; what was done before stays
        done, and the cursor names the last page fully processed.
        """
        url = self.client.url
        stored = cursor = self.state.cursor(url)
        report = PassReport(cursor, cursor)
        if _last_seq(self.client.get_json("/changes?last")) < cursor:
            cursor, report.restarted = 0, True  # a new Orthanc database: Seq started again
        while True:
            page = _changes(self.client.get_json(f"/changes?since={cursor}&limit={self.page}"))
            instances = list(dict.fromkeys(c.id for c in page.changes
                                           if c.type == "NewInstance"))
            for outcome in self._register(instances):
                report.counts[outcome.status] += 1
                on_outcome(outcome)
            studies = list(dict.fromkeys(c.id for c in page.changes
                                         if c.type == "StableStudy"))
            for status in record_stable_studies(self, studies):
                report.studies[status] += 1
            cursor = max(cursor, page.last)
            if cursor != stored:  # only now: the page's effects are durable
                self.state.set_cursor(url, cursor)
                stored = cursor
            report.last = cursor
            if page.done or not page.changes or stop():
                return report

    def _register(self, instance_ids: list[str]) -> Iterator[FileOutcome]:
        if not instance_ids:
            return
        with tempfile.TemporaryDirectory(prefix="radledger-orthanc-") as tmp, \
                ThreadPoolExecutor(self.fetchers) as pool:
            fetched = list(pool.map(lambda iid: self._fetch(iid, Path(tmp)), instance_ids))
        gone = [loc for loc, result in fetched if result is None]
        results = [result for _, result in fetched if result is not None]
        yield from self.ingester.commit(results) if results else []
        for loc in gone:
            yield FileOutcome(loc, "gone")

    def _fetch(self, instance_id: str, tmp: Path) -> tuple[str, Result | None]:
        """Download and fingerprint one instance; ``(locator, None)`` if Orthanc deleted it
        since the change was logged."""
        loc = self.locator(instance_id)
        _check_id(instance_id)
        path = tmp / hashlib.sha256(instance_id.encode()).hexdigest()
        try:
            with path.open("xb") as f:  # in a fresh 0700 folder, deleted at once
                if not self.client.download(f"/instances/{instance_id}/file", f):
                    return loc, None
            _, instance, error, _ = describe(path, self.space.project_key)
        finally:
            path.unlink(missing_ok=True)
        return loc, (loc, instance, error.replace(str(path), loc) if error else None, None)


def record_stable_studies(follower: Follower, study_ids: list[str]) -> list[str]:
    """Record that Orthanc declared these studies stable (no new instance for its
    ``StableAge``), in one append.

    Each entry's subject holds the study's and patient's keyed pseudonyms, its ``refs`` the
    registrations of the study's instances as Orthanc holds them now, its body the server
    URL and counts. A study recorded already with the same instances appends nothing.
    Returns, per study, ``recorded``, ``already-recorded``, or ``gone`` (deleted from
    Orthanc since).
    """
    if not study_ids:
        return []
    client, space = follower.client, follower.space
    found = [_stable_study(follower, study_id) for study_id in study_ids]
    statuses: list[str] = []
    drafts: list[Draft] = []
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
        for study in found:
            if study is None:
                statuses.append("gone")
                continue
            subject, instance_ids = study
            registered = sorted({idx for loc in map(follower.locator, instance_ids)
                                 if (idx := space.side.files_under(loc).get(loc)) is not None})
            draft = Draft(STABLE_STUDY, {"orthanc": client.url, "instances": len(instance_ids),
                                         "registered": len(registered)},
                          subject, tuple(registered[:MAX_REFS]))
            if draft in drafts or _recorded(space, draft):
                statuses.append("already-recorded")
                continue
            drafts.append(draft)
            statuses.append("recorded")
        if drafts:
            space.ledger.append_drafts(drafts, follower.signer)
            lookup.catch_up(space.ledger.store, space.side)
    return statuses


def _stable_study(follower: Follower, study_id: str) -> tuple[dict[str, str], list[str]] | None:
    """A study's subject keys and its instances' IDs, read from Orthanc; None if gone."""
    _check_id(study_id)
    study = follower.client.get_json(f"/studies/{study_id}")
    if not isinstance(study, dict):
        return None
    instance_ids: list[str] = []
    for series_id in _strings(study.get("Series")):
        _check_id(series_id)
        series = follower.client.get_json(f"/series/{series_id}")
        if isinstance(series, dict):
            instance_ids += _strings(series.get("Instances"))
    return _study_subject(follower.space.project_key, study), instance_ids


def verify_instances(follower: Follower, on_check: Callable[[FileCheck], None]
                     ) -> VerifyReport:
    """Fetch every instance registered from this server again and compare its SHA-256 with
    the registered ``file_sha256``: ``ok``, ``modified`` (saying whether pixels, header or
    only the encoding changed) or ``missing`` (deleted from Orthanc).

    ``on_check`` is called for each instance, in locator order. Raises an OrthancError if
    the server cannot be read.
    """
    space = follower.space
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    expected = [(loc, index, _body(space, index)) for loc, index in sorted(
        space.side.files_under(f"{follower.client.url}/instances").items())]
    report = VerifyReport()
    with tempfile.TemporaryDirectory(prefix="radledger-orthanc-") as tmp, \
            ThreadPoolExecutor(follower.fetchers) as pool:
        for check in pool.map(
                lambda item: _check(follower, item[0], item[1], item[2], Path(tmp)), expected):
            report.counts[check.status] += 1
            on_check(check)
    return report


def _check(follower: Follower, loc: str, index: int, registered: Mapping[str, JSONValue],
           tmp: Path) -> FileCheck:
    """Runs on a worker thread: network and files only, no database."""
    instance_id = loc.rsplit("/", 1)[1]
    _check_id(instance_id)
    path = tmp / hashlib.sha256(instance_id.encode()).hexdigest()
    try:
        with path.open("xb") as f:
            if not follower.client.download(f"/instances/{instance_id}/file", f):
                return FileCheck(loc, "missing", index)
        if file_sha256(path)[1] == registered.get("file_sha256"):
            return FileCheck(loc, "ok", index)
        _, instance, error, _ = describe(path, follower.space.project_key)
    finally:
        path.unlink(missing_ok=True)
    if instance is None:
        return FileCheck(loc, "modified", index, ("unreadable",),
                         error.replace(str(path), loc) if error else None)
    fp = instance.fingerprint
    changed = tuple(name for name, now, then in (
        ("pixels", fp.pixel_sha256, registered.get("pixel_sha256")),
        ("header", fp.meta_sha256, registered.get("meta_sha256"))) if now != then)
    return FileCheck(loc, "modified", index, changed or ("encoding",))


@dataclass(frozen=True)
class _Change:
    seq: int
    type: str
    id: str


@dataclass(frozen=True)
class _Page:
    changes: list[_Change]
    done: bool
    last: int


def _changes(value: JSONValue | None) -> _Page:
    if not isinstance(value, dict) or not isinstance(value.get("Changes"), list):
        raise OrthancError("Orthanc's /changes answer has no Changes list; is this Orthanc?")
    changes = []
    for item in value["Changes"]:  # type: ignore[union-attr]
        if isinstance(item, dict) and isinstance(item.get("Seq"), int) \
                and isinstance(item.get("ChangeType"), str) and isinstance(item.get("ID"), str):
            changes.append(_Change(item["Seq"], item["ChangeType"], item["ID"]))  # type: ignore[arg-type]
    return _Page(changes, value.get("Done") is True, _last_seq(value))


def _last_seq(value: JSONValue | None) -> int:
    last = value.get("Last") if isinstance(value, dict) else None
    if not isinstance(last, int) or isinstance(last, bool) or last < 0:
        raise OrthancError("Orthanc's /changes answer has no Last sequence number")
    return last


def _check_id(orthanc_id: str) -> None:
    """Orthanc IDs are five dash-separated groups of hex; anything else is refused before
    it becomes part of a URL or a file name."""
    parts = orthanc_id.split("-")
    if len(parts) != 5 or not all(p and len(p) == 8 and all(  # noqa: PLR2004
            c in "0123456789abcdef" for c in p) for p in parts):
        raise OrthancError(f"Orthanc sent a malformed resource ID {orthanc_id[:60]!r}")


def _strings(value: JSONValue | None) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _study_subject(project_key: bytes, study: Mapping[str, JSONValue]) -> dict[str, str]:
    tags, patient = study.get("MainDicomTags"), study.get("PatientMainDicomTags")
    uid = tags.get("StudyInstanceUID") if isinstance(tags, dict) else None
    if not isinstance(uid, str) or not uid.strip():
        raise OrthancError("Orthanc sent a study without a StudyInstanceUID")
    try:
        subject = {"study": pseudonym(project_key, "StudyInstanceUID", uid.strip())}
        patient_id = patient.get("PatientID") if isinstance(patient, dict) else None
        if isinstance(patient_id, str) and patient_id.strip():
            subject["patient"] = pseudonym(project_key, "PatientID", patient_id.strip())
    except InputError:
        raise OrthancError("Orthanc sent a study whose identifiers are unusable") from None
    return subject


def _recorded(space: Workspace, draft: Draft) -> bool:
    """Is this study event in the ledger already (same server, study and instances)?"""
    study = lookup.key(lookup.SUBJECT_TAGS["study"], draft.subject["study"])
    for index in space.side.lookup([study]).get(study, []):
        row = space.ledger.store.entry(index)
        entry = json.loads(row[1]) if row else {}
        if entry.get("kind") == STABLE_STUDY and entry.get("refs") == list(draft.refs) \
                and entry["body"].get("orthanc") == draft.body["orthanc"]:
            return True
    return False


def _body(space: Workspace, index: int) -> dict[str, JSONValue]:
    row = space.ledger.store.entry(index)
    body = json.loads(row[1]).get("body", {}) if row else {}
    return body if isinstance(body, dict) else {}
