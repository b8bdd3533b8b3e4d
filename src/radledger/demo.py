"""``make run``: build a demo ledger on the embedded SQLite store and audit it.

Usage: python -m radledger.demo [HOME]. Creates HOME (default ./demo-home) on first run,
appends a batch of clearly labelled demo entries, then runs the full verification and prints
the signed checkpoint and an inclusion proof, the same things a reviewer would check.
DICOM ingestion and the web UI join this demo as those features land.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from radledger.core import merkle
from radledger.core.note import format_vkey
from radledger.ledger import proofs
from radledger.ledger.home import CONFIG
from radledger.ledger.service import Draft
from radledger.ledger.setup import init_ledger, open_ledger
from radledger.ledger.verify import verify_ledger


def _protocol(run: int) -> Draft:
    plan = f"radledger demo analysis plan, run {run}".encode()
    return Draft("protocol.registered", {
        "name": f"demo-brain-mr-{run}",
        "document_sha256": hashlib.sha256(plan).hexdigest(),
        "modality": "MR",
        "parameters": {"field_strength_T": 3, "sequence": "T1 MPRAGE", "demo": True},
    })


def _qc_checks(run: int, protocol_index: int) -> list[Draft]:
    return [
        Draft("x-demo.qc-check", {
            "run": run, "n": n, "passed": n % 17 != 0, "note": "demo data, not a real study",
        }, {"study": hashlib.sha256(f"demo-study-{n % 20}".encode()).hexdigest()},
            (protocol_index,))
        for n in range(200)
    ]


def main(argv: list[str]) -> int:
    """Create or extend the demo ledger, verify it, and print what a reviewer would check."""
    path = Path(argv[1] if len(argv) > 1 else "demo-home")
    if (path / CONFIG).exists():
        home, ledger = open_ledger(path)
    else:
        home, ledger = init_ledger(path, origin="radledger.local/demo", actor_name="demo")
        print(f"created demo ledger in {path}")
    run = ledger.store.entry_count()
    (protocol,) = ledger.append_drafts([_protocol(run)], home.actor_signer)
    receipts = ledger.append_drafts(_qc_checks(run, protocol.index), home.actor_signer)
    print(f"registered demo protocol as entry {protocol.index}; appended {len(receipts)} demo "
          f"QC entries (indices {receipts[0].index}..{receipts[-1].index}) in one block")
    report = verify_ledger(ledger.store, home.ledger_verifier)
    status = "ok" if report.ok else f"FAILED ({report.problem_count} problems)"
    print(f"verify: {status}: {report.entries_checked} entries, {report.blocks_checked} blocks")
    print(f"\nverifier key: {format_vkey(home.origin, home.ledger_signer.signing_key.public_key)}")
    print(f"\nlatest checkpoint:\n{ledger.store.checkpoint()}")
    proof = proofs.inclusion(ledger.store, receipts[0].index)
    merkle.verify_inclusion(proof.leaf_hash, proof.index, proof.tree_size, proof.proof,
                            proof.root)
    print(f"inclusion proof of entry {proof.index} in tree size {proof.tree_size}: "
          f"{len(proof.proof)} hashes, verified against root {proof.root.hex()[:16]}...")
    print(f"\nexplore: RADLEDGER_HOME={path} .venv/bin/radledger log --limit 5")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
