"""``radledger migrate --to postgresql://…``: copy an SQLite ledger to PostgreSQL and prove
the copy is the same ledger (issue 7).

Everything is copied as stored, byte for byte: entries, tree nodes, blocks, signed
checkpoints, witness cosignatures and refusals, and the side store's file paths and
commitment openings (its lookup index is rebuilt from the copied entries). Nothing is
re-signed. Then the copy is proven: every checkpoint note of the source is present and
identical in the copy, every block's stored hash and root agree, and a full verification of
the copy (every signature, leaf hash, tree node, block link and checkpoint) passes. Only then
is the ledger home switched to the copy; the SQLite file is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from radledger.core.note import Verifier
from radledger.errors import InputError, VerificationError
from radledger.ledger import lookup
from radledger.ledger.home import LedgerHome, write_config
from radledger.ledger.verify import verify_ledger
from radledger.storage.postgres import PostgresStore, redacted
from radledger.storage.side import SideStore
from radledger.storage.sqlite import SQLiteStore

CHUNK = 4096
MAX_LEVEL = 63

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class Migration:
    """What was copied and proven."""

    target: str  # the database URL without its password
    entries: int
    nodes: int
    blocks: int
    checkpoints: int
    cosignatures: int
    refusals: int
    files: int
    openings: int
    root_hash: str  # of the latest checkpoint, identical in source and copy

    def as_json(self) -> dict[str, object]:
        """The stable machine form of ``migrate --json``."""
        return dict(self.__dict__)


def migrate(home: LedgerHome, url: str, *, progress: Progress | None = None,
            switch: bool = True) -> Migration:
    """Copy the SQLite ledger of ``home`` into the (new) PostgreSQL database at ``url``,
    prove it, and (``switch``) point the home at it.

    Raises InputError if the home is not an SQLite ledger, StorageError if the target holds
    a ledger already, VerificationError (naming what differs) if the proof fails.
    """
    if home.database_url is not None:
        raise InputError(f"{home.path} already keeps its ledger in PostgreSQL")
    note = progress or (lambda _what, _n: None)
    source = SQLiteStore.open(home.database)
    try:
        target = PostgresStore.create(url, {"origin": home.origin, "ledger_id": home.ledger_id})
        try:
            try:
                counts = _copy(source, target, home, note)
            except BaseException:
                target.drop_empty()  # the copy rolled back; leave the database as it was
                raise
            root = _prove(source, target, home.ledger_verifier)
        finally:
            target.close()
    finally:
        source.close()
    migration = Migration(redacted(url), *counts, root_hash=root)
    if switch:
        write_config(LedgerHome(home.path, home.origin, home.ledger_id, home.database,
                                home.ledger_signer, home.actor_signer, home.project_key,
                                url))
    return migration


def _copy(source: SQLiteStore, target: PostgresStore, home: LedgerHome, note: Progress
          ) -> tuple[int, int, int, int, int, int, int, int]:
    with source.snapshot(), target.write():
        size = source.entry_count()
        for start in range(0, size, CHUNK):
            target.insert_entries(source.entries(start, start + CHUNK))
            note("entries", min(size, start + CHUNK))
        nodes = 0
        for level in range(MAX_LEVEL + 1):
            width = size >> level
            if width == 0:
                break
            for start in range(0, width, CHUNK):
                rows = source.nodes(level, start, start + CHUNK)
                target.insert_nodes([(level, idx, h) for idx, h in rows])
                nodes += len(rows)
        note("tree nodes", nodes)
        notes = {s: n for _, s, n in source.checkpoints(0, 1 << 62)}
        blocks = source.blocks(0, 1 << 62)
        for header, stored_hash in blocks:
            if header.block_hash() != stored_hash:
                raise VerificationError(
                    "the source's stored block hash is not the hash of its header; run "
                    "`radledger verify` before migrating", block=header.height,
                    expected=stored_hash, computed=header.block_hash())
            target.insert_block(header, notes[header.tree_size])
        note("blocks", len(blocks))
        cosigs = source.cosignatures()
        for row in cosigs:
            target.insert_cosignature(row)
        refusals = source.refusals()
        for refusal in refusals:
            target.insert_refusal(refusal)
        files, openings = _copy_side(home, target)  # in the same transaction
        note("side store", files + openings)
    return size, nodes, len(blocks), len(notes), len(cosigs), len(refusals), files, openings


def _copy_side(home: LedgerHome, target: PostgresStore) -> tuple[int, int]:
    if not home.side_database.exists():
        return 0, 0
    side = SideStore.open_or_create(home.side_database, home.ledger_id)
    try:
        files, openings = side.dump()
    finally:
        side.close()
    copy = target.side(same_transaction=True)  # shares the open write transaction of ``target``
    copy.set_files(files)
    for commitment, salt, value, patient in openings:
        copy.add_opening(commitment, salt, value, patient)
    lookup.catch_up(target, copy)
    return len(files), len(openings)


def _prove(source: SQLiteStore, target: PostgresStore, pinned: Verifier) -> str:
    """The copy holds the same signed checkpoints and block roots, and verifies in full."""
    with source.snapshot(), target.snapshot():
        if target.entry_count() != source.entry_count():
            raise VerificationError("the copy has a different number of entries",
                                    expected=source.entry_count(),
                                    computed=target.entry_count())
        mine = source.checkpoints(0, 1 << 62)
        theirs = {s: n for _, s, n in target.checkpoints(0, 1 << 62)}
        for height, size, text in mine:
            if theirs.get(size) != text:
                raise VerificationError(f"the copy's checkpoint for tree size {size} "
                                        "differs", block=height, expected=text,
                                        computed=theirs.get(size))
        roots = {h.tree_size: h.root_hash for h, _ in target.blocks(0, 1 << 62)}
        for header, _ in source.blocks(0, 1 << 62):
            if roots.get(header.tree_size) != header.root_hash:
                raise VerificationError("the copy's root differs", block=header.height,
                                        expected=header.root_hash,
                                        computed=roots.get(header.tree_size))
    report = verify_ledger(target, pinned)
    if not report.ok:
        first = report.problems[0]
        raise VerificationError(f"the copy does not verify: {first.what}", index=first.index,
                                block=first.block, expected=first.expected,
                                computed=first.computed)
    latest = target.latest_block()
    return latest[0].root_hash.hex() if latest else ""
