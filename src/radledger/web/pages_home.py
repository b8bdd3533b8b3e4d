"""Logging in and out, the dashboard, and running a full verification from it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from radledger.api.auth import Context
from radledger.api.services import services
from radledger.errors import StorageBusy, TokenRejected
from radledger.ledger.audit import run_verification
from radledger.ledger.tokens import Permission
from radledger.web.render import PREFIX, WebRoute, page, redirect
from radledger.web.session import (
    Needs,
    WebUser,
    check_origin,
    end_session,
    session_user,
    set_session,
)
from radledger.web.status import dashboard

router = APIRouter(route_class=WebRoute, include_in_schema=False)
Reader = Annotated[WebUser, Depends(Needs(Permission.READ))]
Auditor = Annotated[WebUser, Depends(Needs(Permission.AUDIT))]
Anyone = Annotated[WebUser, Depends(Needs(*Permission))]


def landing(user: WebUser) -> str:
    """Where a role starts: reviewers have only the reviewer page."""
    return f"{PREFIX}/" if user.may(Permission.READ) else f"{PREFIX}/reviewer"


def _safe_next(target: str | None) -> str | None:
    """A path of this UI only (never another site: no scheme, no ``//``, no backslash)."""
    if target and target.startswith(f"{PREFIX}/") and "//" not in target \
            and "\\" not in target and target.isprintable():
        return target
    return None


@router.get("/")
def root() -> RedirectResponse:
    """The web UI lives under /ui/."""
    return redirect(f"{PREFIX}/")


@router.get(f"{PREFIX}/login")
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002
    """The login page (a valid session goes straight on)."""
    user = session_user(request)
    if user is not None:
        return redirect(_safe_next(next) or landing(user))
    return page(request, None, "login.html", title="Log in", next=_safe_next(next) or "",
                error=None)


@router.post(f"{PREFIX}/login")
def login(request: Request, ctx: Context, token: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str, Form(max_length=2000)] = "") -> Response:  # noqa: A002
    """Check the pasted token and keep it in the session cookie."""
    check_origin(request)
    try:
        holder = ctx.authenticate(token.strip())
    except TokenRejected:
        return page(request, None, "login.html", title="Log in", status=401,
                    next=_safe_next(next) or "",
                    error="That token is not valid: it is unknown or was revoked.")
    user = WebUser(holder, "")
    response = redirect(_safe_next(next) or landing(user))
    set_session(response, request, token.strip())
    return response


@router.post(f"{PREFIX}/logout")
def logout(request: Request, _: Anyone) -> Response:
    """End the session."""
    response = redirect(f"{PREFIX}/login")
    end_session(response, request)
    return response


@router.get(f"{PREFIX}/")
def home_page(request: Request, ctx: Context, user: Reader) -> HTMLResponse:
    """The dashboard."""
    with ctx.reads.store() as store:
        board = dashboard(ctx.home, store)
    return page(request, user, "dashboard.html", title="Dashboard", board=board,
                origin=ctx.home.origin, ran=request.query_params.get("ran"))


@router.post(f"{PREFIX}/verify")
async def verify(request: Request, ctx: Context, user: Auditor) -> Response:
    """Run a full verification now (AUDIT), record it, and show it on the dashboard."""
    svc = services(request)

    def run() -> bool:
        if not svc.verifying.acquire(blocking=False):
            raise StorageBusy("a full verification is running already; its result will be "
                              "on the dashboard")
        try:
            with ctx.reads.store() as store:
                report, _ = run_verification(store, ctx.home, user.name,
                                             workers=svc.options.verify_workers)
        finally:
            svc.verifying.release()
        return report.ok

    ok = await run_in_threadpool(run)
    return redirect(f"{PREFIX}/?ran={'ok' if ok else 'failed'}#verification")
