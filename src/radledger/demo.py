"""``make run``: a demo ledger over sample DICOM on the embedded SQLite store, audited.

Usage: python -m radledger.demo [HOME] [--no-serve] [--host H] [--port P]. On first run it
creates HOME (default ./demo-home),
writes sample DICOM into HOME/sample-dicom (a copy of pydicom's test files, written by many
other tools, and a few generated CT/MR studies of fake patients), registers a demo protocol
and ingests every file. Each run then verifies the ledger and the files, prints the signed
checkpoint, a verified inclusion proof and a study's history, and says what to try next.
It also de-identifies one generated study, records consent for its fake patient and releases
the copies, so the history shows the whole chain. Running it again registers nothing new.
Then, unless ``--no-serve``, it creates an admin token (``demo-admin``, replacing the one of
an earlier run), prints it with the web UI's address, and serves the API and web UI on
127.0.0.1:8600 until Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

from radledger.core import merkle
from radledger.core.note import format_vkey
from radledger.dicom.synthetic import (
    Acquisition,
    fake_patients,
    pydicom_test_files,
    write_study,
)
from radledger.ledger import lookup, proofs, release, trail
from radledger.ledger.bundle import BundleRequest, create_bundle, write_bundle
from radledger.ledger.deid import DeidJob, deidentify_tree
from radledger.ledger.fixity import check_data
from radledger.ledger.history import history
from radledger.ledger.home import CONFIG, LedgerHome, load_home
from radledger.ledger.ingest import FileOutcome, Ingester, ingest
from radledger.ledger.service import Draft, Ledger
from radledger.ledger.setup import Workspace, init_ledger, open_ledger, open_workspace
from radledger.ledger.verify import verify_ledger
from radledger.reviewer import Checks, verify_file

STUDIES = (("CT", 40), ("MR", 24), ("CT", 16))


def _protocol() -> Draft:
    plan = b"radledger demo acquisition protocol: synthetic phantom CT and MR"
    return Draft("protocol.registered", {
        "name": "demo-phantom-ct-mr",
        "document_sha256": hashlib.sha256(plan).hexdigest(),
        "modality": "CT",
        "parameters": {"slice_thickness_mm": 2.5, "demo": True},
    })


def _write_samples(folder: Path) -> None:
    shutil.copytree(pydicom_test_files(), folder / "pydicom-test-files")
    for n, ((modality, slices), patient) in enumerate(zip(STUDIES, fake_patients(3),
                                                          strict=False)):
        write_study(folder / f"study-{n + 1}", patient,
                    Acquisition(modality=modality, slices=slices, rows=256, columns=256,
                                seed=n))


def _open(path: Path) -> tuple[LedgerHome, Ledger, bool]:
    if (path / CONFIG).exists():
        home, ledger = open_ledger(path)
        return home, ledger, False
    home, ledger = init_ledger(path, origin="radledger.local/demo", actor_name="demo")
    return home, ledger, True


def _ingest(home: LedgerHome, space: Workspace, samples: Path) -> None:
    reasons: Counter[str] = Counter()

    def count(outcome: FileOutcome, _size: int) -> None:
        if outcome.error:
            reasons[outcome.error.split(": ", 2)[-1][:72]] += 1

    protocol = trail.protocol_index(space, "demo-phantom-ct-mr")
    summary = ingest(Ingester(space, home.actor_signer, protocol), [samples],
                     os.cpu_count() or 1, count)
    counts = summary.counts
    print(f"ingested {samples}: {counts['registered']} registered, {counts['new-version']} new "
          f"versions, {counts['already-registered']} already registered, {counts['rejected']} "
          "rejected")
    for reason, n in reasons.most_common():
        print(f"  rejected {n:>3}: {reason}")
    if reasons:
        print("  (pydicom's test files include deliberately malformed and non-DICOM files)")


def _research_trail(home: LedgerHome, space: Workspace, samples: Path, out: Path) -> None:
    """De-identify the generated studies, record consent for their fake patients, release
    them (once: later runs find it all recorded)."""
    job = DeidJob(samples / "study-1", out, frozenset({"retain-longitudinal-modified-dates"}))
    copies = [o.output_index for o in deidentify_tree(space, home.actor_signer, job,
                                                       lambda _o: None)
              if o.output_index is not None]
    print(f"de-identified {samples / 'study-1'} into {out}: {len(copies)} copies "
          "(PS3.15 Basic Profile, modified dates), each linked to its source")
    if space.side.lookup([lookup.name_key("dataset.released", "demo-release")]):
        return
    patient = next(fake_patients(1)).patient_id  # the fake patient of study-1
    trail.record_consent(space, home.actor_signer,
                         trail.Consent(patient, home.origin, granted=True))
    receipt = release.create_release(space, home.actor_signer, release.ReleasePlan(
        "demo-release", "1", copies, home.origin, description="demo data, not a study"))
    print(f"consent recorded for the fake patient; released demo-release 1 as entry "
          f"{receipt.index}")


DEMO_TOKEN = "demo-admin"


def _admin_token(home: LedgerHome) -> str:
    """A fresh admin token named DEMO_TOKEN (an earlier run's is revoked first)."""
    from radledger.ledger.tokens import create_token, open_tokens, revoke_token  # noqa: PLC0415

    store = open_tokens(home)
    try:
        if any(row.name == DEMO_TOKEN and row.revoked_at is None for row in store.all()):
            revoke_token(store, DEMO_TOKEN)
        return create_token(store, DEMO_TOKEN, "admin")
    finally:
        store.close()


def _serve(home: LedgerHome, host: str, port: int) -> None:
    """The API and web UI over the demo ledger, until Ctrl-C."""
    import uvicorn  # noqa: PLC0415 - the web stack loads only to serve

    from radledger.api import create_app  # noqa: PLC0415

    token = _admin_token(home)
    print(f"""
web UI: http://{host}:{port}/ui/  (the JSON API's reference: http://{host}:{port}/docs)
log in with this admin token (shown once; `radledger token create` makes others):
  {token}
serving until Ctrl-C""", flush=True)
    uvicorn.run(create_app(home.path), host=host, port=port, workers=1, log_level="warning")


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m radledger.demo", description=__doc__)
    parser.add_argument("home", nargs="?", default="demo-home", type=Path)
    parser.add_argument("--no-serve", action="store_true",
                        help="build and verify the demo, then exit (no web server)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8600)
    return parser.parse_args(argv[1:])


def main(argv: list[str]) -> int:
    """Create or reopen the demo ledger, ingest the samples, verify, show the results, and
    (unless --no-serve) serve the web UI over it."""
    args = _arguments(argv)
    status = _build(args.home)
    if not args.no_serve:
        _serve(load_home(args.home), args.host, args.port)
    return status


def _build(path: Path) -> int:
    """Everything but serving: returns 0 if every verification passed."""
    home, ledger, created = _open(path)
    samples = path / "sample-dicom"
    if created:
        print(f"created demo ledger in {path}")
        _write_samples(samples)
        (protocol,) = ledger.append_drafts([_protocol()], home.actor_signer)
        print(f"registered the demo protocol as entry {protocol.index}")
    space = open_workspace(home, ledger)
    _ingest(home, space, samples)
    deidentified = path / "deidentified"
    _research_trail(home, space, samples, deidentified)

    report = verify_ledger(ledger.store, home.ledger_verifier)
    status = "ok" if report.ok else f"FAILED ({report.problem_count} problems)"
    print(f"\nverify: {status}: {report.entries_checked} entries, {report.blocks_checked} blocks")
    data = check_data(space, samples, os.cpu_count() or 1, lambda _check, _size: None)
    print("verify --data: " + ", ".join(f"{n} {status}" for status, n in data.counts.items()))

    print(f"\nverifier key: {format_vkey(home.origin, home.ledger_signer.signing_key.public_key)}")
    print(f"\nlatest checkpoint:\n{ledger.store.checkpoint()}")
    last = ledger.store.entry_count() - 1
    proof = proofs.inclusion(ledger.store, last)
    merkle.verify_inclusion(proof.leaf_hash, proof.index, proof.tree_size, proof.proof,
                            proof.root)
    print(f"inclusion proof of entry {proof.index} in tree size {proof.tree_size}: "
          f"{len(proof.proof)} hashes, verified against root {proof.root.hex()[:16]}...")
    bundle_file = path / "demo-release.rlbundle"
    vkey = format_vkey(home.origin, home.ledger_signer.signing_key.public_key)
    write_bundle(create_bundle(space, vkey, BundleRequest("demo-release", None, deidentified)),
                 bundle_file)
    review = verify_file(bundle_file, Checks(deidentified, vkey))
    print(f"reviewer bundle {bundle_file}: " + ("VERIFIED: " if review.ok else "FAILED: ") +
          (review.summary if review.ok else "; ".join(review.failures[:3])))
    first_slice = samples / "study-1" / "slice-0001.dcm"
    entries, _ = history(space, str(first_slice))
    kinds = sorted({json.loads(data)["kind"] for _, data in entries})
    print(f"history of {first_slice}: {len(entries)} entries ({', '.join(kinds)})")

    env = f"RADLEDGER_HOME={path}"
    print(f"""
try next (the CLI is .venv/bin/radledger):
  {env} .venv/bin/radledger log --limit 5
  {env} .venv/bin/radledger history {first_slice}
  {env} .venv/bin/radledger fingerprint {first_slice}
  {env} .venv/bin/radledger verify --data {samples}
  {env} .venv/bin/radledger export prov {first_slice}
  .venv/bin/python -m radledger.reviewer {bundle_file} --data {deidentified} --trust-key '{vkey}'
  edit or delete a file under {samples}, then run verify --data again: it names the file
  and says whether pixels, header or only the encoding changed""")
    return 0 if report.ok and data.ok and review.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
