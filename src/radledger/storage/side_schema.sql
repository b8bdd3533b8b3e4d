-- radledger side store (side.sqlite3 in the ledger home), format 1. Every statement is
-- idempotent: the schema is applied on each open, so a side store made by an earlier
-- radledger gains the tables added since.
-- Recognised by PRAGMA application_id (0x52444C53, "RDLS"). Not evidence: nothing here is
-- signed or exported in bundles, and every row may be deleted (erasure) or rebuilt.

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
-- how many ledger entries the lookup index covers (see ledger/lookup.py)
INSERT OR IGNORE INTO meta (key, value) VALUES ('indexed_to', '0');

-- Derived from the ledger, rebuildable from it: which entries name which pseudonymous key,
-- file hash or referenced entry. key = one tag byte + the value (see ledger/lookup.py).
-- meta.indexed_to says how many ledger entries have been read.
CREATE TABLE IF NOT EXISTS lookup (
    key BLOB NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (key, idx)
) STRICT, WITHOUT ROWID;

-- Local only: where ingested files were found. Folder names often carry patient names, so
-- paths never enter the ledger (it holds a keyed pseudonym of each); this table lets
-- `verify --data` find files that went missing. idx is the entry of the path's latest version.
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    idx  INTEGER NOT NULL
) STRICT;

-- Openings of commitments (DESIGN section 1): commitment = SHA-256(salt || value), hex. The
-- salt (and, for notes, the value) live only here; erasure deletes the row (secure_delete
-- overwrites it), after which the ledger's commitment can never be opened again.
-- patient: the patient pseudonym the committed value is about, if any (what erasure finds).
CREATE TABLE IF NOT EXISTS openings (
    commitment TEXT PRIMARY KEY,
    salt       BLOB NOT NULL CHECK (length(salt) = 32),
    value      BLOB,
    patient    TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS openings_patient ON openings (patient) WHERE patient IS NOT NULL;
