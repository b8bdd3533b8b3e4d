"""Verification, exports, the access log, checkpoints and consistency proofs:
``POST /verify``, ``GET /verify/runs``, ``GET /export/{prov,fhir}``, ``GET /access``,
``GET /checkpoints``, ``GET /proof/consistency``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from radledger.api.auth import Context, Reader
from radledger.api.context import ApiContext
from radledger.api.errors import error_schema
from radledger.api.roles import Auditor
from radledger.api.services import Services, services_dependency
from radledger.ledger.audit import (
    access_page,
    checkpoint_json,
    consistency_json,
    export_ledger,
    record_access_for,
    report_json,
    run_verification,
    runs_json,
)
from radledger.ledger.tokens import TokenHolder

router = APIRouter(tags=["audit"], responses={"default": error_schema()})
Open = Annotated[Services, Depends(services_dependency)]
ACCESS_INDEX_HEADER = "X-Radledger-Access-Index"
_MEDIA = {"prov": "application/json", "fhir": "application/fhir+json"}


def _verify(ctx: ApiContext, svc: Services, holder: TokenHolder) -> dict[str, Any]:
    with svc.verifying, ctx.reads.store() as store:  # one full run at a time per process
        report, run = run_verification(store, ctx.home, holder.name,
                                       workers=svc.options.verify_workers)
    return report_json(report, run)


@router.post("/verify", summary="Run the full verification of the ledger, and record it")
async def post_verify(ctx: Context, svc: Open, holder: Auditor) -> dict[str, Any]:
    """What ``radledger verify`` checks (every entry, signature, tree node, block and
    checkpoint), in one snapshot while writers go on. The run is recorded (``GET
    /verify/runs``) as done by the token, also when the request times out first.
    ``{"ok", "tree_size", "entries_checked", "blocks_checked", "problem_count",
    "problems", "started", "finished", "by"}``; a failed verification is ``"ok": false``."""
    return await run_in_threadpool(_verify, ctx, svc, holder)


@router.get("/verify/runs", summary="Recorded full verification runs, newest first")
def get_verify_runs(ctx: Context, _: Reader,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> list[dict[str, Any]]:
    """Runs of ``radledger verify`` (``by: "cli"``) and of ``POST /verify`` (``by``: the
    token), each ``{"started", "finished", "by", "ok", "tree_size", "entries_checked",
    "blocks_checked", "problem_count", "problems"}`` (the first 20 problems)."""
    return runs_json(ctx.home, limit)


def _export(ctx: ApiContext, fmt: str, holder: TokenHolder) -> tuple[str, int]:
    with ctx.reads.store() as store:
        text, count = export_ledger(store, ctx.home.origin, fmt)
    with ctx.writing() as space:
        record = record_access_for(space.ledger, ctx.home.actor_signer, "export",
                                   f"{fmt}:ledger:{count} entries", holder.name)
    return text, record.index


async def _exported(ctx: ApiContext, fmt: str, holder: TokenHolder) -> Response:
    text, index = await run_in_threadpool(_export, ctx, fmt, holder)
    return Response(text + "\n", media_type=_MEDIA[fmt],
                    headers={ACCESS_INDEX_HEADER: str(index)})


@router.get("/export/prov", summary="The whole ledger as W3C PROV-JSON",
            responses={200: {"content": {"application/json": {}}}})
async def get_export_prov(ctx: Context, holder: Auditor) -> Response:
    """As ``radledger export prov``; recorded (``access.recorded``, action ``export``, naming
    the token; its index in the ``X-Radledger-Access-Index`` header)."""
    return await _exported(ctx, "prov", holder)


@router.get("/export/fhir", summary="The whole ledger as a FHIR R4 Bundle",
            responses={200: {"content": {"application/fhir+json": {}}}})
async def get_export_fhir(ctx: Context, holder: Auditor) -> Response:
    """As ``radledger export fhir`` (Provenance and AuditEvent resources); recorded like
    ``/export/prov``."""
    return await _exported(ctx, "fhir", holder)


def _access(ctx: ApiContext, start: int, limit: int) -> dict[str, Any]:
    with ctx.reads.store() as store:
        return access_page(store, start, limit)


@router.get("/access", summary="The access log: access.recorded entries, a page at a time")
async def get_access(ctx: Context, _: Auditor,
                     start: Annotated[int, Query(ge=0, description="First index to look at.")
                                      ] = 0,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """``{"entries": [{"index", "entry"}], "next"}``, oldest first; ask again with
    ``start=next`` until ``next`` is null. A page may be short and still have a ``next``
    (at most 50,000 entries are looked at per request)."""
    return await run_in_threadpool(_access, ctx, start, limit)


@router.get("/checkpoints", summary="A signed checkpoint with its witness cosignatures")
def get_checkpoints(ctx: Context, _: Reader,
                    tree_size: Annotated[int | None, Query(
                        ge=1, description="Its tree size (default: the latest).")] = None
                    ) -> dict[str, Any]:
    """``{"origin", "tree_size", "root", "block", "note", "cosigners"}``: ``note`` is the
    checkpoint verbatim with one line per witness cosignature, ``cosigners`` their names."""
    with ctx.reads.store() as store:
        return checkpoint_json(store, ctx.home, tree_size)


@router.get("/proof/consistency", summary="An RFC 9162 consistency proof")
def get_consistency(ctx: Context, _: Reader,
                    size1: Annotated[int, Query(alias="from", ge=1,
                                                description="The older tree size.")],
                    size2: Annotated[int | None, Query(
                        alias="to", ge=1, description="The newer tree size (default: the "
                                                      "latest sealed size).")] = None
                    ) -> dict[str, Any]:
    """``{"size1", "size2", "proof", "root1", "root2"}`` as ``radledger proof consistency
    --json``, hashes hex."""
    with ctx.reads.store() as store:
        return consistency_json(store, size1, size2)
