"""The research trail (issue 4, first slice): protocols, notes, results, corrections,
consent and erasure; erasure leaves every proof verifying (RELIABILITY 29, 30)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from radledger.core import merkle
from radledger.dicom.synthetic import Acquisition, fake_patients, write_study
from radledger.errors import InputError, NotRegistered, ReleaseRefused, TamperError
from radledger.ledger import proofs, trail
from radledger.ledger.home import LedgerHome
from radledger.ledger.ingest import Ingester, ingest
from radledger.ledger.setup import Workspace, init_ledger, open_workspace
from radledger.ledger.verify import verify_ledger

EXE = Path(sys.executable).parent / "radledger"
NOTE = b"motion artefact in slices 3-4; CANARY-NOTE-TEXT-q7"


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom may warn while the tests build files; that is not a test failure."""


@pytest.fixture()
def lab(tmp_path: Path) -> tuple[LedgerHome, Workspace, Path]:
    home, ledger = init_ledger(tmp_path / "home", "example.org/trail", "alice")
    space = open_workspace(home, ledger)
    folder = tmp_path / "study"
    write_study(folder, next(fake_patients(1)), Acquisition(slices=3, rows=16, columns=16))
    return home, space, folder


def _ingest(home: LedgerHome, space: Workspace, folder: Path, protocol: int | None = None
            ) -> list[int]:
    indices: list[int] = []
    ingest(Ingester(space, home.actor_signer, protocol), [folder], 1,
           lambda outcome, _size: indices.append(outcome.index or -1))
    return indices


def _entry(space: Workspace, index: int) -> dict:  # type: ignore[type-arg]
    row = space.ledger.store.entry(index)
    assert row is not None
    return json.loads(row[1])  # type: ignore[no-any-return]


def test_a_protocol_is_registered_and_instances_refer_to_it(lab) -> None:  # type: ignore[no-untyped-def]
    home, space, folder = lab
    receipt = trail.register_protocol(space, home.actor_signer, trail.Protocol(
        "brain-mr-v1", b"%PDF protocol", "MR", {"field_strength_T": 3}, "1.0"))
    body = _entry(space, receipt.index)["body"]
    assert body["document_sha256"] == __import__("hashlib").sha256(b"%PDF protocol").hexdigest()
    assert body["parameters"] == {"field_strength_T": 3}
    assert trail.protocol_index(space, "brain-mr-v1") == receipt.index
    with pytest.raises(NotRegistered):
        trail.protocol_index(space, "no-such-protocol")
    for index in _ingest(home, space, folder, receipt.index):
        assert _entry(space, index)["refs"] == [receipt.index]


def test_a_note_is_committed_its_text_kept_aside_and_checked(lab) -> None:  # type: ignore[no-untyped-def]
    home, space, folder = lab
    first = _ingest(home, space, folder)[0]
    study_uid = dcmread(folder / "slice-0001.dcm").StudyInstanceUID
    target = trail.about(space, [study_uid])
    assert set(target.subject) == {"study", "patient"}  # the patient joins, for erasure
    receipt = trail.add_note(space, home.actor_signer, target, NOTE)
    entry = _entry(space, receipt.index)
    assert b"CANARY-NOTE" not in space.ledger.store.entry(receipt.index)[1]  # type: ignore[index]
    assert entry["subject"]["patient"] == _entry(space, first)["subject"]["patient"]
    assert trail.read_note(space, receipt.index) == NOTE
    by_index = trail.add_note(space, home.actor_signer, trail.about(space, [str(first)]), b"x")
    assert _entry(space, by_index.index)["refs"] == [first]
    with pytest.raises(NotRegistered):
        trail.about(space, ["1.2.3.4.5.6"])
    with pytest.raises(InputError, match="no such entry"):
        trail.about(space, ["999"])
    with pytest.raises(InputError, match="not a note"):
        trail.read_note(space, first)
    # the side store edited behind radledger's back: the text no longer opens the commitment
    with space.side.write():
        space.side._conn.execute("UPDATE openings SET value = ?", (b"rewritten",))  # noqa: SLF001
    with pytest.raises(TamperError, match="does not open") as caught:
        trail.read_note(space, receipt.index)
    assert caught.value.index == receipt.index


def test_results_and_corrections_keep_both_entries(lab) -> None:  # type: ignore[no-untyped-def]
    home, space, folder = lab
    first = _ingest(home, space, folder)[0]
    result = trail.record_result(space, home.actor_signer, trail.about(space, [str(first)]),
                                 trail.Result(b"mask bytes", "hippocampus", {"dice": 0.91}))
    assert _entry(space, result.index)["body"]["metrics"] == {"dice": 0.91}
    fix = trail.correct(space, home.actor_signer, result.index, "wrong metric",
                        {"metrics": {"dice": 0.89}})
    correction = _entry(space, fix.index)
    assert correction["refs"] == [result.index]
    assert correction["body"]["supersedes"] == result.index
    assert _entry(space, result.index)["body"]["metrics"] == {"dice": 0.91}  # never edited
    with pytest.raises(InputError):
        trail.correct(space, home.actor_signer, 10_000, "nothing there", None)


def test_consent_follows_the_latest_decision_per_scope(lab) -> None:  # type: ignore[no-untyped-def]
    home, space, _ = lab
    patient = trail.patient_key(space, "PAT-0001")
    assert trail.consent_in_force(space, patient, "trial-42") == (False, None)
    granted = trail.record_consent(space, home.actor_signer,
                                   trail.Consent("PAT-0001", "trial-42", True, b"signed form"))
    assert trail.consent_in_force(space, patient, "trial-42") == (True, granted.index)
    assert trail.consent_in_force(space, patient, "other-study") == (False, None)
    entry = _entry(space, granted.index)
    assert entry["subject"] == {"patient": patient} and "PAT-0001" not in json.dumps(entry)
    assert "evidence_commitment" in entry["body"]
    withdrawn = trail.record_consent(space, home.actor_signer,
                                     trail.Consent("PAT-0001", "trial-42", False))
    assert trail.consent_in_force(space, patient, "trial-42") == (False, withdrawn.index)


def test_erasure_destroys_openings_and_every_proof_still_verifies(lab) -> None:  # type: ignore[no-untyped-def]
    home, space, folder = lab
    first = _ingest(home, space, folder)[0]
    patient_id = dcmread(folder / "slice-0001.dcm").PatientID
    note = trail.add_note(space, home.actor_signer, trail.about(space, [str(first)]), NOTE)
    consent = trail.record_consent(space, home.actor_signer,
                                   trail.Consent(patient_id, "trial-42", True, b"signed form"))
    proof_before = proofs.inclusion(space.ledger.store, note.index)
    receipt, erased = trail.erase_patient(space, home.actor_signer, patient_id,
                                          "request of 2026-11-28", "alice")
    committed = {_entry(space, note.index)["body"]["commitment"],
                 _entry(space, consent.index)["body"]["evidence_commitment"]}
    assert set(erased) == committed
    assert _entry(space, receipt.index)["body"]["commitments"] == sorted(committed)
    assert trail.read_note(space, note.index) is None
    assert all(space.side.opening(c) is None for c in committed)
    assert b"CANARY-NOTE" not in space.side.path.read_bytes()
    assert space.side.files_under(str(folder)) == {}  # the paths that could re-link, gone
    wal = space.side.path.with_name(space.side.path.name + "-wal")
    assert not wal.exists() or b"CANARY-NOTE" not in wal.read_bytes()
    assert verify_ledger(space.ledger.store, home.ledger_verifier, workers=1).ok
    merkle.verify_inclusion(proof_before.leaf_hash, proof_before.index,
                            proof_before.tree_size, proof_before.proof, proof_before.root)
    proofs.check_against(space.ledger.store, space.ledger.store.checkpoint(
        proof_before.tree_size) or "", home.ledger_verifier, home.origin)


def test_the_cli_walks_the_trail(tmp_path: Path, lab) -> None:  # type: ignore[no-untyped-def]
    _, _, folder = lab
    home = tmp_path / "cli-home"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([EXE, *args, "--home", str(home)], capture_output=True,
                              text=True, check=False)

    subprocess.run([EXE, "init", str(home)], check=True, capture_output=True)
    (tmp_path / "plan.txt").write_text("analysis plan")
    assert run("protocol", "register", str(tmp_path / "plan.txt"), "--name", "plan-a",
               "--param", "threshold=0.5").returncode == 0
    assert run("ingest", "--protocol", "plan-a", str(folder)).returncode == 0
    assert run("ingest", "--protocol", "no-such", str(folder)).returncode == 2
    uid = str(dcmread(folder / "slice-0001.dcm").SeriesInstanceUID)
    added = run("note", "add", "--about", uid, "--json", NOTE.decode())
    index = json.loads(added.stdout)["index"]
    size = json.loads(run("checkpoint", "--json").stdout)["tree_size"]
    assert run("note", "show", str(index)).stdout.strip() == NOTE.decode()
    read = json.loads(run("show", str(size), "--json").stdout)["entry"]
    assert (read["kind"], read["body"]["target"]) == ("access.recorded", f"note.added/{index}")
    assert run("consent", "grant", "--patient", "PAT-9").returncode == 0
    shown = json.loads(run("consent", "show", "--patient", "PAT-9", "--json").stdout)
    assert shown["in_force"] is True
    assert run("correct", str(index), "--reason", "typo").returncode == 0
    assert run("result", "record", "--about", str(index), "--file",
               str(tmp_path / "plan.txt"), "--metric", "auc=0.8").returncode == 0
    patient = str(dcmread(folder / "slice-0001.dcm").PatientID)
    erased = run("erase", "--patient", patient, "--reason", "request")
    assert erased.returncode == 0 and "1 commitment" in erased.stdout
    assert "erased" in run("note", "show", str(index)).stdout
    assert run("verify").returncode == 0
    bad = run("note", "add", "--about", "1.2.3", "text")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_a_derivation_registers_its_outputs_and_links_both_sides(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from radledger.ledger.derive import Derivation, record_derivation, resolve_inputs  # noqa: PLC0415
    from radledger.ledger.history import history  # noqa: PLC0415

    home, space, folder = lab
    _ingest(home, space, folder)
    series_uid = str(dcmread(folder / "slice-0001.dcm").SeriesInstanceUID)
    inputs = resolve_inputs(space, [series_uid])
    assert len(inputs) == 3
    assert resolve_inputs(space, [str(folder / "slice-0002.dcm")]) == [inputs[1]]
    out = tmp_path / "out"
    write_study(out, next(fake_patients(2)), Acquisition(slices=1, rows=16, columns=16, seed=9))
    mask = out / "mask.nii"
    mask.write_bytes(b"\x5c\x01\x00\x00 not really NIfTI")
    with pytest.raises(InputError, match="unknown operation"):
        record_derivation(space, home.actor_signer, Derivation("paint", "x", "1"), inputs,
                          [mask])
    before = space.ledger.store.entry_count()
    receipt, recorded = record_derivation(
        space, home.actor_signer, Derivation("segment", "nnU-Net", "2.5", b'{"fold": 0}'),
        inputs, [out / "slice-0001.dcm", mask])
    assert receipt.index == before + 1  # the DICOM output first, then the derivation
    body = _entry(space, receipt.index)["body"]
    assert body["inputs"] == inputs and body["outputs"] == recorded
    assert recorded[0] == {"index": before}
    assert recorded[1]["file_sha256"] == __import__("hashlib").sha256(
        mask.read_bytes()).hexdigest()
    assert _entry(space, before)["body"]["source"]["type"] == "derivation"
    timeline = [i for i, _ in history(space, series_uid)[0]]
    assert receipt.index in timeline  # reached from the inputs through refs
    with pytest.raises(NotRegistered):
        resolve_inputs(space, [str(mask)])


def _deidentified_copies(home: LedgerHome, space: Workspace, folder: Path, out: Path
                         ) -> tuple[list[int], list[int]]:
    """Ingest ``folder`` and record a de-identification of each file (done here by an
    'external tool': new UIDs, the patient replaced), as `derive --op deidentify` would."""
    from radledger.ledger.derive import Derivation, record_derivation  # noqa: PLC0415

    originals = _ingest(home, space, folder)
    out.mkdir()
    copies = []
    for index, path in zip(originals, sorted(folder.iterdir()), strict=True):
        ds = dcmread(path)
        ds.PatientName, ds.PatientID = "ANON", "ANON-1"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{index}1"
        ds.save_as(out / path.name)
        _, recorded = record_derivation(space, home.actor_signer, Derivation(
            "deidentify", "external-tool", "1.0"), [index], [out / path.name])
        copies.append(recorded[0]["index"])  # type: ignore[index]
    return originals, copies


def test_a_release_checks_consent_and_de_identification(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from radledger.ledger import release  # noqa: PLC0415

    home, space, folder = lab
    originals, copies = _deidentified_copies(home, space, folder, tmp_path / "deid")
    assert release.prefer_deidentified(space, originals) == copies
    patient_id = str(dcmread(folder / "slice-0001.dcm").PatientID)
    plan = release.ReleasePlan("trial-42", "1.0", copies, "trial-42")
    with pytest.raises(ReleaseRefused, match="no consent") as refused:
        release.create_release(space, home.actor_signer, plan)
    assert set(refused.value.members) == set(copies)
    grant = trail.record_consent(space, home.actor_signer,
                                 trail.Consent(patient_id, "trial-42", True))
    with pytest.raises(ReleaseRefused, match="identified"):
        release.create_release(space, home.actor_signer, release.ReleasePlan(
            "internal", "1", originals, "trial-42"))
    receipt = release.create_release(space, home.actor_signer, plan)
    body = _entry(space, receipt.index)["body"]
    assert [m["index"] for m in body["members"]] == copies
    assert body["manifest_root"] == release.manifest_root(body["members"])
    assert body["consent"]["in_force"] == 3 and grant.index in _entry(
        space, receipt.index)["refs"]
    with pytest.raises(InputError, match="exists already"):
        release.create_release(space, home.actor_signer, plan)
    trail.record_consent(space, home.actor_signer, trail.Consent(patient_id, "trial-42", False))
    later = release.ReleasePlan("trial-42", "2.0", copies, "trial-42")
    with pytest.raises(ReleaseRefused, match="no consent"):
        release.create_release(space, home.actor_signer, later)
    with pytest.raises(InputError, match="no member is left"):
        release.create_release(space, home.actor_signer, release.ReleasePlan(
            "trial-42", "2.0", copies, "trial-42", exclude_unconsented=True))
    assert verify_ledger(space.ledger.store, home.ledger_verifier, workers=1).ok


def test_history_follows_the_chain_from_protocol_to_release(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from radledger.ledger import release  # noqa: PLC0415
    from radledger.ledger.history import history  # noqa: PLC0415

    home, space, folder = lab
    protocol = trail.register_protocol(space, home.actor_signer,
                                       trail.Protocol("ct-chest", b"doc"))
    other = tmp_path / "other-study"  # acquired under the same protocol: not in the history
    write_study(other, next(fake_patients(5)), Acquisition(slices=1, rows=8, columns=8, seed=5))
    _ingest(home, space, other, protocol.index)
    originals = _ingest(home, space, folder, protocol.index)
    patient_id = str(dcmread(folder / "slice-0001.dcm").PatientID)
    consent = trail.record_consent(space, home.actor_signer,
                                   trail.Consent(patient_id, "trial-42", True))
    from radledger.ledger.derive import Derivation, record_derivation  # noqa: PLC0415

    out = tmp_path / "deid"
    out.mkdir()
    ds = dcmread(folder / "slice-0001.dcm")
    ds.PatientName, ds.SOPInstanceUID = "ANON", "2.25.99"
    ds.save_as(out / "copy.dcm")
    derivation, recorded = record_derivation(space, home.actor_signer, Derivation(
        "deidentify", "tool", "1"), [originals[0]], [out / "copy.dcm"])
    copy = recorded[0]["index"]  # type: ignore[index]
    note = trail.add_note(space, home.actor_signer, trail.about(space, [str(copy)]), b"ok")
    released = release.create_release(space, home.actor_signer, release.ReleasePlan(
        "r", "1", [copy], "trial-42"))
    kinds = {i: json.loads(d)["kind"] for i, d in history(space, str(ds.StudyInstanceUID))[0]}
    want = {protocol.index, *originals, consent.index, derivation.index, copy, note.index,
            released.index}
    assert want <= set(kinds), sorted(want - set(kinds))
    assert len([k for k in kinds.values() if k == "instance.registered"]) == 4  # not `other`
    # and from the released copy's side, back to the acquisition and its protocol
    back = {i for i, _ in history(space, str(out / "copy.dcm"))[0]}
    assert {protocol.index, originals[0], derivation.index, released.index} <= back


def test_deidentify_records_both_sides_and_holds_burned_in_images(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil  # noqa: PLC0415

    from radledger.dicom.synthetic import pydicom_test_files  # noqa: PLC0415
    from radledger.ledger import release  # noqa: PLC0415
    from radledger.ledger.deid import DeidJob, deidentify_tree  # noqa: PLC0415

    home, space, folder = lab
    shutil.copy(pydicom_test_files() / "examples_rgb_color.dcm", folder / "ultrasound.dcm")
    out = tmp_path / "deid"
    job = DeidJob(folder, out, frozenset({"retain-longitudinal-modified-dates"}))
    outcomes = deidentify_tree(space, home.actor_signer, job, lambda _o: None)
    assert [o.status for o in outcomes] == ["deidentified"] * 4
    flagged = [o for o in outcomes if o.flags]
    assert [Path(o.source).name for o in flagged] == ["ultrasound.dcm"]
    for o in outcomes:
        assert o.output is not None and Path(o.output).is_file()
        assert Path(o.output).relative_to(out).parts[0].startswith("2.25.")  # new UIDs only
        source, copy = (_entry(space, i)["body"] for i in (o.source_index, o.output_index))
        assert copy["pixel_sha256"] == source["pixel_sha256"]  # the link to acquisition
        assert copy["source"]["type"] == "deidentify"
        derivation = _entry(space, o.derivation)  # type: ignore[arg-type]
        assert derivation["body"]["inputs"] == [o.source_index]
        assert derivation["body"]["options"] == ["retain-longitudinal-modified-dates"]
        assert "113100" in derivation["body"]["parameters"]["method_codes"][0]
    size = space.ledger.store.entry_count()
    deidentify_tree(space, home.actor_signer, job, lambda _o: None)
    assert space.ledger.store.entry_count() == size  # a re-run records nothing twice
    patient_id = str(dcmread(folder / "slice-0001.dcm").PatientID)
    us_patient = str(dcmread(folder / "ultrasound.dcm").PatientID)
    for pid in (patient_id, us_patient):
        trail.record_consent(space, home.actor_signer, trail.Consent(pid, "s", True))
    copies = [o.output_index for o in outcomes if o.output_index is not None]
    with pytest.raises(ReleaseRefused, match="burned-in"):
        release.create_release(space, home.actor_signer,
                               release.ReleasePlan("r", "1", copies, "s"))
    release.create_release(space, home.actor_signer,
                           release.ReleasePlan("r", "1", copies, "s", include_burned_in=True))
    with pytest.raises(InputError, match="inside it"):
        deidentify_tree(space, home.actor_signer, DeidJob(folder, folder / "x"), lambda _o: None)


def test_release_members_from_a_file_or_all_de_identified(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, folder = lab
    home = tmp_path / "cli-home"

    def run(*args: str, code: int = 0) -> str:
        done = subprocess.run([EXE, *args, "--home", str(home)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == code, done.stderr
        return done.stdout

    subprocess.run([EXE, "init", str(home)], check=True, capture_output=True)
    out = json.loads(run("deidentify", str(folder), str(tmp_path / "deid"), "--json"))
    copies = [f["output"] for f in out["files"]]
    run("consent", "grant", "--patient", str(dcmread(folder / "slice-0001.dcm").PatientID))
    listing = tmp_path / "members.txt"
    listing.write_text("\n".join(copies[:2]) + "\n")
    first = json.loads(run("release", "create", "r", "--version", "1", "--from-file",
                           str(listing), "--json"))
    assert first["members"] == 2
    every = json.loads(run("release", "create", "r", "--version", "2", "--all", "--json"))
    assert every["members"] == 3
    run("release", "create", "r", "--version", "3", "--all", "--study", "1.2", code=2)
