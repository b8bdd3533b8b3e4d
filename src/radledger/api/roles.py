"""Dependencies for routes more than one permission opens (``RequiresAny``), and the
holders the data, audit and bundle routes ask for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from radledger.api.auth import Context, Credentials, Requires
from radledger.errors import PermissionDenied
from radledger.ledger.tokens import Permission, TokenHolder


class RequiresAny:
    """Dependency: the token holder, whose role must grant one of ``permissions``."""

    def __init__(self, *permissions: Permission) -> None:
        self.permissions = permissions

    async def __call__(self, ctx: Context, credentials: Credentials) -> TokenHolder:
        # async: a token lookup is a short indexed read, cheaper than a worker thread hop
        holder = ctx.authenticate(credentials.credentials if credentials else None)
        if not any(holder.may(p) for p in self.permissions):
            raise PermissionDenied(f"token {holder.name!r} (role {holder.role}) may not "
                                   + " or ".join(p.value for p in self.permissions))
        ctx.limits.take(holder.name)  # 429 before any work is done for a flooding token
        return holder


Auditor = Annotated[TokenHolder, Depends(Requires(Permission.AUDIT))]
# a release's reviewer bundle: the reviewer role may have it, and nothing else
BundleReader = Annotated[TokenHolder, Depends(RequiresAny(Permission.REVIEW, Permission.AUDIT))]
# the report on an uploaded bundle holds no ledger data
BundleChecker = Annotated[TokenHolder, Depends(RequiresAny(Permission.READ, Permission.REVIEW))]
