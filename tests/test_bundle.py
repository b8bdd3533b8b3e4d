"""Reviewer bundles (issue 5, first part): created from a release, verified offline; every
class of mutation caught naming the part (RELIABILITY 34, 35)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from radledger.core.bundle import load_bundle, verify_bundle
from radledger.core.note import format_vkey, parse_vkey
from radledger.dicom.synthetic import Acquisition, fake_patients, write_study
from radledger.errors import BundleError
from radledger.ledger import release, trail
from radledger.ledger.bundle import BundleRequest, create_bundle, write_bundle
from radledger.ledger.deid import DeidJob, deidentify_tree
from radledger.ledger.ingest import Ingester, ingest
from radledger.ledger.setup import init_ledger, open_workspace
from radledger.reviewer import Checks, folder_hasher, main, verify_file

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom may warn while the tests build files; that is not a test failure."""


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A release of a de-identified study acquired under a protocol, its bundle file, the
    folder of released files and the ledger's vkey."""
    tmp = tmp_path_factory.mktemp("bundle")
    home, ledger = init_ledger(tmp / "home", "example.org/bundle", "alice")
    space = open_workspace(home, ledger)
    acquired = tmp / "acquired"
    write_study(acquired, next(fake_patients(1)), Acquisition(slices=3, rows=16, columns=16))
    protocol = trail.register_protocol(space, home.actor_signer,
                                       trail.Protocol("brain-mr", b"protocol"))
    ingest(Ingester(space, home.actor_signer, protocol.index), [acquired], 1,
           lambda _o, _s: None)
    out = tmp / "released"
    outcomes = deidentify_tree(space, home.actor_signer, DeidJob(acquired, out),
                               lambda _o: None)
    patient = str(dcmread(acquired / "slice-0001.dcm").PatientID)
    trail.record_consent(space, home.actor_signer, trail.Consent(patient, "trial", True))
    copies = [o.output_index for o in outcomes if o.output_index is not None]
    release.create_release(space, home.actor_signer,
                           release.ReleasePlan("trial", "1", copies, "trial"))
    vkey = format_vkey(home.origin, home.ledger_signer.signing_key.public_key)
    bundle_file = tmp / "trial.rlbundle"
    write_bundle(create_bundle(space, vkey, BundleRequest("trial", "1", out)), bundle_file)
    return bundle_file, out, vkey


def test_a_bundle_verifies_back_to_acquisition(released: tuple[Path, Path, str]) -> None:
    bundle_file, out, vkey = released
    report = verify_file(bundle_file, Checks(out, vkey))
    assert report.ok, report.failures
    assert report.summary.startswith("3 of 3 images verified back to acquisition under "
                                     "protocol brain-mr")
    assert any("consent in force at release" in c for c in report.claims)
    assert any("3 of 3 member files rehashed" in c for c in report.claims)


def _mutated(bundle_file: Path, change: str) -> tuple[dict, bytes]:  # type: ignore[type-arg]
    doc = json.loads(bundle_file.read_bytes())
    entries = doc["entries"]
    release_item = next(e for e in entries if '"dataset.released"' in e["entry"])
    member = next(e for e in entries if '"source":{"path_key"' in e["entry"]
                  and '"deidentify"' in e["entry"])
    if change == "checkpoint signature":
        lines = doc["checkpoint"].split("\n")
        sig = lines[-2]
        lines[-2] = sig[:-6] + ("A" if sig[-6] != "A" else "B") + sig[-5:]
        doc["checkpoint"] = "\n".join(lines)
    elif change == "checkpoint root":
        lines = doc["checkpoint"].split("\n")
        lines[2] = ("A" if lines[2][0] != "A" else "B") + lines[2][1:]
        doc["checkpoint"] = "\n".join(lines)
    elif change == "checkpoint origin":
        doc["origin"] = "example.org/another"
    elif change == "entry signature":
        at = member["entry"].index('"sig":"') + 8
        member["entry"] = member["entry"][:at] + (
            "A" if member["entry"][at] != "A" else "B") + member["entry"][at + 1:]
    elif change == "entry body":
        member["entry"] = member["entry"].replace('"size":', '"size":1', 1)
    elif change == "proof hash":
        head, _, rest = member["proof"].partition("\n\n")
        lines = head.split("\n")
        lines[2] = ("A" if lines[2][0] != "A" else "B") + lines[2][1:]
        member["proof"] = "\n".join(lines) + "\n\n" + rest
    elif change == "proof swapped":
        other = next(e for e in entries if e is not member and e is not release_item)
        member["proof"], other["proof"] = other["proof"], member["proof"]
    elif change == "key entry dropped":  # the actor key that signed the members, gone
        doc["entries"] = [e for e in entries if '"role":"actor"' not in e["entry"]]
    elif change == "entry dropped":
        doc["entries"] = [e for e in entries if '"derivation.recorded"' not in e["entry"]]
    elif change == "manifest":
        doc["files"][0]["file_sha256"] = "0" * 64
    elif change == "release manifest":
        release_item["entry"] = release_item["entry"].replace(
            '"manifest_root":"', '"manifest_root":"0', 1)
    return doc, json.dumps(doc).encode()


@pytest.mark.parametrize(("change", "part"), [
    ("checkpoint signature", "checkpoint:"),
    ("checkpoint root", "checkpoint:"),  # the signature covers the root
    ("checkpoint origin", "checkpoint: origin mismatch"),
    ("entry signature", "(inclusion proof)"),  # the leaf hash covers the signature too
    ("key entry dropped", "(entry or signature)"),
    ("entry body", "(inclusion proof)"),
    ("proof hash", "(inclusion proof)"),
    ("proof swapped", "(inclusion proof)"),
    ("entry dropped", "(lineage)"),
    ("manifest", "files:"),
    ("release manifest", "(inclusion proof)"),
])
def test_every_kind_of_mutation_is_caught_naming_the_part(
        released: tuple[Path, Path, str], change: str, part: str) -> None:
    bundle_file, out, vkey = released
    _, data = _mutated(bundle_file, change)
    report = verify_bundle(load_bundle(data), parse_vkey(vkey), folder_hasher(out))
    assert not report.ok
    assert any(part in failure for failure in report.failures), report.failures


def test_every_byte_of_the_checkpoint_and_a_proof_matters(
        released: tuple[Path, Path, str]) -> None:
    bundle_file, _, vkey = released
    doc = json.loads(bundle_file.read_bytes())
    note = doc["checkpoint"]
    for position in range(0, len(note) - 1, 7):  # the body and the signature lines
        if note[position] in "\n ":
            continue
        doc["checkpoint"] = note[:position] + chr(ord(note[position]) ^ 1) + note[position + 1:]
        try:
            report = verify_bundle(load_bundle(json.dumps(doc).encode()), parse_vkey(vkey))
        except BundleError:
            continue
        assert not report.ok, position


@pytest.mark.parametrize(("name", "why"), [
    ("../outside.dcm", "unsafe name"), ("/etc/passwd", "unsafe name"),
    ("a/../../b.dcm", "unsafe name"), ("a\\b.dcm", "unsafe name"),
])
def test_unsafe_member_names_are_refused(released: tuple[Path, Path, str], name: str,
                                         why: str) -> None:
    bundle_file, _, _ = released
    doc = json.loads(bundle_file.read_bytes())
    doc["files"][0]["name"] = name
    with pytest.raises(BundleError, match=why):
        load_bundle(json.dumps(doc).encode())


def test_hostile_bundles_are_typed_errors(released: tuple[Path, Path, str],
                                          tmp_path: Path) -> None:
    bundle_file, _, _ = released
    data = bundle_file.read_bytes()
    for bad, why in ((b"PK\x03\x04 a zip", "not valid JSON"), (b"[]", "not a radledger"),
                     (data.replace(b'"anchors":[]', b'"anchors":[],"anchors":[]'),
                      "duplicate"),
                     (data[:-1] + b',"extra":1}', "fields must be exactly")):
        with pytest.raises(BundleError, match=why):
            load_bundle(bad)
    big = tmp_path / "big.rlbundle"
    with big.open("wb") as f:
        f.truncate((256 << 20) + 1)
    assert main([str(big)]) == 2


def test_data_checks_refuse_links_and_name_modified_files(
        released: tuple[Path, Path, str], tmp_path: Path) -> None:
    bundle_file, out, vkey = released
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    doc = json.loads(bundle_file.read_bytes())
    first, second = (copy / doc["files"][i]["name"] for i in (0, 1))
    first.write_bytes(first.read_bytes() + b"\0")
    second.unlink()
    second.symlink_to(first)
    third = copy / doc["files"][2]["name"]
    ds = dcmread(third)
    ds.SeriesDescription = "edited after release"
    ds.save_as(third)
    report = verify_file(bundle_file, Checks(copy, vkey))
    assert not report.ok
    assert any("file_sha256 differs" in f and "no longer readable" in f
               for f in report.failures)  # a byte appended: stray bytes after the dataset
    assert any(f.endswith("header changed") for f in report.failures)  # pydicom is at hand
    assert any("symbolic link" in f for f in report.failures)


def test_trust_and_quorum(released: tuple[Path, Path, str]) -> None:
    bundle_file, _, vkey = released
    other = format_vkey("example.org/bundle", bytes(range(32)))
    assert not verify_file(bundle_file, Checks(trust_key=other)).ok
    assert not verify_file(bundle_file, Checks(trust_key=vkey, quorum=1)).ok
    assert "not pinned" in verify_file(bundle_file).claims[0]


def test_the_reviewer_needs_only_the_standard_library_and_cryptography(
        released: tuple[Path, Path, str]) -> None:
    bundle_file, out, vkey = released
    blocker = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'pydicom', 'numpy', 'typer', 'rich', 'prov',\n"
        "                                 'fhir', 'pydantic', 'pylibjpeg'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from radledger.reviewer import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", blocker, str(bundle_file), "--data",
                           str(out), "--trust-key", vkey, "--json"],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True


def test_anchor_receipts_travel_in_the_bundle_and_must_match_its_checkpoint(
        released: tuple[Path, Path, str]) -> None:
    from radledger.core.checkpoint import parse_checkpoint  # noqa: PLC0415
    from radledger.core.note import parse_note  # noqa: PLC0415

    bundle_file, _, vkey = released
    doc = json.loads(bundle_file.read_bytes())
    signed = parse_checkpoint(parse_note(doc["checkpoint"]).text)
    receipt = {"chain_id": 31337, "contract": "0x" + "ab" * 20, "tx_hash": "0x" + "01" * 32,
               "block_number": 7, "block_hash": "0x" + "02" * 32, "block_time": 1_800_000_000,
               "log_index": 0, "sender": "0x" + "cd" * 20, "origin": signed.origin,
               "tree_size": signed.tree_size, "root_hash": signed.root_hash.hex()}
    doc["anchors"] = [receipt]
    report = verify_bundle(load_bundle(json.dumps(doc).encode()), parse_vkey(vkey))
    assert report.ok and any("1 receipt(s) for this checkpoint, not checked" in c
                             for c in report.claims)
    assert report.summary.endswith("anchored in block 7 of chain 31337")
    doc["anchors"] = [{**receipt, "tree_size": signed.tree_size - 1}]
    report = verify_bundle(load_bundle(json.dumps(doc).encode()), parse_vkey(vkey))
    assert any(f.startswith("anchors: 1 receipt(s) for another checkpoint")
               for f in report.failures)
    doc["anchors"] = [{**receipt, "contract": "not an address"}]
    with pytest.raises(BundleError, match="anchors:"):
        load_bundle(json.dumps(doc).encode())
