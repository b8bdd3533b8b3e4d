-- radledger SQLite schema, format 1.
-- The file is recognised by PRAGMA application_id (0x52444C47, "RDLG") and meta.format.
-- Ledger tables are append-only: triggers refuse UPDATE and DELETE, so the only way to alter
-- history is to bypass SQLite itself, which `radledger verify` detects.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Sequenced: an entry with its index is durable (the acknowledgement point).
-- kind is a copy of the entry's kind for queries; verify checks it against the entry bytes.
-- leaf_hash is UNIQUE: the same signed entry submitted twice is stored once.
CREATE TABLE entries (
    idx       INTEGER PRIMARY KEY CHECK (idx >= 0),
    kind      TEXT NOT NULL,
    leaf_hash BLOB NOT NULL UNIQUE CHECK (length(leaf_hash) = 32),
    data      BLOB NOT NULL
) STRICT;
-- Key entries are read on every open to build the key ring; a partial index keeps that cheap.
CREATE INDEX entries_key_kinds ON entries (idx) WHERE kind IN ('key.registered', 'key.revoked');

-- Integrated: every perfect subtree of the RFC 6962 tree, level 0 being the leaves.
-- node (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE nodes (
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- Sealed: a block covers entries [first_index, tree_size); header is its canonical JSON.
CREATE TABLE blocks (
    height        INTEGER PRIMARY KEY CHECK (height >= 0),
    previous_hash BLOB NOT NULL,
    first_index   INTEGER NOT NULL,
    tree_size     INTEGER NOT NULL UNIQUE,
    root_hash     BLOB NOT NULL,
    sealed_time   INTEGER NOT NULL,
    block_hash    BLOB NOT NULL UNIQUE
) STRICT;

-- One signed checkpoint (C2SP signed note) per block; never two for one tree size.
CREATE TABLE checkpoints (
    tree_size INTEGER PRIMARY KEY,
    height    INTEGER NOT NULL UNIQUE REFERENCES blocks (height),
    note      TEXT NOT NULL
) STRICT;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'radledger: entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'radledger: entries are append-only'); END;
CREATE TRIGGER nodes_no_update BEFORE UPDATE ON nodes
BEGIN SELECT RAISE(ABORT, 'radledger: tree nodes are append-only'); END;
CREATE TRIGGER nodes_no_delete BEFORE DELETE ON nodes
BEGIN SELECT RAISE(ABORT, 'radledger: tree nodes are append-only'); END;
CREATE TRIGGER blocks_no_update BEFORE UPDATE ON blocks
BEGIN SELECT RAISE(ABORT, 'radledger: blocks are append-only'); END;
CREATE TRIGGER blocks_no_delete BEFORE DELETE ON blocks
BEGIN SELECT RAISE(ABORT, 'radledger: blocks are append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'radledger: checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'radledger: checkpoints are append-only'); END;

-- Witnessed (DESIGN section 2, state 4): evidence gathered from witnesses, added after format 1.
-- Statements written IF NOT EXISTS are also run by SQLiteStore.open, so ledgers created
-- before them gain them; they must stay idempotent.
-- One row per witness and tree size: the witness's cosignature line as received, its
-- timestamp, and the ledger-signed checkpoint it cosigned (kept whole: if the ledger is
-- later rewritten, the line still verifies against the checkpoint it was made for).
-- witness is the witness's verifier key (C2SP vkey, type 0x04): trust is keyed by the pinned
-- key, never by a name a witness sends.
CREATE TABLE IF NOT EXISTS cosignatures (
    tree_size  INTEGER NOT NULL CHECK (tree_size > 0),
    witness    TEXT NOT NULL,
    line       TEXT NOT NULL,
    time       INTEGER NOT NULL,
    checkpoint TEXT NOT NULL,
    PRIMARY KEY (witness, tree_size)
) STRICT;

-- Refusals by a witness (a 4xx other than a plain stale-size 409 that a retry resolved): the
-- add-checkpoint request sent (old size, consistency proof, signed checkpoint), the answer,
-- and the checkpoint this ledger held as cosigned by that witness at the old size, if any.
-- A rewritten or forked ledger leaves both signed checkpoints and the failed proof here.
CREATE TABLE IF NOT EXISTS witness_refusals (
    id        INTEGER PRIMARY KEY,
    time      INTEGER NOT NULL,
    witness   TEXT NOT NULL,
    status    INTEGER NOT NULL,
    old_size  INTEGER NOT NULL,
    tree_size INTEGER NOT NULL,
    request   TEXT NOT NULL,
    response  TEXT NOT NULL,
    held      TEXT
) STRICT;

CREATE TRIGGER IF NOT EXISTS cosignatures_no_update BEFORE UPDATE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'radledger: cosignatures are append-only'); END;
CREATE TRIGGER IF NOT EXISTS cosignatures_no_delete BEFORE DELETE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'radledger: cosignatures are append-only'); END;
CREATE TRIGGER IF NOT EXISTS witness_refusals_no_update BEFORE UPDATE ON witness_refusals
BEGIN SELECT RAISE(ABORT, 'radledger: witness refusals are append-only'); END;
CREATE TRIGGER IF NOT EXISTS witness_refusals_no_delete BEFORE DELETE ON witness_refusals
BEGIN SELECT RAISE(ABORT, 'radledger: witness refusals are append-only'); END;
