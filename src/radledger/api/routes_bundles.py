"""Reviewer bundles: ``GET /releases/{index}/bundle`` (create and download a release's
bundle) and ``POST /bundles/verify`` (the reviewer's report on an uploaded bundle)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from radledger.api.auth import Context
from radledger.api.context import ApiContext
from radledger.api.errors import error_schema
from radledger.api.roles import BundleChecker, BundleReader
from radledger.api.services import Services, services_dependency
from radledger.api.uploading import discard, receive_files
from radledger.core.bundle import MAX_BUNDLE_BYTES
from radledger.errors import InputError
from radledger.ledger.reviewing import bundle_release, review_bundle
from radledger.ledger.tokens import TokenHolder
from radledger.ledger.uploads import Upload
from radledger.reviewer import Checks

router = APIRouter(tags=["bundles"], responses={"default": error_schema()})
Open = Annotated[Services, Depends(services_dependency)]
BUNDLE_MEDIA = "application/json"


def _bundle(ctx: ApiContext, index: int, holder: TokenHolder) -> bytes:
    with ctx.writing() as space:  # the bundle is recorded as an export: one writer
        return bundle_release(space, ctx.home, index, holder.name)


@router.get("/releases/{index}/bundle", summary="The reviewer bundle of a release",
            responses={200: {"content": {BUNDLE_MEDIA: {}}}})
async def get_bundle(ctx: Context, holder: BundleReader,
                     index: Annotated[int, Path(ge=0, description="The release's entry.")]
                     ) -> Response:
    """The ``radledger-bundle/v1`` document of the ``dataset.released`` entry at ``index``,
    made now against the latest checkpoint (as ``radledger bundle create``), member files
    named relative to their common folder. Recorded as an export naming the token. The
    ``reviewer`` role may download any release's bundle and nothing else (tokens are not
    scoped to one release); auditors and admins may too."""
    data = await run_in_threadpool(_bundle, ctx, index, holder)
    return Response(data, media_type=BUNDLE_MEDIA, headers={
        "Content-Disposition": f'attachment; filename="release-{index}.rlbundle"'})


def _review(received: list[tuple[Upload, str]], checks: Checks) -> dict[str, Any]:
    try:
        if len(received) != 1:
            raise InputError(f"upload exactly one bundle (got {len(received)} parts)")
        return review_bundle(received[0][0].path, checks)
    finally:
        discard(received)


@router.post("/bundles/verify", summary="Verify an uploaded bundle as a reviewer would",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "properties": {
                     "bundle": {"type": "string", "format": "binary"}}}}}}})
async def post_bundle_verify(
        request: Request, svc: Open, _: BundleChecker,
        trust_key: Annotated[str | None, Query(
            description="The ledger's verifier key (C2SP vkey) to pin.")] = None,
        witness: Annotated[list[str] | None, Query(
            description="A witness's verifier key to pin; repeatable.")] = None,
        quorum: Annotated[int, Query(ge=0, description="Cosignatures required.")] = 0,
) -> dict[str, Any]:
    """One part: the bundle file (at most 256 MiB). The answer is ``radledger bundle verify
    --json``'s ``{"ok", "summary", "claims", "failures"}``, each check again as ``{"claim",
    "ok"}`` in ``checks``, and ``report``, the plain-language text. Offline: member files
    are not rehashed and anchors are not checked against a chain. Nothing is kept or
    recorded (a bundle holds no patient data)."""
    received = await receive_files(request, svc.uploads, MAX_BUNDLE_BYTES, 1)
    return await run_in_threadpool(_review, received, Checks(
        None, trust_key, quorum, tuple(witness or ()), None))
