"""Reviewer bundles through a service (the HTTP API): the bundle of a release named by its
entry index, and the reviewer's report on an uploaded bundle.

Creating is ``bundle.create_bundle`` (as ``radledger bundle create``, member files named
relative to their common folder), recorded as an export on behalf of whoever asked.
Verifying is ``radledger.reviewer.verify_file``, offline: no data folder (the server does
not hold the reviewer's copies) and no chain (a client must not make the server go online).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from radledger.core import jcs
from radledger.errors import NotFound
from radledger.ledger import proofs
from radledger.ledger.anchor import anchor_receipts
from radledger.ledger.audit import record_access_for
from radledger.ledger.bundle import BundleRequest, create_bundle, ledger_vkey
from radledger.ledger.home import LedgerHome
from radledger.ledger.setup import Workspace
from radledger.reviewer import Checks, render, verify_file

RELEASE_KIND = "dataset.released"


def release_name(space: Workspace, index: int) -> tuple[str, str]:
    """(name, version) of the release entry at ``index``. Raises NotFound if the sealed
    ledger has no release there."""
    store = space.ledger.store
    row = store.entry(index) if index < proofs.sealed_size(store) else None
    entry = json.loads(row[1]) if row else None
    body = entry.get("body") if isinstance(entry, dict) else None
    if not isinstance(entry, dict) or entry.get("kind") != RELEASE_KIND or \
            not isinstance(body, dict):
        raise NotFound(f"entry {index} is not a release ({RELEASE_KIND})")
    name, version = body.get("name"), body.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise NotFound(f"entry {index} is not a release with a name and version")
    return name, version


def bundle_release(space: Workspace, home: LedgerHome, index: int, on_behalf_of: str
                   ) -> bytes:
    """The bundle of the release at ``index`` (RFC 8785 bytes, as ``bundle create`` writes
    them), then ``access.recorded`` (action ``export``, target ``bundle:dataset.released/N``)
    naming the token it was made for. Requires the caller to be the process's one writer.
    Raises NotFound if there is no release at ``index``."""
    name, version = release_name(space, index)
    made = create_bundle(space, ledger_vkey(home.origin,
                                            home.ledger_signer.signing_key.public_key),
                         BundleRequest(name, version, None, tuple(anchor_receipts(home))))
    record_access_for(space.ledger, home.actor_signer, "export",
                      f"bundle:{RELEASE_KIND}/{made.release}", on_behalf_of)
    return jcs.canonicalize(made.to_json())


def review_bundle(path: Path, checks: Checks) -> dict[str, Any]:
    """The reviewer's report on the bundle file at ``path`` (``bundle verify --json``'s
    ``ok``, ``summary``, ``claims`` and ``failures``), with each check as
    ``{"claim", "ok"}`` and the plain-language report a reviewer reads.

    Raises InputError (BundleError) for a file that is not a usable bundle."""
    report = verify_file(path, Checks(None, checks.trust_key, checks.quorum,
                                      checks.witnesses, None))
    return {"ok": report.ok, "summary": report.summary, "claims": report.claims,
            "failures": report.failures,
            "checks": [{"claim": c, "ok": True} for c in report.claims]
            + [{"claim": f, "ok": False} for f in report.failures],
            "report": render(report)}
