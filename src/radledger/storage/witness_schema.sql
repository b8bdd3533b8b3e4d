-- radledger witness SQLite schema, format 1 (the witness home's witness.sqlite3).
-- The file is recognised by PRAGMA application_id (0x52444C57, "RDLW") and meta.format.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Every checkpoint this witness cosigned, per log origin; the latest is the largest size.
-- The primary key is the promise of tlog-witness: never two roots for one size of one log.
-- checkpoint is the signed note as received (the log's signature included): evidence.
CREATE TABLE cosigned (
    origin     TEXT NOT NULL,
    tree_size  INTEGER NOT NULL CHECK (tree_size >= 0),
    root_hash  BLOB NOT NULL CHECK (length(root_hash) = 32),
    time       INTEGER NOT NULL,
    checkpoint TEXT NOT NULL,
    PRIMARY KEY (origin, tree_size)
) STRICT;

-- Requests with a valid log signature that were refused (fork, rollback, bad proof): the
-- request body is kept whole, as it may prove the log misbehaved (tlog-witness allows this).
CREATE TABLE refused (
    id      INTEGER PRIMARY KEY,
    origin  TEXT NOT NULL,
    time    INTEGER NOT NULL,
    status  INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    request TEXT NOT NULL
) STRICT;

CREATE TRIGGER cosigned_no_update BEFORE UPDATE ON cosigned
BEGIN SELECT RAISE(ABORT, 'radledger witness: cosigned checkpoints are append-only'); END;
CREATE TRIGGER cosigned_no_delete BEFORE DELETE ON cosigned
BEGIN SELECT RAISE(ABORT, 'radledger witness: cosigned checkpoints are append-only'); END;
