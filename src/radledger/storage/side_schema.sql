-- radledger side store (side.sqlite3 in the ledger home), format 1.
-- Recognised by PRAGMA application_id (0x52444C53, "RDLS"). Not evidence: nothing here is
-- signed or exported in bundles, and every row may be deleted (erasure) or rebuilt.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Derived from the ledger, rebuildable from it: which entries name which pseudonymous key,
-- file hash or referenced entry. key = one tag byte + the value (see ledger/lookup.py).
-- meta.indexed_to says how many ledger entries have been read.
CREATE TABLE lookup (
    key BLOB NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (key, idx)
) STRICT, WITHOUT ROWID;

-- Local only: where ingested files were found. Folder names often carry patient names, so
-- paths never enter the ledger (it holds a keyed pseudonym of each); this table lets
-- `verify --data` find files that went missing. idx is the entry of the path's latest version.
CREATE TABLE files (
    path TEXT PRIMARY KEY,
    idx  INTEGER NOT NULL
) STRICT;
