-- radledger API bearer tokens (tokens.sqlite3 in the ledger home), format 1. Every statement
-- is idempotent: the schema is applied on each open.
-- Recognised by PRAGMA application_id (0x52444C54, "RDLT"). Only the SHA-256 of a token is
-- kept: the token itself is printed once, when it is created, and cannot be recovered from
-- this file. Revoking sets revoked_at; rows are never deleted, so the history of who held
-- which role stays (access.recorded entries name tokens by name).

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    token_sha256 BLOB NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at   INTEGER NOT NULL,            -- Unix seconds
    revoked_at   INTEGER                      -- Unix seconds; NULL while in force
) STRICT;
-- a name is held by at most one token in force; a revoked name may be given out again
CREATE UNIQUE INDEX IF NOT EXISTS tokens_name_in_force ON tokens (name)
    WHERE revoked_at IS NULL;
