"""API bearer tokens: create (printed once), list, revoke, and check a presented token.

A token is ``rlt_`` + 43 URL-safe characters (32 random bytes); only its SHA-256 is stored,
in ``tokens.sqlite3`` in the ledger home. Each token has a name (recorded as
``on_behalf_of`` in ``access.recorded`` entries) and one role; what a role may do is the
``GRANTS`` table, the only place roles are interpreted.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from radledger.errors import InputError, PermissionDenied, TokenRejected
from radledger.ledger.home import LedgerHome
from radledger.storage.tokens import TokenRow, TokenStorage, TokenStore

TOKENS_FILE = "tokens.sqlite3"
TOKEN_PREFIX = "rlt_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Permission(StrEnum):
    """What a request may do."""

    READ = "read"              # entries, proofs, checkpoints, tiles
    READ_PHI = "read-phi"      # identified data (recorded as access.recorded)
    APPEND = "append"          # records
    AUDIT = "audit"            # verification runs, exports, access logs
    REVIEW = "review"          # a release's reviewer bundle only
    ADMIN = "admin"            # tokens and everything else


GRANTS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "writer": frozenset({Permission.READ, Permission.APPEND}),
    "reader": frozenset({Permission.READ}),
    "phi-reader": frozenset({Permission.READ, Permission.READ_PHI}),
    "auditor": frozenset({Permission.READ, Permission.AUDIT}),
    "reviewer": frozenset({Permission.REVIEW}),
}
ROLES = tuple(GRANTS)


@dataclass(frozen=True)
class TokenHolder:
    """Who presented a token in force: its name and role."""

    name: str
    role: str

    def may(self, permission: Permission) -> bool:
        """Whether this token's role grants ``permission``."""
        return permission in GRANTS[self.role]


def token_digest(token: str) -> bytes:
    """SHA-256 of the token's UTF-8 bytes: what is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def open_tokens(home: LedgerHome) -> TokenStorage:
    """The home's token store: ``tokens.sqlite3`` (created on first use), or for a
    PostgreSQL ledger its ``api_tokens`` table, shared by every process and host."""
    if home.database_url is not None:
        from radledger.storage.postgres_tokens import PostgresTokenStore  # noqa: PLC0415

        return PostgresTokenStore.connect(home.database_url, home.ledger_id)
    return TokenStore.open_or_create(home.path / TOKENS_FILE, home.ledger_id)


def create_token(store: TokenStorage, name: str, role: str,
                 clock: Callable[[], float] = time.time) -> str:
    """Create a token named ``name`` with ``role`` and return it (the only time it exists
    outside the caller's hands). Raises InputError for an unknown role, a malformed name or
    a name held by a token in force."""
    if role not in GRANTS:
        raise InputError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if not _NAME.match(name):
        raise InputError(f"token name {name!r:.80} must be 1-64 characters: letters, digits "
                         "and . _ @ - (not first)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.write():
        store.add(name, role, token_digest(token), int(clock()))
    return token


def revoke_token(store: TokenStorage, name: str, clock: Callable[[], float] = time.time) -> None:
    """Revoke the token in force named ``name``. Raises InputError if there is none."""
    with store.write():
        if not store.revoke(name, int(clock())):
            raise InputError(f"no token named {name!r} is in force")


def list_tokens(store: TokenStorage) -> list[TokenRow]:
    """Every token ever created (revoked ones too), oldest first."""
    return store.all()


def authenticate(store: TokenStorage, token: str | None) -> TokenHolder:
    """The holder of a presented bearer token. Raises TokenRejected if it is missing,
    unknown or revoked (the message does not say which of the last two)."""
    if not token:
        raise TokenRejected("a bearer token is required (Authorization: Bearer <token>)")
    row = store.find(token_digest(token))
    if row is None or row.revoked_at is not None:
        raise TokenRejected("the bearer token is not valid (unknown or revoked)")
    return TokenHolder(row.name, row.role)


def require(holder: TokenHolder, permission: Permission) -> None:
    """Raise PermissionDenied unless ``holder``'s role grants ``permission``."""
    if not holder.may(permission):
        raise PermissionDenied(f"token {holder.name!r} (role {holder.role}) may not "
                               f"{permission.value}")
