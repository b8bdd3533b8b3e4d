"""Files uploaded over HTTP (``POST /ingest``, ``POST /fingerprint``): received to disk,
content-addressed, and registered like an ingested folder.

An upload is written, as it arrives, to a temporary file under ``<home>/uploads/.incoming``
(hashed on the way, never held whole in memory) and fsynced. A DICOM instance that
radledger accepts is then renamed to ``<home>/uploads/ab/cd/<sha256>.dcm`` (the path the SCP
uses, ``receive.stored_path``: built from the content hash only, never from a name the client
sent) before its ``instance.registered`` entry is appended, so a crash leaves at worst a
stored file nobody was told about, which the next upload of it registers. Refused files are
not kept. Temporary files left by a crash are removed when the API starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from radledger.core.jcs import JSONValue
from radledger.core.note import Signer
from radledger.dicom.fingerprint import fingerprint_file
from radledger.errors import InputError, StorageError
from radledger.ledger.delegated import access_draft
from radledger.ledger.files import Result, describe
from radledger.ledger.ingest import FileOutcome, Ingester
from radledger.ledger.receive import stored_path
from radledger.ledger.service import Receipt
from radledger.ledger.setup import Workspace
from radledger.storage.files import folder_error, place

UPLOADS = "uploads"
INCOMING = ".incoming"
STALE_S = 600  # a temporary file older than this was left by a crash
SOURCE_TYPE = "api"
_COUNT_KEYS = {"registered": "registered", "new-version": "new_versions",
               "already-registered": "already_registered", "rejected": "rejected"}


class Upload:
    """One uploaded file being received: a temporary file and the SHA-256 of what was
    written. ``write`` as parts arrive, then ``finish`` (fsync) or ``discard``."""

    def __init__(self, folder: Path) -> None:
        try:
            fd, name = tempfile.mkstemp(suffix=".part", dir=folder)
        except OSError as exc:
            raise _storage_error("creating a file in", folder, exc) from None
        self.path = Path(name)
        self.size = 0
        self._folder = folder
        self._digest = hashlib.sha256()
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        """Append ``data``. Raises StorageError (StorageFull) if it cannot be written."""
        try:
            self._file.write(data)
        except OSError as exc:
            raise _storage_error("writing to", self._folder, exc) from None
        self._digest.update(data)
        self.size += len(data)

    def finish(self) -> str:
        """Make the file durable; returns its SHA-256 (hex)."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise _storage_error("writing to", self._folder, exc) from None
        return self._digest.hexdigest()

    def discard(self) -> None:
        """Remove the temporary file (whatever state it is in)."""
        with contextlib.suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class UploadStore:
    """The content-addressed folder of uploaded instances of one ledger home."""

    folder: Path

    @classmethod
    def of_home(cls, home: Path) -> UploadStore:
        """``<home>/uploads``, created with its temporary folder; crash leftovers removed.
        Raises StorageError if the folder cannot be used."""
        store = cls(Path(os.path.abspath(home / UPLOADS)))
        incoming = store.folder / INCOMING
        try:
            incoming.mkdir(parents=True, exist_ok=True)
            for part in incoming.iterdir():
                with contextlib.suppress(FileNotFoundError):  # another process's, renamed
                    if time.time() - part.lstat().st_mtime > STALE_S:
                        part.unlink()
        except OSError as exc:
            raise _storage_error("preparing", store.folder, exc) from None
        return store

    def receive(self) -> Upload:
        """A new temporary file for an upload."""
        return Upload(self.folder / INCOMING)

    def stored(self, file_sha256: str) -> Path:
        """Where the file with this SHA-256 is kept."""
        return stored_path(self.folder, file_sha256)

    def describe(self, upload: Upload, file_sha256: str, project_key: bytes, label: str
                 ) -> Result:
        """Fingerprint a finished upload and, if radledger accepts it, put it in place under
        its content address. The temporary file is gone afterwards. A refusal names
        ``label`` (e.g. ``part 2``), never the temporary path or a client's file name."""
        final = self.stored(file_sha256)
        try:
            if final.is_file():  # these bytes were stored before: the ingester re-checks
                return str(final), None, None, file_sha256
            path, instance, error, _ = describe(upload.path, project_key)
            if instance is None:
                return label, None, (error or "refused").replace(path, label), None
            try:
                place(upload.path, final, self.folder)
            except OSError as exc:
                raise _storage_error("storing into", self.folder, exc) from None
            return str(final), instance, None, None
        finally:
            upload.discard()

    def name_of(self, path: str) -> str:
        """A stored file's path relative to the ledger home (``uploads/ab/cd/<sha>.dcm``),
        or ``path`` itself if it is not stored here."""
        if path.startswith(str(self.folder) + os.sep):
            return f"{UPLOADS}/{os.path.relpath(path, self.folder)}"
        return path


def register_uploads(space: Workspace, signer: Signer, results: list[Result],
                     on_behalf_of: str) -> tuple[list[FileOutcome], Receipt | None]:
    """Register described uploads with the same Ingester as ``radledger ingest`` (source
    ``{"type": "api", "on_behalf_of"}``), then, if anything was appended, one
    ``access.recorded`` (action ``ingest``) naming the token and referring to every new
    entry. Requires the caller to be the process's one writer."""
    ingester = Ingester(space, signer, source=SOURCE_TYPE,
                        source_fields={"on_behalf_of": on_behalf_of})
    outcomes = ingester.commit(results)
    new = sorted({o.index for o in outcomes
                  if o.index is not None and o.status in ("registered", "new-version")})
    if not new:
        return outcomes, None
    (record,) = space.ledger.append_drafts([access_draft(
        "ingest", f"upload:{len(new)} entries", on_behalf_of, refs=tuple(new))], signer)
    return outcomes, record


def outcomes_json(store: UploadStore, outcomes: list[FileOutcome],
                  hashes: list[str]) -> dict[str, JSONValue]:
    """The answer of ``POST /ingest``: one item per uploaded part, in order, as
    ``ingest --json`` (``path`` relative to the ledger home; ``file_sha256`` of the part),
    and the counts."""
    files: list[JSONValue] = []
    counts = dict.fromkeys(_COUNT_KEYS.values(), 0)
    for part, (outcome, sha) in enumerate(zip(outcomes, hashes, strict=True)):
        item = outcome.as_json()
        item["part"] = part
        item["file_sha256"] = sha
        if outcome.status == "rejected":
            item.pop("path", None)
        else:
            item["path"] = store.name_of(outcome.path)
        files.append(item)
        counts[_COUNT_KEYS[outcome.status]] += 1
    return {"files": files, **counts}


def fingerprint_upload(upload: Upload, label: str) -> dict[str, JSONValue]:
    """``radledger fingerprint --json`` of one finished upload, ``path`` replaced by
    ``label``; for a file radledger refuses, ``{"path": label, "error"}`` naming the typed
    error. Nothing is kept: the temporary file is gone afterwards."""
    try:
        try:
            found = fingerprint_file(upload.path)
        except InputError as exc:
            reason = str(exc).replace(str(upload.path), label)
            return {"path": label, "error": f"{type(exc).__name__}: {reason}"}
        return {**found.as_json(), "path": label}
    finally:
        upload.discard()


def _storage_error(action: str, folder: Path, exc: OSError) -> StorageError:
    return folder_error(action, folder, exc, "upload folder")
