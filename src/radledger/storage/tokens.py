"""The API token store: ``tokens.sqlite3`` in the ledger home.

Tokens are not ledger entries (a token is a credential, revoked and reissued at will) and not
in the side store (which is about patients); they get a small file of their own, schema
``tokens_schema.sql``. Only SHA-256 digests of tokens are stored.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from radledger.errors import InputError
from radledger.storage.sqlite import WalDatabase, _translated

TOKENS_APPLICATION_ID = 0x52444C54  # "RDLT"
_COLUMNS = "name, role, created_at, revoked_at"


@dataclass(frozen=True)
class TokenRow:
    """One token as stored: never the token itself."""

    name: str
    role: str
    created_at: int
    revoked_at: int | None


class TokenStorage(Protocol):
    """What token services need: ``TokenStore`` here, ``PostgresTokenStore`` for a
    PostgreSQL ledger (storage/postgres_tokens.py)."""

    def close(self) -> None: ...
    def write(self) -> AbstractContextManager[object]: ...
    def add(self, name: str, role: str, digest: bytes, now: int) -> None: ...
    def revoke(self, name: str, now: int) -> bool: ...
    def find(self, digest: bytes) -> TokenRow | None: ...
    def all(self) -> list[TokenRow]: ...


class TokenStore(WalDatabase):
    """The bearer tokens of one ledger's API."""

    @classmethod
    def open_or_create(cls, path: Path, ledger_id: str) -> TokenStore:
        """Open the store at ``path``, creating it if absent.

        Raises UnrecognisedDatabase if the file is something else or another ledger's.
        """
        return cls.open_home_file(path, TOKENS_APPLICATION_ID, "tokens_schema.sql",
                                  ledger_id, "tokens")

    def add(self, name: str, role: str, digest: bytes, now: int) -> None:
        """Store a new token's digest. Raises InputError if ``name`` is held by a token in
        force. Requires an open write transaction."""
        with _translated("storing a token"):
            try:
                self._conn.execute(
                    "INSERT INTO tokens (name, role, token_sha256, created_at) "
                    "VALUES (?, ?, ?, ?)", (name, role, digest, now))
            except sqlite3.IntegrityError:
                raise InputError(f"a token named {name!r} is in force; revoke it first, or "
                                 "choose another name") from None

    def revoke(self, name: str, now: int) -> bool:
        """Revoke the token in force named ``name``; False if there is none. Requires an
        open write transaction."""
        with _translated("revoking a token"):
            cursor = self._conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (now, name))
        return cursor.rowcount > 0

    def find(self, digest: bytes) -> TokenRow | None:
        """The token whose SHA-256 is ``digest`` (revoked or not), or None."""
        with _translated("looking up a token"):
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM tokens WHERE token_sha256 = ?", (digest,)).fetchone()
        return TokenRow(*row) if row else None

    def all(self) -> list[TokenRow]:
        """Every token ever created, oldest first."""
        with _translated("listing tokens"):
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM tokens ORDER BY id").fetchall()
        return [TokenRow(*row) for row in rows]

