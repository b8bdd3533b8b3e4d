"""Rendering pages: the Jinja2 environment, the page shell, and errors as HTML pages.

Templates are autoescaped; nothing user-supplied is ever marked safe. Every page is sent
with a strict Content-Security-Policy (scripts, styles and images from this site only, no
inline scripts, no framing) and ``Cache-Control: no-store``. Errors raised by a web handler
are rendered as a page with the status the API would give (``api.errors.status_of``),
except a missing session, which sends the browser to the login page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from radledger.api.errors import status_of
from radledger.errors import RadledgerError
from radledger.ledger.tokens import Permission
from radledger.web.session import COOKIE, CSRF_FIELD, LoginRequired, WebUser, end_session

log = logging.getLogger("radledger.web")
PREFIX = "/ui"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_SHOWN_5XX = {501, 503, 507}

environment = jinja2.Environment(
    loader=jinja2.PackageLoader("radledger.web", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def utc(seconds: int) -> str:
    """Unix seconds as RFC 3339 UTC, for people."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


environment.filters["utc"] = utc


@dataclass(frozen=True)
class NavItem:
    """A link of the navigation bar, shown to roles with any of ``permissions``."""

    href: str
    label: str
    permissions: tuple[Permission, ...]


NAV = (
    NavItem(f"{PREFIX}/", "Dashboard", (Permission.READ,)),
    NavItem(f"{PREFIX}/studies", "Studies", (Permission.READ,)),
    NavItem(f"{PREFIX}/releases", "Releases", (Permission.READ,)),
    NavItem(f"{PREFIX}/reviewer", "Reviewer", (Permission.REVIEW, Permission.READ)),
    NavItem(f"{PREFIX}/consent", "Consent", (Permission.APPEND,)),
    NavItem(f"{PREFIX}/erasure", "Erasure", (Permission.ADMIN,)),
    NavItem(f"{PREFIX}/tokens", "Tokens", (Permission.ADMIN,)),
)


def nav_for(user: WebUser | None) -> list[NavItem]:
    """The links ``user``'s role may follow."""
    if user is None:
        return []
    return [item for item in NAV if any(user.may(p) for p in item.permissions)]


def page(request: Request, user: WebUser | None, template: str, *, title: str,
         status: int = 200, **values: Any) -> HTMLResponse:
    """Render ``template`` inside the page shell."""
    html = environment.get_template(template).render(
        request_path=request.url.path, user=user, nav=nav_for(user), title=title,
        csrf_field=CSRF_FIELD, prefix=PREFIX, Permission=Permission, **values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """See other (303): after a POST, or to the login page."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    from radledger.web.session import session_user  # noqa: PLC0415 - needs the app state

    user = session_user(request) if COOKIE in request.cookies else None
    return page(request, user, "error.html", title=f"Error {status}", status=status,
                status_code=status, message=message)


def error_response(request: Request, exc: Exception) -> Response:
    """The page for an error a web handler raised."""
    if isinstance(exc, LoginRequired):
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response: Response = redirect(f"{PREFIX}/login?next={quote(target, safe='')}")
        else:
            response = _error_page(request, 401, str(exc))
        if COOKIE in request.cookies:
            end_session(response, request)
        return response
    if isinstance(exc, RadledgerError):
        status, code = status_of(exc)
        if status >= 500 and status not in _SHOWN_5XX:  # noqa: PLR2004
            log.error("%s: %s", code, exc)
            return _error_page(request, status, "the server could not complete the request; "
                               "its log has the details")
        response = _error_page(request, status, str(exc))
        if status == 429:  # noqa: PLR2004
            response.headers["Retry-After"] = str(getattr(exc, "retry_after", 1))
        return response
    if isinstance(exc, RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}"
                    for e in exc.errors()[:5]]
        return _error_page(request, 422, "; ".join(problems) or "invalid request")
    if isinstance(exc, StarletteHTTPException):
        return _error_page(request, exc.status_code, str(exc.detail))
    log.exception("unexpected error in the web UI", exc_info=exc)
    return _error_page(request, 500, "the server could not complete the request; its log "
                       "has the details")


class WebRoute(APIRoute):
    """A route whose errors are pages, not the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def render_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a page
                return error_response(request, exc)

        return render_errors
