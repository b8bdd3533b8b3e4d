"""Who is using the web UI: a session cookie holding the bearer token, roles, and CSRF.

Logging in is pasting an API token (``radledger token create``); it is checked like a bearer
token and kept in an HttpOnly, SameSite=Strict cookie (Secure when the page came over
https), so page scripts never see it and other sites' pages never send it. Every request
checks it again, so a revoked token is logged out at its next click.

Form POSTs are protected twice against cross-site request forgery: the request's Origin (or,
without one, its Referer) must be this site, and the form must carry the session's CSRF
token, an HMAC of the bearer token under a secret of this process. What a role may do is
``ledger.tokens.GRANTS``, as for the API; ``Needs(...)`` checks it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import cast

from fastapi import Request
from starlette.responses import Response

from radledger.api.auth import context
from radledger.errors import PermissionDenied, TokenRejected
from radledger.ledger.tokens import Permission, TokenHolder

COOKIE = "radledger_session"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 12 * 3600


class LoginRequired(TokenRejected):
    """No session, or its token is no longer valid: the browser is sent to the login page."""


class CrossSiteRequest(PermissionDenied):
    """A form POST from another site, or without this session's CSRF token (HTTP 403)."""


@dataclass(frozen=True)
class WebSecrets:
    """Per-process secret the CSRF tokens are derived from (sessions outlive a restart:
    their forms do not)."""

    csrf_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))


@dataclass(frozen=True)
class WebUser:
    """The holder of the session's token, with the CSRF token its forms carry."""

    holder: TokenHolder
    csrf: str

    @property
    def name(self) -> str:
        """The token's name (what access.recorded entries name)."""
        return self.holder.name

    def may(self, permission: Permission) -> bool:
        """Whether the role grants ``permission``."""
        return self.holder.may(permission)


def web_secrets(request: Request) -> WebSecrets:
    """The secrets ``install_web`` put on the app."""
    return cast(WebSecrets, request.app.state.radledger_web)


def csrf_for(key: bytes, token: str) -> str:
    """The CSRF token of the session holding ``token``."""
    return hmac.new(key, b"radledger/csrf/v1\0" + token.encode("utf-8"),
                    hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """True if the request's Origin, or without one its Referer, is this site."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("referer")
    return referer is not None and (referer == own or referer.startswith(own + "/"))


def check_origin(request: Request) -> None:
    """Raise CrossSiteRequest unless the POST comes from a page of this site."""
    if not same_origin(request):
        raise CrossSiteRequest("this form must be sent from a page of this site (the "
                               "request's Origin or Referer is another site, or missing)")


def session_user(request: Request) -> WebUser | None:
    """The session's user, or None when there is no valid session (never raises for that)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        holder = context(request).authenticate(token)
    except TokenRejected:
        return None
    return WebUser(holder, csrf_for(web_secrets(request).csrf_key, token))


class Needs:
    """Dependency: the session's user, whose role grants one of ``permissions``; for a POST
    also a same-site request carrying the session's CSRF token.

    Raises LoginRequired without a valid session, PermissionDenied for a role without the
    permission, CrossSiteRequest for a forged POST, RateLimited for a flood.
    """

    def __init__(self, *permissions: Permission) -> None:
        self.permissions = permissions

    async def __call__(self, request: Request) -> WebUser:
        user = session_user(request)
        if user is None:
            raise LoginRequired("log in with a token to see this page")
        if not any(user.may(p) for p in self.permissions):
            wanted = " or ".join(p.value for p in self.permissions)
            raise PermissionDenied(f"token {user.name!r} (role {user.holder.role}) may not "
                                   f"{wanted}")
        context(request).limits.take(user.name)
        if request.method == "POST":
            check_origin(request)
            sent = (await request.form()).get(CSRF_FIELD)
            if not isinstance(sent, str) or not hmac.compare_digest(sent, user.csrf):
                raise CrossSiteRequest("the form's CSRF token is missing or stale; reload the "
                                       "page and send it again")
        return user


def set_session(response: Response, request: Request, token: str) -> None:
    """Keep ``token`` in the session cookie."""
    response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def end_session(response: Response, request: Request) -> None:
    """Forget the session cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
