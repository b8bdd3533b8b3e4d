"""Receiving DICOM instances from the network (issue 7): store each under its content hash,
register it, and say so only once both are durable.

``Receiver.receive`` runs on the thread of the association that delivered the instance. It
writes the file (a zeroed preamble, the file meta and the dataset as the peer encoded them)
to a temporary file, fsyncs it, fingerprints it, renames it to ``STORE/ab/cd/<sha256>.dcm``
and fsyncs the folders: a path built from the content hash only, never from a UID or any
other received value (RELIABILITY 19, 25). It then hands the registration to the one writer
thread, which owns the ledger and side store connections (no SQLite connection is shared
between threads) and commits whatever the associations delivered meanwhile as one batch, and
waits for it. A file is in place before its entry, so a crash leaves at worst a stored file
that nobody was told about, which the peer sends again.

Refusals are DicomError (the reason names no path and no header value); failures to store
are StorageError; after a storage failure that is neither "full" nor "busy" the writer stops
(RELIABILITY 4) and every later instance is refused with a StorageError.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from radledger.core.note import Signer
from radledger.dicom.instance import Instance, read_instance
from radledger.errors import DicomError, InputError, StorageBusy, StorageError, StorageFull
from radledger.ledger import lookup
from radledger.ledger.files import Result
from radledger.ledger.ingest import BATCH, FileOutcome, Ingester
from radledger.ledger.setup import Workspace
from radledger.storage.files import folder_error, place

SOURCE_TYPE = "scp"
INCOMING = ".incoming"  # temporary files, under the store folder (same filesystem)
STALE_S = 600  # a temporary file older than this was left by a crash
_PREAMBLE = bytes(128) + b"DICM"


@dataclass(frozen=True)
class _Job:
    result: Result
    source: tuple[str, str]  # calling AE title, peer address
    done: Future[FileOutcome]


def stored_path(folder: Path, file_sha256: str) -> Path:
    """Where the file with this SHA-256 (64 lowercase hex digits) is stored under ``folder``."""
    return folder / file_sha256[:2] / file_sha256[2:4] / f"{file_sha256}.dcm"


class Receiver:
    """Stores and registers received instances for one ledger; ``start`` before use,
    ``close`` after the last delivery (it waits for the writer to finish what it has)."""

    def __init__(self, space: Workspace, signer: Signer, folder: Path) -> None:
        self.space, self.signer = space, signer
        self.folder = Path(os.path.abspath(folder))
        self.fatal: BaseException | None = None  # why the writer stopped, if it did
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="radledger-scp-writer",
                                        daemon=True)

    def start(self) -> None:
        """Create the store folder, remove what a crash left half-written, start the writer.

        Raises StorageError if the folder cannot be used."""
        incoming = self.folder / INCOMING
        try:
            incoming.mkdir(parents=True, exist_ok=True)
            for part in incoming.iterdir():  # never acknowledged: the peer sends them again
                # (young ones may be another SCP's on the same store, mid-delivery)
                with contextlib.suppress(FileNotFoundError):  # renamed meanwhile
                    if time.time() - part.lstat().st_mtime > STALE_S:
                        part.unlink()
        except OSError as exc:
            raise StorageError(f"cannot use the store folder {self.folder} "
                               f"({exc.strerror})") from None
        with self.space.side.write():  # so the first delivery does not wait for it
            lookup.catch_up(self.space.ledger.store, self.space.side)
        self._thread.start()

    def close(self) -> None:
        """Refuse new deliveries, finish the queued ones, stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join()

    def receive(self, file_meta: bytes, dataset: bytes, calling_ae: str,
                peer: str) -> FileOutcome:
        """Store and register one instance: ``file_meta`` is the encoded File Meta
        Information group (without preamble and "DICM"), ``dataset`` the dataset as received.
        Returns once the file and its entry are durable (``registered``, or
        ``already-registered`` for bytes the ledger has).

        Raises DicomError if radledger refuses the instance (nothing is kept), StorageError if
        it cannot be stored or registered now.
        """
        digest = hashlib.sha256(_PREAMBLE)
        digest.update(file_meta)
        digest.update(dataset)
        sha = digest.hexdigest()
        final = stored_path(self.folder, sha)
        if final.is_file():  # these bytes were stored before (perhaps never registered)
            result: Result = (str(final), None, None, sha)
        else:
            result = (str(final), self._write(final, (_PREAMBLE, file_meta, dataset)), None,
                      None)
        outcome = self._submit(result, (calling_ae, peer))
        if outcome.status == "rejected":
            raise DicomError(f"received instance: {outcome.error}")
        return outcome

    # -- the handler side -----------------------------------------------------------------
    def _write(self, final: Path, parts: tuple[bytes, ...]) -> Instance:
        try:
            fd, name = tempfile.mkstemp(suffix=".part", dir=self.folder / INCOMING)
        except OSError as exc:
            raise _storage_error("creating a file in", self.folder, exc) from None
        tmp = Path(name)
        try:
            try:
                with os.fdopen(fd, "wb") as f:
                    for part in parts:
                        f.write(part)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                raise _storage_error("writing to", self.folder, exc) from None
            try:
                instance = read_instance(tmp, self.space.project_key)
            except InputError as exc:
                raise DicomError("received instance: " + str(exc).replace(f"{tmp}: ", "")
                                 .replace(str(tmp), "the instance")) from None
            try:
                place(tmp, final, self.folder)
            except OSError as exc:
                raise _storage_error("storing into", self.folder, exc) from None
            return instance
        finally:
            tmp.unlink(missing_ok=True)

    def _submit(self, result: Result, source: tuple[str, str]) -> FileOutcome:
        done: Future[FileOutcome] = Future()
        with self._lock:
            if self.fatal is not None:
                raise StorageError(f"the ledger writer stopped after an error ({self.fatal}); "
                                   "restart radledger scp")
            if self._closed:
                raise StorageError("radledger scp is shutting down")
            self._queue.put(_Job(result, source, done))
        return done.result()

    # -- the writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                jobs.append(more)
            groups: dict[tuple[str, str], list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.source, []).append(job)
            for source, group in groups.items():
                self._commit(source, group)

    def _commit(self, source: tuple[str, str], jobs: list[_Job]) -> None:
        if self.fatal is not None:
            for job in jobs:
                job.done.set_exception(StorageError(
                    f"the ledger writer stopped after an error ({self.fatal})"))
            return
        calling_ae, peer = source
        ingester = Ingester(self.space, self.signer, source=SOURCE_TYPE,
                            source_fields={"calling_ae": calling_ae, "peer": peer})
        try:
            outcomes = ingester.commit([job.result for job in jobs])
        except InputError as exc:
            if len(jobs) > 1:  # one instance's entry is refused: the others go on alone
                for job in jobs:
                    self._commit(source, [job])
                return
            jobs[0].done.set_exception(DicomError(f"its entry was refused ({exc})"))
            return
        except Exception as exc:  # noqa: BLE001 - every waiting handler must hear of it
            if not isinstance(exc, StorageBusy | StorageFull):
                self.fatal = exc
            failure = exc if isinstance(exc, StorageError) else StorageError(
                f"registering failed ({type(exc).__name__})")
            for job in jobs:
                job.done.set_exception(failure)
            return
        for job, outcome in zip(jobs, outcomes, strict=True):
            job.done.set_result(outcome)


def _storage_error(action: str, folder: Path, exc: OSError) -> StorageError:
    return folder_error(action, folder, exc, "store folder")
