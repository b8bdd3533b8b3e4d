"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles): tile paths and entry bundles.

A tile at tile level ``L`` is up to 256 consecutive RFC 6962 node hashes at tree level ``8L``
(level 0: leaf hashes); tile ``N`` holds nodes ``N*256 .. N*256+W-1``. A full tile has 256
hashes; the rightmost tiles of a tree are partial (``.p/<W>``, 1 <= W <= 255). Entry bundles
are the entries behind a level-0 tile, each prefixed by its length as a big-endian uint16.

Pure: no I/O. Paths are parsed strictly (only the canonical spelling of each number), so one
resource has one URL and caches never hold two copies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from radledger.errors import InputError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes, 8,192 bytes
MAX_TILE_LEVEL = 63
MAX_BUNDLE_ENTRY = 0xFFFF  # the uint16 length prefix
_LEVEL = re.compile(r"^(0|[1-9][0-9]?)$")
_WIDTH = re.compile(r"^[1-9][0-9]{0,2}$")
_GROUP = re.compile(r"^[0-9]{3}$")

__all__ = ["MAX_BUNDLE_ENTRY", "TILE_HEIGHT", "TILE_WIDTH", "TileRef", "entry_bundle",
           "format_tile_index", "parse_tile_path", "tile_path"]


@dataclass(frozen=True)
class TileRef:
    """One tile resource: ``level`` None for an entry bundle; ``width`` None for a full tile."""

    level: int | None
    index: int
    width: int | None

    @property
    def count(self) -> int:
        """How many hashes (or entries) the resource holds."""
        return TILE_WIDTH if self.width is None else self.width

    @property
    def first(self) -> int:
        """Index of its first node at tree level ``8 * level`` (or of its first entry)."""
        return self.index * TILE_WIDTH


def format_tile_index(index: int) -> str:
    """``N`` in 3-digit groups, every group but the last prefixed by ``x``: 1234067 is
    ``x001/x234/067``. Requires index >= 0."""
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def tile_path(ref: TileRef) -> str:
    """The path below ``<prefix>/tile/`` of a tile or bundle, e.g. ``0/x001/234.p/7``."""
    head = "entries" if ref.level is None else str(ref.level)
    tail = "" if ref.width is None else f".p/{ref.width}"
    return f"{head}/{format_tile_index(ref.index)}{tail}"


def parse_tile_path(path: str) -> TileRef:
    """Parse the path below ``<prefix>/tile/``: ``<L>/<N>[.p/<W>]`` or
    ``entries/<N>[.p/<W>]``. Only the canonical spelling is accepted.

    Raises InputError for anything else.
    """
    parts = path.split("/")
    width: int | None = None
    if len(parts) >= 2 and parts[-2].endswith(".p"):  # noqa: PLR2004 - N, then .p/W
        if not _WIDTH.match(parts[-1]) or int(parts[-1]) >= TILE_WIDTH:
            raise InputError(f"tile path {path!r:.80}: width must be 1..255 without zeros")
        width = int(parts[-1])
        parts = [*parts[:-2], parts[-2][:-2]]
    if len(parts) < 2:  # noqa: PLR2004 - a level and at least one group
        raise InputError(f"tile path {path!r:.80}: expected <L>/<N>[.p/<W>]")
    head, groups = parts[0], parts[1:]
    level: int | None
    if head == "entries":
        level = None
    elif _LEVEL.match(head) and int(head) <= MAX_TILE_LEVEL:
        level = int(head)
    else:
        raise InputError(f"tile path {path!r:.80}: level must be 0..63 or 'entries'")
    index = _parse_index(groups, path)
    return TileRef(level, index, width)


def _parse_index(groups: list[str], path: str) -> int:
    digits = [g[1:] if i < len(groups) - 1 and g.startswith("x") else g
              for i, g in enumerate(groups)]
    if any(i < len(groups) - 1 and not g.startswith("x") for i, g in enumerate(groups)) or \
            not all(_GROUP.match(d) for d in digits):
        raise InputError(f"tile path {path!r:.80}: N must be 3-digit groups like x001/x234/067")
    index = int("".join(digits))
    if format_tile_index(index).split("/") != groups:  # e.g. x000/001 for 1
        raise InputError(f"tile path {path!r:.80}: N is not in canonical form")
    return index


def entry_bundle(entries: list[bytes]) -> bytes:
    """Entries as a tlog-tiles entry bundle: each prefixed by its big-endian uint16 length.

    Requires every entry to be at most MAX_BUNDLE_ENTRY bytes (checked by the caller, who can
    say which index is too large).
    """
    return b"".join(len(e).to_bytes(2, "big") + e for e in entries)
