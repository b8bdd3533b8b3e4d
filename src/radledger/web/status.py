"""What the dashboard shows: size, latest block and checkpoint, witnesses, anchors, the last
full verification, recent entries. Each read comes from the service that owns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from radledger.core.block import BlockHeader
from radledger.core.checkpoint import parse_checkpoint
from radledger.core.note import parse_note
from radledger.errors import InputError
from radledger.ledger import proofs
from radledger.ledger.anchor import anchor_receipts
from radledger.ledger.home import LedgerHome
from radledger.ledger.verify_runs import VerifyRun, latest_run
from radledger.ledger.witnessing import cosigners, load_witnesses
from radledger.storage.base import LedgerStore
from radledger.web.describe import Described, describe, parse

RECENT = 12
ANCHORS_SHOWN = 5


@dataclass(frozen=True)
class WitnessRow:
    """A configured witness and what it cosigned."""

    name: str
    url: str
    last_cosigned: int | None
    cosigned_latest: bool


@dataclass(frozen=True)
class Dashboard:
    """The ledger at a glance."""

    size: int
    block: BlockHeader | None
    block_hash: str
    checkpoint: str | None
    checkpoint_size: int | None
    witnesses: list[WitnessRow]
    quorum: int
    witnessed: bool
    witness_problem: str | None
    anchors: list[dict[str, Any]]
    anchored_latest: bool
    last_run: VerifyRun | None
    recent: list[Described]


def dashboard(home: LedgerHome, store: LedgerStore) -> Dashboard:
    """Read everything the dashboard shows (one read connection, no writes)."""
    size = proofs.sealed_size(store)
    latest = store.latest_block()
    block, block_hash = (latest[0], latest[1].hex()) if latest else (None, "")
    note = store.checkpoint()
    checkpoint_size = parse_checkpoint(parse_note(note).text).tree_size if note else None
    rows: list[WitnessRow] = []
    quorum, witnessed, problem = 0, False, None
    try:
        configured = load_witnesses(home.path)
        signed = set(cosigners(store, configured.witnesses))
        for w in configured.witnesses:
            last = store.last_cosigned(w.vkey)
            rows.append(WitnessRow(w.name, w.url, last.tree_size if last else None,
                                   w.vkey in signed))
        quorum = configured.required if configured.witnesses else 0
        witnessed = bool(configured.witnesses) and len(signed) >= quorum
    except InputError as exc:  # a malformed witnesses.toml is shown, not a broken page
        problem = str(exc)
    receipts = anchor_receipts(home)
    anchored = any(r.get("tree_size") == checkpoint_size for r in receipts)
    run = latest_run(home.path)
    recent = [describe(i, parse(data))
              for i, _, _, data in reversed(store.entries(max(0, size - RECENT), size))]
    return Dashboard(size, block, block_hash, note, checkpoint_size, rows, quorum, witnessed,
                     problem, receipts[-ANCHORS_SHOWN:][::-1], anchored, run, recent)
