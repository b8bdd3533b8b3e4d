"""What the data, audit and bundle routes need besides the ApiContext: the server's options,
the upload folder, the background witness sync, the witness endpoint, one verification at a
time. Opened and closed with the app (its lifespan)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from fastapi import Request

from radledger.api.context import ApiContext
from radledger.api.timeouts import DEFAULT_REQUEST_TIMEOUT_S
from radledger.api.witnessing import WitnessSync
from radledger.core.bundle import MAX_BUNDLE_BYTES
from radledger.core.note import Verifier
from radledger.ledger.setup import open_store
from radledger.ledger.uploads import UploadStore
from radledger.ledger.witness_server import Witness, open_witness
from radledger.ledger.witnessing import TIMEOUT_S

DEFAULT_MAX_UPLOAD_FILE = 1 << 30  # one DICOM file: large multi-frame objects fit
DEFAULT_MAX_UPLOAD = 4 << 30  # one upload request, all its files together
MAX_UPLOAD_FILES = 100  # parts in one upload request
UPLOAD_ROUTES = ("/ingest", "/fingerprint")
BUNDLE_ROUTE = "/bundles/verify"
_MULTIPART_SLACK = 64 * 1024  # delimiters and part headers around one file


@dataclass(frozen=True)
class WitnessEndpoint:
    """Serve C2SP ``POST /add-checkpoint`` from the witness home ``home`` for ``logs``
    (origin -> the log's pinned keys), as ``radledger witness serve`` does."""

    home: Path
    logs: Mapping[str, Sequence[Verifier]]


@dataclass(frozen=True)
class ApiOptions:
    """The server's limits and roles beyond the ApiContext's."""

    max_upload_file: int = DEFAULT_MAX_UPLOAD_FILE
    max_upload: int = DEFAULT_MAX_UPLOAD
    request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT_S
    # full verification (POST /verify): worker processes. One by default: a request should not
    # take every core from the server, nor fork a process that serves on many threads
    verify_workers: int | None = 1
    witness: WitnessEndpoint | None = None
    witness_timeout: float = TIMEOUT_S  # background witnessing: seconds per witness
    # the web UI's CSRF key; None: a random one. Processes serving together share one
    # (api.serving), so a form one of them served is accepted by another
    web_key: bytes | None = None

    def body_limits(self) -> dict[str, int]:
        """Per-route body limits above the app-wide one (for limits.BodyLimit)."""
        limits = dict.fromkeys(UPLOAD_ROUTES, self.max_upload)
        limits[BUNDLE_ROUTE] = MAX_BUNDLE_BYTES + _MULTIPART_SLACK
        return limits


@dataclass
class Services:
    """The open services of an app."""

    options: ApiOptions
    uploads: UploadStore
    sync: WitnessSync
    witness: Witness | None = None
    verifying: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, ctx: ApiContext, options: ApiOptions) -> Services:
        """Open what ``options`` ask for over ``ctx``; its writes then poke the witness sync.
        Raises StorageError if the upload folder cannot be used, InputError if the witness
        home has no key."""
        uploads = UploadStore.of_home(ctx.home.path)
        home = ctx.home
        sync = WitnessSync(home.path, lambda: open_store(home), options.witness_timeout)
        witness = None
        if options.witness is not None:
            witness = open_witness(options.witness.home, options.witness.logs)
        ctx.after_write = sync.poke
        return cls(options, uploads, sync, witness)

    def close(self) -> None:
        """Stop the witness sync and close the witness database."""
        self.sync.close()
        if self.witness is not None:
            self.witness.store.close()


def services(request: Request) -> Services:
    """The Services the app's lifespan opened."""
    return cast(Services, request.app.state.radledger_services)


async def services_dependency(request: Request) -> Services:
    """``services`` as a route dependency (async: FastAPI runs a sync one on a worker
    thread, a hop that costs more than the lookup)."""
    return services(request)
