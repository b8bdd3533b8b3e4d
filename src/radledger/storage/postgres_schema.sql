-- radledger PostgreSQL schema, format 1: the same ledger as sqlite_schema.sql, in native
-- PostgreSQL. Everything lives in the schema "radledger" of the database named in the ledger
-- home's config, so the database may hold other things.
--
-- Sequencing (DESIGN section 2): every append transaction first locks the one sequencer row
-- (SELECT ... FOR UPDATE), so appends from any number of processes on any hosts are applied
-- one after another; the UNIQUE constraints on entry index, leaf hash, block height, tree
-- size and block hash refuse a duplicate even if a writer ever skipped the lock. Correctness
-- never rests on the isolation level alone.

CREATE SCHEMA radledger;
SET LOCAL search_path = radledger;

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- The one row every writer locks first.
CREATE TABLE sequencer (
    id boolean PRIMARY KEY DEFAULT true CHECK (id)
);
INSERT INTO sequencer (id) VALUES (true);

-- Sequenced: an entry with its index is durable (the acknowledgement point).
CREATE TABLE entries (
    idx       bigint PRIMARY KEY CHECK (idx >= 0),
    kind      text NOT NULL,
    leaf_hash bytea NOT NULL UNIQUE CHECK (octet_length(leaf_hash) = 32),
    data      bytea NOT NULL
);
CREATE INDEX entries_key_kinds ON entries (idx) WHERE kind IN ('key.registered', 'key.revoked');

-- Integrated: every perfect subtree of the RFC 6962 tree, level 0 being the leaves.
CREATE TABLE nodes (
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   bigint NOT NULL CHECK (idx >= 0),
    hash  bytea NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Sealed: a block covers entries [first_index, tree_size).
CREATE TABLE blocks (
    height        bigint PRIMARY KEY CHECK (height >= 0),
    previous_hash bytea NOT NULL,
    first_index   bigint NOT NULL,
    tree_size     bigint NOT NULL UNIQUE,
    root_hash     bytea NOT NULL,
    sealed_time   bigint NOT NULL,
    block_hash    bytea NOT NULL UNIQUE
);

CREATE TABLE checkpoints (
    tree_size bigint PRIMARY KEY,
    height    bigint NOT NULL UNIQUE REFERENCES blocks (height),
    note      text NOT NULL
);

-- Witness evidence (see sqlite_schema.sql for what each column holds).
CREATE TABLE cosignatures (
    tree_size  bigint NOT NULL CHECK (tree_size > 0),
    witness    text NOT NULL,
    line       text NOT NULL,
    time       bigint NOT NULL,
    checkpoint text NOT NULL,
    PRIMARY KEY (witness, tree_size)
);
CREATE TABLE witness_refusals (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time      bigint NOT NULL,
    witness   text NOT NULL,
    status    integer NOT NULL,
    old_size  bigint NOT NULL,
    tree_size bigint NOT NULL,
    request   text NOT NULL,
    response  text NOT NULL,
    held      text
);

-- Append-only: UPDATE, DELETE and TRUNCATE of evidence raise. Only a superuser disabling
-- the triggers can alter history, which `radledger verify` then detects.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'radledger: % is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER nodes_append_only BEFORE UPDATE OR DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER nodes_no_truncate BEFORE TRUNCATE ON nodes
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER blocks_append_only BEFORE UPDATE OR DELETE ON blocks
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER blocks_no_truncate BEFORE TRUNCATE ON blocks
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER cosignatures_append_only BEFORE UPDATE OR DELETE ON cosignatures
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER witness_refusals_append_only BEFORE UPDATE OR DELETE ON witness_refusals
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The side store (side_schema.sql's tables, prefixed side_): local bookkeeping, not evidence;
-- every row may be deleted (erasure) or rebuilt. Shared by every process using this ledger.
CREATE TABLE side_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO side_meta (key, value) VALUES ('indexed_to', '0');
CREATE TABLE side_lookup (
    key bytea NOT NULL,
    idx bigint NOT NULL,
    PRIMARY KEY (key, idx)
);
CREATE TABLE side_files (
    path text PRIMARY KEY,
    idx  bigint NOT NULL
);
CREATE INDEX side_files_idx ON side_files (idx);
CREATE TABLE side_openings (
    commitment text PRIMARY KEY,
    salt       bytea NOT NULL CHECK (octet_length(salt) = 32),
    value      bytea,
    patient    text
);
CREATE INDEX side_openings_patient ON side_openings (patient) WHERE patient IS NOT NULL;

-- API bearer tokens (tokens_schema.sql's table): in a PostgreSQL ledger they live here, so
-- every `radledger serve` process on every host accepts the same tokens and sees a
-- revocation at once. Only SHA-256 digests; rows are never deleted.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL,
    token_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    created_at   bigint NOT NULL,
    revoked_at   bigint
);
CREATE UNIQUE INDEX api_tokens_name_in_force ON api_tokens (name) WHERE revoked_at IS NULL;
