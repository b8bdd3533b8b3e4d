"""The tree as C2SP tlog-tiles, built from stored nodes and entries (DESIGN section 8).

Stored nodes are the perfect subtrees of the RFC 6962 tree (level 0: leaf hashes), so the
hashes of tile ``N`` at tile level ``L`` are simply the stored nodes at tree level ``8L`` with
indices ``N*256 ..``: no hashing at read time. A resource is served only if the latest signed
checkpoint covers it; once served its bytes never change (a partial tile is a prefix of the
full one), which is what makes them cacheable.
"""

from __future__ import annotations

from radledger.core.tlog_tiles import (
    MAX_BUNDLE_ENTRY,
    TILE_HEIGHT,
    TileRef,
    entry_bundle,
    tile_path,
)
from radledger.errors import EntryTooLargeForBundle, InputError, NotFound, StorageCorrupt
from radledger.ledger.proofs import sealed_size
from radledger.storage.base import LedgerStore


def _available(ref: TileRef, size: int) -> None:
    """Raise NotFound unless the tree of ``size`` holds every node (entry) of ``ref``."""
    shift = TILE_HEIGHT * (ref.level or 0)
    nodes_at_level = size >> shift
    if ref.first + ref.count > nodes_at_level:
        raise NotFound(f"tile {tile_path(ref)} is not in the tree of size {size}")


def read_tile(store: LedgerStore, ref: TileRef) -> bytes:
    """The concatenated hashes of a Merkle tile (``ref.level`` not None).

    Raises NotFound if the latest checkpoint does not cover it, StorageCorrupt if a node it
    needs is missing.
    """
    if ref.level is None:
        raise InputError("an entry bundle is not a Merkle tile")
    with store.snapshot():
        _available(ref, sealed_size(store))
        rows = store.nodes(TILE_HEIGHT * ref.level, ref.first, ref.first + ref.count)
    if len(rows) != ref.count:
        raise StorageCorrupt(f"tile {tile_path(ref)}: {ref.count - len(rows)} stored tree "
                             "node(s) missing")
    return b"".join(digest for _, digest in rows)


def read_entry_bundle(store: LedgerStore, ref: TileRef) -> bytes:
    """The entry bundle behind level-0 tile ``ref.index`` (``ref.level`` None).

    Raises NotFound if the latest checkpoint does not cover it, EntryTooLargeForBundle for an
    entry the uint16 prefix cannot hold.
    """
    with store.snapshot():
        _available(ref, sealed_size(store))
        rows = store.entries(ref.first, ref.first + ref.count)
    if len(rows) != ref.count:
        raise StorageCorrupt(f"entry bundle {tile_path(ref)}: {ref.count - len(rows)} "
                             "entries missing")
    for index, _, _, data in rows:
        if len(data) > MAX_BUNDLE_ENTRY:
            raise EntryTooLargeForBundle(
                f"entry {index} is {len(data)} bytes; tlog-tiles entry bundles hold entries "
                f"of at most {MAX_BUNDLE_ENTRY} bytes (read it at /entries/{index})")
    return entry_bundle([data for _, _, _, data in rows])
