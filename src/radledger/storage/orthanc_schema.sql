-- radledger Orthanc follower state (orthanc.sqlite3 in the ledger home), format 1. Every
-- statement is idempotent: the schema is applied on each open.
-- Recognised by PRAGMA application_id (0x52444C4F, "RDLO"). Not evidence: nothing here is
-- signed or exported. Losing this file loses no evidence either: the follower then reads
-- Orthanc's change log from the start again, and every instance it fetches is found
-- registered already (by its file_sha256), so nothing is appended twice.

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Per followed server (its URL without credentials): the Seq of the last change of
-- Orthanc's /changes log whose effects are durable in the ledger. Written only after the
-- registrations and study events of a page of changes are committed, so a crash between
-- the two replays that page (idempotently) and never skips a change.
CREATE TABLE IF NOT EXISTS cursors (
    server  TEXT PRIMARY KEY,
    seq     INTEGER NOT NULL CHECK (seq >= 0),
    updated INTEGER NOT NULL
) STRICT;
