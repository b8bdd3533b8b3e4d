"""DICOM uploads: ``POST /ingest`` (register, like ``radledger ingest``) and
``POST /fingerprint`` (fingerprints only, like ``radledger fingerprint``).

Both take ``multipart/form-data``, one part per file; each part is streamed to disk under the
ledger home, never held whole in memory, and limited in size (413).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from radledger.api.auth import Context, Reader, Writer
from radledger.api.context import ApiContext
from radledger.api.errors import error_schema
from radledger.api.services import MAX_UPLOAD_FILES, Services, services_dependency
from radledger.api.uploading import discard, receive_files
from radledger.ledger.tokens import TokenHolder
from radledger.ledger.uploads import (
    Upload,
    fingerprint_upload,
    outcomes_json,
    register_uploads,
)

router = APIRouter(tags=["data"], responses={"default": error_schema()})
Open = Annotated[Services, Depends(services_dependency)]
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "properties": {"files": {
        "type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}


def _ingest(ctx: ApiContext, svc: Services, received: list[tuple[Upload, str]],
            holder: TokenHolder) -> dict[str, Any]:
    """Fingerprint and put each upload in place (outside the writer), then register them all
    under the writer, with one access record naming the token."""
    try:
        results = [svc.uploads.describe(upload, sha, ctx.home.project_key, f"part {n}")
                   for n, (upload, sha) in enumerate(received)]
    finally:
        discard(received)
    with ctx.writing() as space:
        outcomes, record = register_uploads(space, ctx.home.actor_signer, results, holder.name)
    out = outcomes_json(svc.uploads, outcomes, [sha for _, sha in received])
    out["access_index"] = record.index if record is not None else None
    return out


@router.post("/ingest", summary="Upload DICOM files and register them",
             openapi_extra=_UPLOAD_BODY)
async def post_ingest(request: Request, ctx: Context, svc: Open, holder: Writer
                      ) -> JSONResponse:
    """One part per file. Each accepted instance is stored under its SHA-256
    (``uploads/ab/cd/<sha256>.dcm`` in the ledger home) and registered as by
    ``radledger ingest`` (source ``{"type": "api", "on_behalf_of": <token>}``); a file
    radledger refuses is reported with the typed reason and not kept, the others are still
    registered. Answer: ``{"files": [{"part", "status", "file_sha256", "path"?, "index"?,
    "previous"?, "error"?, "flags"?}], "registered", "new_versions", "already_registered",
    "rejected", "access_index"}``."""
    received = await receive_files(request, svc.uploads, svc.options.max_upload_file,
                                   MAX_UPLOAD_FILES)
    out = await run_in_threadpool(_ingest, ctx, svc, received, holder)
    return JSONResponse(out, status_code=200)


def _fingerprints(received: list[tuple[Upload, str]]) -> list[dict[str, Any]]:
    try:
        return [fingerprint_upload(upload, f"part {n}")
                for n, (upload, _) in enumerate(received)]
    finally:
        discard(received)


@router.post("/fingerprint", summary="Fingerprints of uploaded DICOM files",
             openapi_extra=_UPLOAD_BODY)
async def post_fingerprint(request: Request, svc: Open, _: Reader) -> list[dict[str, Any]]:
    """``radledger fingerprint --json`` of each part (``path`` is ``part N``); a refused file
    is ``{"path", "error"}``. Reads no ledger data and writes nothing, so it is not recorded
    as access; the files are not kept."""
    received = await receive_files(request, svc.uploads, svc.options.max_upload_file,
                                   MAX_UPLOAD_FILES)
    return await run_in_threadpool(_fingerprints, received)
