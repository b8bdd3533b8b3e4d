-- radledger anchor receipts (anchors.sqlite3 in the ledger home), format 1. Every statement is
-- idempotent: the schema is applied on each open.
-- Recognised by PRAGMA application_id (0x52444C41, "RDLA"). Evidence kept outside the ledger:
-- each row points at a public chain event that anyone can re-check (radledger.ledger.anchor.
-- verify_anchor); bundles carry the rows. A lost row loses a pointer, not the anchor itself,
-- which stays on the chain. Not in the side store, which is erasable and never exported.

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per anchored checkpoint per contract: anchoring the same (origin, tree_size,
-- root_hash) again through the same contract returns this row instead of sending a
-- transaction. Field meanings: radledger/core/anchor.py.
CREATE TABLE IF NOT EXISTS anchors (
    chain_id     INTEGER NOT NULL CHECK (chain_id > 0),
    contract     TEXT NOT NULL,
    origin       TEXT NOT NULL,
    tree_size    INTEGER NOT NULL CHECK (tree_size >= 0),
    root_hash    TEXT NOT NULL CHECK (length(root_hash) = 64),
    tx_hash      TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash   TEXT NOT NULL,
    block_time   INTEGER NOT NULL,
    log_index    INTEGER NOT NULL,
    sender       TEXT NOT NULL,
    PRIMARY KEY (chain_id, contract, origin, tree_size, root_hash)
) STRICT;
CREATE INDEX IF NOT EXISTS anchors_by_size ON anchors (origin, tree_size);
