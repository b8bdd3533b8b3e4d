"""Release pages: the list and the form, the consent check before confirming (nothing is
appended until then), the release with its bundle's verification report, the download."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from radledger.api.auth import Context
from radledger.api.routes_releases import ReleaseCheck, check_release
from radledger.core.note import Signer
from radledger.errors import InputError
from radledger.ledger import release
from radledger.ledger.service import Receipt
from radledger.ledger.setup import Workspace
from radledger.ledger.tokens import Permission
from radledger.web.access import record, write_for
from radledger.web.releases import (
    build_bundle,
    chosen_members,
    home_vkey,
    member_lines,
    release_entry,
    release_row,
    releases,
    verify_bytes,
)
from radledger.web.render import PREFIX, SECURITY_HEADERS, WebRoute, page, redirect
from radledger.web.session import Needs, WebUser

router = APIRouter(route_class=WebRoute, include_in_schema=False)
Reader = Annotated[WebUser, Depends(Needs(Permission.READ))]
Writer = Annotated[WebUser, Depends(Needs(Permission.APPEND))]
# a release's reviewer bundle, as for the API: reviewers, auditors (and admins)
BundleReader = Annotated[WebUser, Depends(Needs(Permission.REVIEW, Permission.AUDIT))]


@router.get(f"{PREFIX}/releases")
def releases_page(request: Request, ctx: Context, user: Reader) -> HTMLResponse:
    """Every release, and the form to make one (for writers)."""
    with ctx.reads.store() as store:
        rows = releases(store)
    return page(request, user, "releases.html", title="Releases", rows=rows,
                origin=ctx.home.origin, form=ReleaseForm(), problem=None)


class ReleaseForm(BaseModel):
    """The release form: what to release and under which rules. ``members`` are what the
    person typed (for the check); ``chosen`` the entry indices the check resolved them to
    (for the confirmation, so what is released is what was checked)."""

    name: str = Field(default="", max_length=200)
    version: str = Field(default="", max_length=200)
    members: str = Field(default="", max_length=100_000)
    every: bool = False
    chosen: str = Field(default="", max_length=1_000_000, pattern=r"^[0-9,]*$")
    scope: str = Field(default="", max_length=200)
    exclude_unconsented: bool = False
    allow_identified: bool = False
    include_burned_in: bool = False
    description: str = Field(default="", max_length=2000)

    def plan(self, members: list[int], origin: str) -> release.ReleasePlan:
        """The ReleasePlan of this form over ``members``."""
        return release.ReleasePlan(
            self.name.strip(), self.version.strip(), members, self.scope.strip() or origin,
            self.exclude_unconsented, self.allow_identified, self.include_burned_in,
            self.description.strip() or None)


Release = Annotated[ReleaseForm, Form()]


@router.post(f"{PREFIX}/releases/check")
async def check(request: Request, ctx: Context, user: Writer, form: Release) -> HTMLResponse:
    """The dry run: each member's consent and what would stop the release. Appends
    nothing; the page asks for confirmation."""
    def dry_run() -> tuple[ReleaseCheck, list[int]]:
        if not form.name.strip() or not form.version.strip():
            raise InputError("a release needs a name and a version")
        with ctx.writing() as space:
            chosen = chosen_members(space, member_lines(form.members), form.every)
            plan = form.plan(chosen, ctx.home.origin)
            return check_release(space, ctx.home.actor_signer, plan), chosen

    try:
        verdict, chosen = await run_in_threadpool(dry_run)
    except InputError as exc:
        with ctx.reads.store() as store:
            rows = releases(store)
        return page(request, user, "releases.html", title="Releases", rows=rows,
                    origin=ctx.home.origin, form=form, problem=str(exc), status=422)
    return page(request, user, "release_check.html", title="Check the release", form=form,
                scope=form.scope.strip() or ctx.home.origin, verdict=verdict,
                chosen=",".join(map(str, chosen)))


@router.post(f"{PREFIX}/releases")
async def create(ctx: Context, user: Writer, form: Release) -> Response:
    """Confirmed: the members checked are released (``create_release`` checks them again,
    so consent withdrawn since the check is still refused)."""
    members = [int(i) for i in form.chosen.split(",") if i]

    def made(space: Workspace, signer: Signer) -> Receipt:
        return release.create_release(space, signer, form.plan(members, ctx.home.origin))

    receipt, _ = await run_in_threadpool(write_for, ctx, user, made)
    return redirect(f"{PREFIX}/releases/{receipt.index}?created=1")


@router.get(f"{PREFIX}/releases/{{index}}")
async def release_page(request: Request, ctx: Context, user: Reader, index: int
                       ) -> HTMLResponse:
    """The release, its consent state, and its bundle verified as a reviewer would (with
    the member files where this server has them)."""
    def read() -> tuple[dict[str, Any], Any, bool]:
        with ctx.writing() as space:
            entry = release_entry(space.ledger.store, index)
            built = build_bundle(ctx, space, index)
        return entry, verify_bytes(built.data, home_vkey(ctx), built.files_root), \
            built.files_root is not None

    entry, report, with_files = await run_in_threadpool(read)
    return page(request, user, "release.html", title=f"Release {entry['body'].get('name')}",
                row=release_row(index, entry), body=entry["body"], report=report,
                with_files=with_files, created=request.query_params.get("created") == "1")


@router.get(f"{PREFIX}/releases/{{index}}/bundle")
async def download(ctx: Context, user: BundleReader, index: int) -> Response:
    """The release's reviewer bundle (``radledger-bundle/v1``); the export is recorded."""
    def build() -> Any:
        with ctx.writing() as space:
            built = build_bundle(ctx, space, index)
            record(space, ctx.home.actor_signer, user, "export",
                   f"bundle:dataset.released/{index}")
        return built

    built = await run_in_threadpool(build)
    headers = dict(SECURITY_HEADERS)
    headers["Content-Disposition"] = f'attachment; filename="{built.filename}"'
    return Response(built.data, media_type="application/json", headers=headers)
