"""The lookup index: from pseudonymous keys, file hashes and references to entry indices.

It is derived from the ledger alone and kept in the side store, which catches up lazily
(``catch_up``) before it is asked anything, so the append path pays nothing for it. A key is
one tag byte followed by the value's bytes:

=====  ===========================================================  ====================
tag    value                                                        from
=====  ===========================================================  ====================
``P``  patient pseudonym (32 bytes)                                 ``subject.patient``
``S``  study pseudonym                                              ``subject.study``
``E``  series pseudonym                                             ``subject.series``
``I``  instance pseudonym                                           ``subject.instance``
``F``  file SHA-256                                                 ``body.file_sha256``
``X``  pixel SHA-256                                                ``body.pixel_sha256``
``L``  path pseudonym                                               ``body.source.path_key``
``R``  index of a referenced entry (8 bytes, big-endian)            ``refs``
``N``  SHA-256 of kind, 0x00, name (protocols and releases)        ``body.name``
=====  ===========================================================  ====================

When the keys derived from an entry change, INDEX_VERSION changes and the index is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

from radledger.storage.base import LedgerStore, SideStorage

SUBJECT_TAGS = {"patient": b"P", "study": b"S", "series": b"E", "instance": b"I"}
FILE, PIXEL, PATH, REF, NAME = b"F", b"X", b"L", b"R", b"N"
INDEX_VERSION = "2"
NAMED_KINDS = ("protocol.registered", "dataset.released")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 2000


def key(tag: bytes, hex_value: str) -> bytes:
    """The lookup key for a hex hash or pseudonym."""
    return tag + bytes.fromhex(hex_value)


def ref_key(index: int) -> bytes:
    """The lookup key of entries referring to the entry at ``index``."""
    return REF + index.to_bytes(8, "big")


def name_key(kind: str, name: str) -> bytes:
    """The lookup key of the protocols or releases called ``name``."""
    return NAME + hashlib.sha256(kind.encode() + b"\0" + name.encode()).digest()


def entry_keys(store: LedgerStore, data: bytes) -> Iterator[bytes]:
    """The lookup keys of one stored entry (its bytes were verified when appended)."""
    obj = json.loads(data)
    for name, value in obj.get("subject", {}).items():
        tag = SUBJECT_TAGS.get(name)
        if tag is not None and _HEX64.match(value):
            yield key(tag, value)
    body = obj.get("body", {})
    if obj.get("kind") in NAMED_KINDS and isinstance(body.get("name"), str):
        yield name_key(obj["kind"], body["name"])
    for field, tag in (("file_sha256", FILE), ("pixel_sha256", PIXEL)):
        value = body.get(field)
        if isinstance(value, str) and _HEX64.match(value):
            yield key(tag, value)
    source = body.get("source")
    if isinstance(source, dict) and _HEX64.match(str(source.get("path_key", ""))):
        yield key(PATH, source["path_key"])
    for ref in obj.get("refs", []):
        target = store.find_leaf(bytes.fromhex(ref)) if isinstance(ref, str) else ref
        if isinstance(target, int):
            yield ref_key(target)


def catch_up(store: LedgerStore, side: SideStorage) -> int:
    """Index the entries appended since the side store last looked; returns the ledger
    size indexed. Requires an open write transaction on ``side``."""
    if side.meta().get("index_version") != INDEX_VERSION:
        side.reset_lookups(INDEX_VERSION)
    start, size = side.indexed_to(), store.entry_count()
    while start < size:
        end = min(size, start + _CHUNK)
        rows = [(k, index) for index, _, _, data in store.entries(start, end)
                for k in entry_keys(store, data)]
        side.add_lookups(rows, end)
        start = end
    return size
