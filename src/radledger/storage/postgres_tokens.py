"""The API token store of a PostgreSQL ledger: the ``api_tokens`` table of
``postgres_schema.sql`` (see storage/tokens.py for what is kept and why)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from radledger.errors import InputError, StorageError, UnrecognisedDatabase
from radledger.storage.postgres import PgDatabase, PostgresStore
from radledger.storage.tokens import TokenRow

_COLUMNS = "name, role, created_at, revoked_at"


class PostgresTokenStore(PgDatabase):
    """Bearer tokens shared by every process serving one PostgreSQL ledger."""

    @classmethod
    def connect(cls, url: str, ledger_id: str) -> PostgresTokenStore:
        """The token table of the ledger in the database at ``url`` (a small pool of its
        own). Raises UnrecognisedDatabase if that database holds another ledger."""
        store = PostgresStore.open(url, max_size=2)
        try:
            if store.meta().get("ledger_id") != ledger_id:
                raise UnrecognisedDatabase(f"{store.path} holds another ledger")
        except BaseException:
            store.close()
            raise
        return cls(url, store._pool)  # noqa: SLF001 - takes over the pool

    @contextmanager
    def write(self) -> Iterator[Self]:
        """One write transaction."""
        with self._transaction("BEGIN", "starting a token write") as store:
            yield store

    def add(self, name: str, role: str, digest: bytes, now: int) -> None:
        """Store a new token's digest. Raises InputError if ``name`` is held by a token in
        force. Requires an open write transaction."""
        held = self._one("looking up a token name",
                         "SELECT 1 FROM api_tokens WHERE name = %s AND revoked_at IS NULL "
                         "FOR UPDATE", (name,))
        if held is not None:
            raise InputError(f"a token named {name!r} is in force; revoke it first, or "
                             "choose another name")
        try:
            self._one("storing a token",
                      "INSERT INTO api_tokens (name, role, token_sha256, created_at) "
                      "VALUES (%s, %s, %s, %s) RETURNING id", (name, role, digest, now))
        except StorageError as exc:
            if "UNIQUE" in str(exc):  # a concurrent create of the same name won
                raise InputError(f"a token named {name!r} is in force; revoke it first, or "
                                 "choose another name") from None
            raise

    def revoke(self, name: str, now: int) -> bool:
        """Revoke the token in force named ``name``; False if there is none."""
        return bool(self._all("revoking a token",
                              "UPDATE api_tokens SET revoked_at = %s WHERE name = %s AND "
                              "revoked_at IS NULL RETURNING 1", (now, name)))

    def find(self, digest: bytes) -> TokenRow | None:
        """The token whose SHA-256 is ``digest`` (revoked or not), or None."""
        row = self._one("looking up a token",
                        f"SELECT {_COLUMNS} FROM api_tokens WHERE token_sha256 = %s", (digest,))
        return TokenRow(str(row[0]), str(row[1]), int(row[2]),
                        None if row[3] is None else int(row[3])) if row else None

    def all(self) -> list[TokenRow]:
        """Every token ever created, oldest first."""
        return [TokenRow(str(r[0]), str(r[1]), int(r[2]), None if r[3] is None else int(r[3]))
                for r in self._all("listing tokens",
                                   f"SELECT {_COLUMNS} FROM api_tokens ORDER BY id")]
