"""Ingesting DICOM folders (issue 3): one entry per instance, idempotent, new versions
referencing the old, bad files refused by name while the rest go on; then `verify --data`
and `history` over what was ingested."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import ImplicitVRLittleEndian

from radledger.core.entry import parse_entry
from radledger.core.pseudonym import pseudonym
from radledger.dicom.synthetic import Acquisition, fake_patients, write_study
from radledger.errors import InputError, NotRegistered
from radledger.ledger.history import history
from radledger.ledger.ingest import FileOutcome, Ingester, ingest
from radledger.ledger.setup import Workspace, init_ledger, open_ledger, open_workspace
from radledger.ledger.verify import verify_ledger

from bad_dicom import REFUSED, TEST_FILES, polyglot

EXE = Path(sys.executable).parent / "radledger"


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom warns while the tests build odd files; that is not a test failure."""


@pytest.fixture()
def space(tmp_path: Path) -> Workspace:
    home, ledger = init_ledger(tmp_path / "home", "example.org/ingest", "alice")
    return open_workspace(home, ledger)


@pytest.fixture()
def studies(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for n, patient in enumerate(fake_patients(3)):
        write_study(root / f"study-{n}", patient,
                    Acquisition(modality="CT" if n % 2 else "MR", slices=4, rows=32,
                                columns=32, seed=n))
    return root


def run(space: Workspace, *paths: Path, workers: int = 1) -> list[FileOutcome]:
    loaded = open_ledger(space.ledger.store.path.parent)[0]
    outcomes: list[FileOutcome] = []
    ingest(Ingester(space, loaded.actor_signer), list(paths), workers,
           lambda outcome, _size: outcomes.append(outcome))
    return outcomes


def instance_entries(space: Workspace) -> list[tuple[int, dict]]:  # type: ignore[type-arg]
    store = space.ledger.store
    return [(i, json.loads(data)) for i, kind, _, data in store.entries(0, store.entry_count())
            if kind == "instance.registered"]


def test_every_instance_gets_one_entry_with_pseudonyms_and_no_identifiers(
        space: Workspace, studies: Path) -> None:
    outcomes = run(space, studies)
    assert [o.status for o in outcomes] == ["registered"] * 12
    entries = instance_entries(space)
    assert [i for i, _ in entries] == [o.index for o in outcomes]
    first = dcmread(studies / "study-0" / "slice-0001.dcm")
    _, entry = entries[0]
    assert entry["subject"] == {
        "patient": pseudonym(space.project_key, "PatientID", first.PatientID),
        "study": pseudonym(space.project_key, "StudyInstanceUID", first.StudyInstanceUID),
        "series": pseudonym(space.project_key, "SeriesInstanceUID", first.SeriesInstanceUID),
        "instance": pseudonym(space.project_key, "SOPInstanceUID", first.SOPInstanceUID),
    }
    body = entry["body"]
    assert body["attributes"] == {"Rows": 32, "Columns": 32, "SamplesPerPixel": 1,
                                  "BitsAllocated": 16, "BitsStored": 16,
                                  "PixelRepresentation": 1,
                                  "PhotometricInterpretation": "MONOCHROME2"}
    assert body["source"] == {"type": "folder", "path_key": pseudonym(
        space.project_key, "FilePath", str(studies / "study-0" / "slice-0001.dcm"))}
    text = json.dumps([e for _, e in entries])
    for identifier in (first.PatientID, str(first.PatientName), first.StudyInstanceUID,
                       first.SOPInstanceUID, "study-0", first.InstitutionName):
        assert identifier not in text
    assert verify_ledger(space.ledger.store, open_ledger(
        space.ledger.store.path.parent)[0].ledger_verifier, workers=1).ok


def test_ingesting_again_registers_nothing_new(space: Workspace, studies: Path) -> None:
    run(space, studies)
    size = space.ledger.store.entry_count()
    again = run(space, studies, studies / "study-1")  # overlapping arguments too
    assert {o.status for o in again} == {"already-registered"}
    assert space.ledger.store.entry_count() == size


def test_registered_bytes_are_hashed_not_parsed_again(space: Workspace, studies: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run(space, studies)

    def must_not_parse(*_args: object) -> None:
        raise AssertionError("a registered file was parsed again")

    monkeypatch.setattr("radledger.ledger.files.read_instance", must_not_parse)
    again = run(space, studies)
    assert [o.status for o in again] == ["already-registered"] * 12
    assert all(o.index is not None for o in again)


def test_a_copy_elsewhere_is_already_registered(space: Workspace, studies: Path,
                                                tmp_path: Path) -> None:
    run(space, studies)
    size = space.ledger.store.entry_count()
    shutil.copytree(studies / "study-2", tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "dup.dcm").write_bytes(
        (tmp_path / "elsewhere" / "slice-0001.dcm").read_bytes())
    outcomes = run(space, tmp_path / "elsewhere")
    assert {o.status for o in outcomes} == {"already-registered"}
    assert space.ledger.store.entry_count() == size


def test_copies_within_one_batch_become_one_entry(space: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "twins"
    write_study(folder, next(fake_patients(1)), Acquisition(slices=1, rows=16, columns=16))
    shutil.copy(folder / "slice-0001.dcm", folder / "slice-0002.dcm")
    first, second = run(space, folder)
    assert (first.status, second.status) == ("registered", "already-registered")
    assert first.index == second.index is not None
    assert len(instance_entries(space)) == 1


def test_a_changed_file_at_a_known_path_is_a_new_version(space: Workspace,
                                                          studies: Path) -> None:
    run(space, studies)
    path = studies / "study-0" / "slice-0002.dcm"
    ds = dcmread(path)
    ds.SeriesDescription = "axial, re-windowed"
    ds.save_as(path)
    (old,) = [o for o in run(space, path)]
    assert old.status == "new-version" and old.previous is not None
    entry = parse_entry(space.ledger.store.entry(old.index)[1])  # type: ignore[index]
    assert entry.refs == (old.previous,)
    assert space.ledger.store.entry(old.previous) is not None  # the old entry stays


def test_bad_files_are_refused_by_name_and_the_rest_registered(space: Workspace,
                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_study(folder, next(fake_patients(1)), Acquisition(slices=2, rows=16, columns=16))
    for name, (build, _) in REFUSED.items():
        build(folder / name)
    polyglot(folder / "polyglot.dcm")
    (folder / "link.dcm").symlink_to(folder / "slice-0001.dcm")
    outcomes = {Path(o.path).name: o for o in run(space, folder)}
    for name, (_, phrase) in REFUSED.items():
        outcome = outcomes[name]
        assert outcome.status == "rejected", name
        assert outcome.error is not None and phrase in outcome.error, (name, outcome.error)
        assert outcome.error.startswith("DicomError: ") and name in outcome.error
    assert "symbolic link" in (outcomes["link.dcm"].error or "")
    assert outcomes["slice-0001.dcm"].status == outcomes["slice-0002.dcm"].status == "registered"
    flagged = outcomes["polyglot.dcm"]
    assert flagged.status == "registered" and flagged.flags == ("preamble-executable",)
    body = json.loads(space.ledger.store.entry(flagged.index)[1])["body"]  # type: ignore[index]
    assert body["flags"] == ["preamble-executable"]
    assert len(instance_entries(space)) == 3


def test_two_ingests_at_once_register_each_file_once(space: Workspace, studies: Path) -> None:
    home = space.ledger.store.path.parent
    errors: list[BaseException] = []

    def one() -> None:
        try:
            loaded, ledger = open_ledger(home)
            run(open_workspace(loaded, ledger), studies)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    hashes = [e["body"]["file_sha256"] for _, e in instance_entries(space)]
    assert len(hashes) == len(set(hashes)) == 12


def test_worker_processes_give_the_same_fingerprints(space: Workspace, studies: Path,
                                                     tmp_path: Path) -> None:
    run(space, studies, workers=2)
    other_home, other = init_ledger(tmp_path / "other", "example.org/other", "bob")
    other_space = Workspace(other, open_workspace(other_home, other).side, space.project_key)
    run(other_space, studies, workers=1)

    def bodies(s: Workspace) -> list[dict]:  # type: ignore[type-arg]
        return [e["body"] for _, e in instance_entries(s)]

    assert bodies(space) == bodies(other_space)


def test_pydicom_test_files_valid_registered_invalid_refused(space: Workspace) -> None:
    outcomes = run(space, TEST_FILES, workers=2)
    rejected = {Path(o.path).name for o in outcomes if o.status == "rejected"}
    assert {"MR_truncated.dcm", "rtplan_truncated.dcm", "no_meta.dcm", "README.txt",
            "meta_missing_tsyntax.dcm"} <= rejected
    registered = [o for o in outcomes if o.status == "registered"]
    copies = [o for o in outcomes if o.status == "already-registered"]
    assert len(registered) + len(copies) + len(rejected) >= 170
    assert len(registered) >= 150
    assert all(o.error and o.error.startswith("DicomError: ") for o in outcomes
               if o.status == "rejected")


def test_verify_data_names_each_changed_missing_and_unknown_file(tmp_path: Path,
                                                                 studies: Path) -> None:
    home = tmp_path / "cli-home"
    subprocess.run([EXE, "init", str(home)], check=True, capture_output=True)
    done = subprocess.run([EXE, "ingest", "--home", str(home), "--json", str(studies)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["registered"], report["rejected"]) == (12, 0)
    assert {f["status"] for f in report["files"]} == {"registered"}
    clean = subprocess.run([EXE, "verify", "--home", str(home), "--data", str(studies)],
                           capture_output=True, text=True, check=False)
    assert clean.returncode == 0 and "12 ok" in clean.stdout, clean.stderr

    header, pixels, encoding = (studies / "study-0" / f"slice-000{k}.dcm" for k in (1, 2, 3))
    ds = dcmread(header)
    ds.PatientSex = "F" if ds.PatientSex != "F" else "M"
    ds.save_as(header)
    ds = dcmread(pixels)
    image = ds.pixel_array
    image[0, 0] += 1
    ds.PixelData = image.tobytes()
    ds.save_as(pixels)
    ds = dcmread(encoding)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(encoding, enforce_file_format=True)
    (studies / "study-1" / "slice-0004.dcm").unlink()
    (studies / "stray.txt").write_text("not registered")

    done = subprocess.run([EXE, "verify", "--home", str(home), "--data", str(studies),
                           "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    data = json.loads(done.stdout)["data"]
    assert data["counts"] == {"ok": 8, "modified": 3, "missing": 1, "unregistered": 1}
    found = {Path(f["path"]).name + ":" + f["status"]: f.get("changed") for f in data["files"]}
    assert found == {"slice-0001.dcm:modified": ["header"],
                     "slice-0002.dcm:modified": ["pixels"],
                     "slice-0003.dcm:modified": ["encoding"],
                     "slice-0004.dcm:missing": None, "stray.txt:unregistered": None}
    human = subprocess.run([EXE, "verify", "--home", str(home), "--data", str(studies)],
                           capture_output=True, text=True, check=False)
    assert human.returncode == 1
    assert "slice-0002.dcm (pixels changed)" in human.stderr
    assert "MISSING" in human.stderr and "Traceback" not in human.stderr


def test_ingest_cli_names_rejections_and_exits_3(tmp_path: Path, studies: Path) -> None:
    home = tmp_path / "cli-home"
    subprocess.run([EXE, "init", str(home)], check=True, capture_output=True)
    (studies / "notes.txt").write_text("not an image")
    done = subprocess.run([EXE, "ingest", "--home", str(home), str(studies)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 3
    assert "rejected DicomError:" in done.stderr and "notes.txt" in done.stderr
    assert "12 registered" in done.stdout and "1 rejected" in done.stdout
    again = subprocess.run([EXE, "ingest", "--home", str(home), str(studies / "study-0")],
                           capture_output=True, text=True, check=False)
    assert again.returncode == 0
    assert "4 already registered" in again.stdout and "nothing new registered" in again.stdout


def test_history_by_uid_pseudonym_and_path(space: Workspace, studies: Path) -> None:
    run(space, studies)
    path = studies / "study-1" / "slice-0003.dcm"
    ds = dcmread(path)
    by_study, _ = history(space, ds.StudyInstanceUID)
    assert len(by_study) == 4
    by_series, _ = history(space, ds.SeriesInstanceUID)
    assert [i for i, _ in by_series] == [i for i, _ in by_study]
    (only,) = history(space, ds.SOPInstanceUID)[0]
    instance_key = pseudonym(space.project_key, "SOPInstanceUID", ds.SOPInstanceUID)
    assert history(space, instance_key)[0] == [only]
    ds.ImageComments = "edited"
    ds.save_as(path)
    run(space, path)
    timeline = [i for i, _ in history(space, str(path))[0]]
    assert timeline[0] == only[0] and len(timeline) == 2  # old version, then the new one
    with pytest.raises(NotRegistered):
        history(space, "1.2.3.4.5")
    with pytest.raises(InputError):
        history(space, "x" * 5000)


def test_kill_9_during_ingest_loses_no_acknowledged_file(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    for n, patient in enumerate(fake_patients(6)):
        write_study(folder / f"study-{n}", patient,
                    Acquisition(slices=120, rows=16, columns=16, seed=n))
    home = tmp_path / "home"
    subprocess.run([EXE, "init", str(home)], check=True, capture_output=True)
    proc = subprocess.Popen([EXE, "ingest", "--home", str(home), "--json", str(folder)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == '{"files": [\n'
    acked = []
    while len(acked) < 300:  # wait for a few durable batches, then kill mid-run
        line = proc.stdout.readline()
        assert line.startswith(("{", ", {")), f"ingest ended before it was killed: {line!r}"
        acked.append(json.loads(line.removeprefix(", ")))
    proc.kill()
    proc.wait()
    loaded, ledger = open_ledger(home)
    for outcome in acked:
        row = ledger.store.entry(outcome["index"])
        assert row is not None
        body = json.loads(row[1])["body"]
        assert body["source"]["path_key"] == pseudonym(loaded.project_key, "FilePath",
                                                       outcome["path"])
    assert verify_ledger(ledger.store, loaded.ledger_verifier, workers=1).ok
    done = subprocess.run([EXE, "ingest", "--home", str(home), "--json", str(folder)],
                          capture_output=True, text=True, check=False)
    report = json.loads(done.stdout)
    assert report["registered"] + report["already_registered"] == 720
    hashes = [json.loads(d)["body"]["file_sha256"]
              for _, kind, _, d in ledger.store.entries(0, ledger.store.entry_count())
              if kind == "instance.registered"]
    assert len(hashes) == len(set(hashes)) == 720
    assert os.path.exists(home / "side.sqlite3")
    proc.stdout.close()
