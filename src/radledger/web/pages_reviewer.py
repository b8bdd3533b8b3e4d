"""The reviewer page: drop or choose a bundle file, or pick a release, and read the plain
report ``radledger.reviewer`` gives, each claim green and each failure red. The reviewer role
sees this page and the release bundles, nothing else."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from radledger.api.auth import Context
from radledger.api.context import ApiContext
from radledger.core.bundle import MAX_BUNDLE_BYTES
from radledger.errors import InputError, RadledgerError
from radledger.ledger.tokens import Permission
from radledger.web.releases import build_bundle, home_vkey, releases, verify_bytes
from radledger.web.render import PREFIX, WebRoute, page
from radledger.web.session import Needs, WebUser

router = APIRouter(route_class=WebRoute, include_in_schema=False)
BundleReader = Annotated[WebUser, Depends(Needs(Permission.REVIEW, Permission.READ))]


def _page(request: Request, ctx: ApiContext, user: WebUser, status: int = 200,
          **values: Any) -> HTMLResponse:
    """The page with ``report``, ``checked`` (what it is about), ``problem``, ``trust_key``
    as given (defaults: none, and the ledger's own key)."""
    with ctx.reads.store() as store:
        rows = releases(store)
    values.setdefault("trust_key", home_vkey(ctx))
    for name in ("report", "checked", "problem"):
        values.setdefault(name, None)
    return page(request, user, "reviewer.html", title="Reviewer", rows=rows, status=status,
                **values)


@router.get(f"{PREFIX}/reviewer")
async def reviewer(request: Request, ctx: Context, user: BundleReader,
                   release: Annotated[int | None, Query(ge=0)] = None) -> HTMLResponse:
    """The page; with ``?release=N``, that release's bundle verified here."""
    if release is None:
        return _page(request, ctx, user)

    def check() -> Any:
        with ctx.writing() as space:
            built = build_bundle(ctx, space, release)
        return verify_bytes(built.data, home_vkey(ctx))

    report = await run_in_threadpool(check)
    return _page(request, ctx, user, report=report, checked=f"the bundle of release entry "
                 f"{release}, made by this server")


@router.post(f"{PREFIX}/reviewer")
async def review_upload(request: Request, ctx: Context, user: BundleReader,
                        bundle: Annotated[UploadFile, File()],
                        trust_key: Annotated[str, Form(max_length=1000)] = "") -> HTMLResponse:
    """Verify an uploaded bundle, pinning ``trust_key`` (the ledger's verifier key) if
    given."""
    data = await bundle.read(MAX_BUNDLE_BYTES + 1)
    name = (bundle.filename or "the bundle")[:120]
    try:
        if len(data) > MAX_BUNDLE_BYTES:
            raise InputError(f"{name} is over the bundle limit of {MAX_BUNDLE_BYTES} bytes")
        report = await run_in_threadpool(verify_bytes, data, trust_key.strip() or None)
    except RadledgerError as exc:
        return _page(request, ctx, user, problem=f"{name} cannot be verified: {exc}",
                     trust_key=trust_key, status=422)
    return _page(request, ctx, user, report=report, checked=name, trust_key=trust_key)
