"""Creating reviewer bundles (``radledger bundle create``). Verifying them is
``radledger.reviewer`` over the pure ``radledger.core.bundle``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from radledger.core import jcs
from radledger.core.anchor import parse_receipt
from radledger.core.bundle import Bundle, BundleEntry, BundleFile, safe_name
from radledger.core.checkpoint import parse_checkpoint
from radledger.core.note import format_vkey, parse_note
from radledger.core.tlog_proof import format_tlog_proof
from radledger.errors import NotRegistered
from radledger.ledger import lookup, proofs
from radledger.ledger.setup import Workspace
from radledger.ledger.witnessing import checkpoint_with_cosignatures
from radledger.storage.cosignatures import cosignatures
from radledger.storage.files import write_atomically


def _entry(space: Workspace, index: int) -> dict[str, jcs.JSONValue]:
    row = space.ledger.store.entry(index)
    entry = json.loads(row[1]) if row else {}
    return entry if isinstance(entry, dict) else {}


def find_release(space: Workspace, name: str, version: str | None) -> int:
    """The release entry called ``name`` (at ``version``, or the latest). Raises
    NotRegistered."""
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    wanted = lookup.name_key("dataset.released", name)
    hits = [i for i in space.side.lookup([wanted]).get(wanted, [])
            if version is None or _body(space, i).get("version") == version]
    if not hits:
        raise NotRegistered(f"no release {name!r:.100}" +
                            (f" version {version!r:.40}" if version else ""))
    return hits[-1]


def _list(value: jcs.JSONValue) -> list[jcs.JSONValue]:
    return value if isinstance(value, list) else []


def _body(space: Workspace, index: int) -> dict[str, jcs.JSONValue]:
    body = _entry(space, index).get("body")
    return body if isinstance(body, dict) else {}


def _lineage(space: Workspace, member: int) -> set[int]:
    """The derivations that made ``member``, their inputs and those inputs' protocols."""
    found: set[int] = set()
    wanted = lookup.ref_key(member)
    for referrer in space.side.lookup([wanted]).get(wanted, []):
        entry = _entry(space, referrer)
        body = entry.get("body")
        if entry.get("kind") != "derivation.recorded" or not isinstance(body, dict):
            continue
        outputs = body.get("outputs")
        if not isinstance(outputs, list) or {"index": member} not in outputs:
            continue
        found.add(referrer)
        for source in _list(body.get("inputs")):
            if isinstance(source, int):
                found.add(source)
                found |= {r for r in _list(_entry(space, source).get("refs"))
                          if isinstance(r, int)
                          and _entry(space, r).get("kind") == "protocol.registered"}
    return found


@dataclass(frozen=True)
class BundleRequest:
    """Which release to bundle, how to name its files, and the anchor receipts at hand."""

    name: str
    version: str | None = None
    files_root: Path | None = None  # member files are named relative to it
    anchors: tuple[dict[str, str | int], ...] = ()


def create_bundle(space: Workspace, ledger_vkey: str, request: BundleRequest) -> Bundle:
    """The bundle of a release: it, its members and their lineage, the consent entries that
    decided it, every key entry, each with a tlog-proof to the latest checkpoint (with its
    cosignatures), the receipts anchoring that checkpoint; the member files named relative
    to ``request.files_root`` (default: their common folder)."""
    store = space.ledger.store
    release = find_release(space, request.name, request.version)
    body = _body(space, release)
    members: list[int] = []
    for member in _list(body.get("members")):
        index = member.get("index") if isinstance(member, dict) else None
        if isinstance(index, int):
            members.append(index)
    wanted = {release, *members}
    for member in members:
        wanted |= _lineage(space, member)
    wanted |= {r for r in _list(_entry(space, release).get("refs")) if isinstance(r, int)}
    wanted |= {index for index, _ in store.key_entries(0)}
    size = proofs.sealed_size(store)
    checkpoint = checkpoint_with_cosignatures(store, size)  # raises if there is none
    cosigners = sorted({row.witness for row in cosignatures(store, tree_size=size)
                        if row.checkpoint == store.checkpoint(size)})
    entries = []
    for index in sorted(wanted):
        proof = proofs.inclusion(store, index, size)
        row = store.entry(index)
        assert row is not None
        entries.append(BundleEntry(index, row[1].decode("utf-8"),
                                   format_tlog_proof(index, proof.proof, checkpoint)))
    signed = parse_checkpoint(parse_note(checkpoint).text)
    receipts = tuple(r for r in (parse_receipt(a) for a in request.anchors)
                     if r.is_for(signed))
    return Bundle(space.ledger.origin, ledger_vkey, checkpoint, release, tuple(entries),
                  _files(space, members, request.files_root), tuple(cosigners), receipts)


def _files(space: Workspace, members: list[int], root: Path | None
           ) -> tuple[BundleFile, ...]:
    paths = space.side.paths_of(members)
    if not paths:
        return ()
    base = os.path.abspath(root) if root is not None else \
        os.path.commonpath([os.path.dirname(p) for p in paths.values()])
    files = []
    for index, path in sorted(paths.items()):
        name = os.path.relpath(path, base)
        digest = _body(space, index).get("file_sha256")
        if safe_name(name) and isinstance(digest, str):
            files.append(BundleFile(name, index, digest))
    return tuple(files)


def ledger_vkey(origin: str, public_key: bytes) -> str:
    """The ledger's verifier key as a bundle names it."""
    return format_vkey(origin, public_key)


def write_bundle(bundle: Bundle, out: Path) -> None:
    """Write atomically: a temporary file, fsync, rename (never a partial file)."""
    write_atomically(out, jcs.canonicalize(bundle.to_json()))
