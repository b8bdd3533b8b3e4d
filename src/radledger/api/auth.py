"""Bearer-token authentication as FastAPI dependencies.

``Requires(permission)`` resolves the token in ``Authorization: Bearer <token>`` to its holder
and checks the role grants ``permission``: missing, unknown or revoked token is 401, a role
that does not grant it 403 (both raised as radledger errors, rendered by api.errors).
``LogReader`` is the same for the public read path, which needs no token when the log is
public.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from radledger.api.context import ApiContext
from radledger.ledger.tokens import Permission, TokenHolder, require

bearer = HTTPBearer(auto_error=False, description="A token from `radledger token create`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def context(request: Request) -> ApiContext:
    """The ApiContext the app's lifespan opened."""
    return cast(ApiContext, request.app.state.radledger)


async def _context(request: Request) -> ApiContext:
    # async dependencies run on the event loop; a sync one would cost a worker-thread hop
    # on every request (bench/README.md, "Where the time goes")
    return context(request)


Context = Annotated[ApiContext, Depends(_context)]


class Requires:
    """Dependency: the token holder, who must have ``permission``."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, ctx: Context, credentials: Credentials) -> TokenHolder:
        # on the event loop: a token lookup is one short indexed read
        return self.check(ctx, credentials)

    def check(self, ctx: ApiContext, credentials: HTTPAuthorizationCredentials | None
              ) -> TokenHolder:
        """The holder, or TokenRejected (401) / PermissionDenied (403) / RateLimited (429)."""
        holder = ctx.authenticate(credentials.credentials if credentials else None)
        require(holder, self.permission)
        ctx.limits.take(holder.name)  # 429 before any work is done for a flooding token
        return holder


async def log_reader(ctx: Context, credentials: Credentials) -> TokenHolder | None:
    """Dependency for the tlog-tiles read path: None when the log is public, else a holder
    with read permission."""
    if ctx.public_log:
        return None
    return Requires(Permission.READ).check(ctx, credentials)


Reader = Annotated[TokenHolder, Depends(Requires(Permission.READ))]
Writer = Annotated[TokenHolder, Depends(Requires(Permission.APPEND))]
LogReader = Annotated[TokenHolder | None, Depends(log_reader)]
