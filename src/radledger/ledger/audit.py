"""What an auditor asks of a ledger through a service (the HTTP API): full verification runs,
recorded; the access log; exports, recorded as access on behalf of whoever asked; the
latest checkpoint with its cosigners; consistency proofs.

Each function takes the store or workspace it works on; none holds state.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from radledger.core.checkpoint import open_checkpoint
from radledger.core.note import Signer, parse_note
from radledger.errors import NotFound
from radledger.ledger import proofs
from radledger.ledger.drafts import Draft
from radledger.ledger.export import ledger_entries
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Ledger, Receipt, rfc3339
from radledger.ledger.verify import Progress, VerifyReport, verify_ledger
from radledger.ledger.verify_runs import VerifyRun, record_run, runs
from radledger.ledger.witnessing import checkpoint_with_cosignatures
from radledger.storage.base import LedgerStore

log = logging.getLogger("radledger.audit")
ACCESS_KIND = "access.recorded"
ACCESS_SCAN = 50_000  # entries looked at for one page of the access log, at most
_SCAN_CHUNK = 2_000
EXPORT_FORMATS = ("prov", "fhir")


# -- verification runs ----------------------------------------------------------------------
def run_verification(store: LedgerStore, home: LedgerHome, by: str, *,
                     workers: int | None = None, progress: Progress | None = None
                     ) -> tuple[VerifyReport, VerifyRun]:
    """The full verification of ``radledger verify`` (``verify.verify_ledger`` against the
    home's pinned key), recorded in the home's run record as done ``by`` ("cli" or a token
    name; a home that cannot be written is logged, not raised). Never raises for what it
    finds; StorageError if the store cannot be read."""
    started = time.time()
    report = verify_ledger(store, home.ledger_verifier, workers=workers, progress=progress,
                           now=int(started))
    run = VerifyRun.from_report(report, rfc3339(started), rfc3339(time.time()), by)
    try:
        record_run(home.path, run)
    except OSError as exc:  # bookkeeping, not evidence: a read-only home is still verified
        log.warning("the verification run could not be recorded in %s: %s", home.path,
                    exc.strerror)
    return report, run


def report_json(report: VerifyReport, run: VerifyRun) -> dict[str, Any]:
    """A run as the API answers it: ``verify --json``'s ``ok``, ``tree_size``, ``problems``
    (the first 100), and the counts and times of the recorded run."""
    return {"ok": report.ok, "tree_size": report.tree_size,
            "entries_checked": report.entries_checked, "blocks_checked": report.blocks_checked,
            "problem_count": report.problem_count,
            "problems": [p.as_json() for p in report.problems],
            "started": run.started, "finished": run.finished, "by": run.by}


def runs_json(home: LedgerHome, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` recorded runs, newest first (each keeps its first 20 problems)."""
    return [vars(run) for run in runs(home.path, limit)]


# -- access --------------------------------------------------------------------------------
def record_access_for(ledger: Ledger, signer: Signer, action: str, target: str,
                      on_behalf_of: str) -> Receipt:
    """``access.recorded`` {action, target, via "api", on_behalf_of}, signed by the service.
    Requires the caller to be the process's one writer."""
    (receipt,) = ledger.append_drafts([Draft(ACCESS_KIND, {
        "action": action, "target": target, "via": "api", "on_behalf_of": on_behalf_of})],
        signer)
    return receipt


def access_page(store: LedgerStore, start: int, limit: int, scan: int = ACCESS_SCAN
                ) -> dict[str, Any]:
    """Up to ``limit`` ``access.recorded`` entries at index ``start`` or after, oldest first,
    looking at no more than ``scan`` entries: ``{"entries": [{"index", "entry"}], "next"}``,
    ``next`` being where the following page starts (None at the end of the ledger). A page
    may hold fewer than ``limit`` entries and still have a ``next``."""
    size = proofs.sealed_size(store)
    found: list[dict[str, Any]] = []
    position, stop = start, min(size, start + scan)
    while position < stop and len(found) < limit:
        end = min(stop, position + _SCAN_CHUNK)
        for index, kind, _, data in store.entries(position, end):
            position = index + 1
            if kind == ACCESS_KIND:
                found.append({"index": index, "entry": json.loads(data)})
                if len(found) >= limit:
                    break
        else:
            position = end
    return {"entries": found, "next": position if position < size else None}


# -- exports -------------------------------------------------------------------------------
def export_ledger(store: LedgerStore, origin: str, fmt: str) -> tuple[str, int]:
    """The whole ledger as W3C PROV-JSON (``prov``) or a FHIR R4 Bundle (``fhir``), as
    ``radledger export`` writes it, and the number of entries exported."""
    entries = ledger_entries(store)
    if fmt == "prov":
        from radledger.ledger.export_prov import prov_json  # noqa: PLC0415 - loads prov

        return prov_json(origin, entries), len(entries)
    from radledger.ledger.export_fhir import to_fhir_bundle  # noqa: PLC0415

    return json.dumps(to_fhir_bundle(origin, entries), indent=2, sort_keys=True), len(entries)


# -- checkpoints and proofs ------------------------------------------------------------------
def checkpoint_json(store: LedgerStore, home: LedgerHome, tree_size: int | None = None
                    ) -> dict[str, Any]:
    """The signed checkpoint of ``tree_size`` (default: the latest) with every stored witness
    cosignature: ``checkpoint --json``'s ``origin``, ``tree_size``, ``root``, ``block`` and
    ``note`` (verbatim, one line per cosigner), and the cosigners' key names.

    Raises NotFound for a size no checkpoint was signed for."""
    if tree_size is not None and store.checkpoint(tree_size) is None:
        raise NotFound(f"no checkpoint for tree size {tree_size}")
    note = checkpoint_with_cosignatures(store, tree_size)
    cp = open_checkpoint(note, home.ledger_verifier, origin=home.origin)
    return {"origin": cp.origin, "tree_size": cp.tree_size, "root": cp.root_hash.hex(),
            "block": cp.block.height if cp.block else None, "note": note,
            "cosigners": [s.name for s in parse_note(note).signatures[1:]]}


def consistency_json(store: LedgerStore, size1: int, size2: int | None) -> dict[str, Any]:
    """``proof consistency --json`` from ``size1`` to ``size2`` (default: the latest sealed
    size). Raises NotFound for a size beyond the sealed tree, InputError if size1 > size2."""
    sealed = proofs.sealed_size(store)
    wanted = sealed if size2 is None else size2
    if max(size1, wanted) > sealed:
        raise NotFound(f"tree size {max(size1, wanted)} is beyond the sealed tree "
                       f"(size {sealed})")
    result = proofs.consistency(store, size1, wanted)
    return {"size1": result.size1, "size2": result.size2,
            "proof": [h.hex() for h in result.proof], "root1": result.root1.hex(),
            "root2": result.root2.hex()}
