"""A research story from the command line, end to end (issue 4): protocol, ingest,
de-identify, segment, note, result, consent for two patients, one withdrawn, release, erasure
of the withdrawn patient; then verify passes, and history, PROV and FHIR show every step with
no patient data in them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from radledger.dicom.synthetic import Acquisition, canary_patient, write_study

EXE = Path(sys.executable).parent / "radledger"
CANARIES = ("CANARYSTORYA", "CANARYSTORYB")


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom may warn while the study is written; that is not a test failure."""


def test_the_whole_research_story(tmp_path: Path) -> None:  # noqa: PLR0915 - one story
    home = tmp_path / "lab"

    def rl(*args: str, code: int = 0) -> str:
        done = subprocess.run([EXE, *args, "--home", str(home)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        outputs.append(done.stdout + done.stderr)
        return done.stdout

    outputs: list[str] = []
    subprocess.run([EXE, "init", str(home)], check=True, capture_output=True)
    acquired = tmp_path / "acquired"
    for n, canary in enumerate(CANARIES):
        write_study(acquired / f"study-{n + 1}", canary_patient(canary),
                    Acquisition(modality="MR", slices=2, rows=16, columns=16, seed=n,
                                private_text=f"{canary} PRIVATE"))
    first, second = (dcmread(acquired / f"study-{n}" / "slice-0001.dcm") for n in (1, 2))
    (tmp_path / "protocol.pdf").write_bytes(b"%PDF-1.7 brain MR protocol v1")
    rl("protocol", "register", str(tmp_path / "protocol.pdf"), "--name", "brain-mr",
       "--modality", "MR", "--param", "field_strength_T=3")
    rl("ingest", "--protocol", "brain-mr", str(acquired))
    deid = tmp_path / "deid"
    report = json.loads(rl("deidentify", str(acquired), str(deid), "--option",
                           "retain-longitudinal-modified-dates", "--json"))
    assert report["deidentified"] == 4 and report["rejected"] == 0
    copy = next(f["output"] for f in report["files"]
                if Path(f["source"]).parent.name == "study-1")
    (tmp_path / "mask.nii").write_bytes(b"segmentation mask of the first study")
    (tmp_path / "params.json").write_text('{"model": "brain-seg", "fold": 0}')
    segmented = json.loads(rl("derive", "--op", "segment", "--input", copy, "--output",
                              str(tmp_path / "mask.nii"), "--tool", "brain-seg",
                              "--tool-version", "2.1", "--params",
                              str(tmp_path / "params.json"), "--json"))
    rl("note", "add", "--about", str(first.StudyInstanceUID),
       f"slight motion; {CANARIES[0]} NOTE TEXT")
    rl("result", "record", "--about", str(segmented["index"]), "--file",
       str(tmp_path / "mask.nii"), "--metric", "volume_ml=3.4")
    for patient in (first.PatientID, second.PatientID):
        rl("consent", "grant", "--patient", str(patient), "--scope", "trial-42")
    rl("consent", "withdraw", "--patient", str(second.PatientID), "--scope", "trial-42")
    refused = rl("release", "create", "trial-42", "--version", "1", "--study",
                 str(first.StudyInstanceUID), "--study", str(second.StudyInstanceUID),
                 "--scope", "trial-42", code=2)
    assert refused == ""
    released = json.loads(rl("release", "create", "trial-42", "--version", "1", "--study",
                             str(first.StudyInstanceUID), "--study",
                             str(second.StudyInstanceUID), "--scope", "trial-42",
                             "--exclude-unconsented", "--json"))
    assert released["members"] == 2 and len(released["consent"]["excluded_unconsented"]) == 2
    erased = json.loads(rl("erase", "--patient", str(second.PatientID), "--reason",
                           "withdrawal and erasure request", "--json"))
    bundle = tmp_path / "trial-42.rlbundle"
    rl("bundle", "create", "--release", "trial-42@1", "-o", str(bundle), "--files-root",
       str(deid))
    vkey = rl("key", "show").strip()
    review = subprocess.run([EXE, "bundle", "verify", str(bundle), "--data", str(deid),
                             "--trust-key", vkey, "--json"], capture_output=True, text=True,
                            check=False)  # a reviewer: no ledger home
    assert review.returncode == 0, review.stderr
    reviewed = json.loads(review.stdout)
    assert reviewed["ok"] and reviewed["summary"].startswith(
        "2 of 2 images verified back to acquisition under protocol brain-mr")
    outputs.append(bundle.read_text())  # the bundle too must hold no identifier
    assert rl("verify").startswith("ok")
    assert "0 modified, 0 missing" in rl("verify", "--data", str(deid))

    kinds = [e["entry"]["kind"] for e in json.loads(
        rl("history", str(first.StudyInstanceUID), "--json"))["entries"]]
    for kind in ("protocol.registered", "instance.registered", "derivation.recorded",
                 "note.added", "result.recorded", "consent.granted", "dataset.released"):
        assert kind in kinds, kind
    assert kinds.count("derivation.recorded") == 3  # two de-identifications and the segmentation
    second_kinds = [e["entry"]["kind"] for e in json.loads(
        rl("history", str(second.StudyInstanceUID), "--json"))["entries"]]
    for kind in ("consent.withdrawn", "erasure.recorded"):
        assert kind in second_kinds, kind
    assert erased["kind"] == "erasure.recorded"
    prov = json.loads(rl("export", "prov", str(first.StudyInstanceUID)))
    assert len(prov["activity"]) >= 3 and "hadMember" in prov
    fhir = json.loads(rl("export", "fhir"))
    types = {e["resource"]["resourceType"] for e in fhir["entry"]}
    assert types == {"Provenance", "AuditEvent"}

    identifiers = [*CANARIES, *(str(ds.get(k)) for ds in (first, second) for k in (
        "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))]
    # the first patient's note text is kept, by design, in the side store (erasable)
    database = b"".join(p.read_bytes() for p in home.glob("*.sqlite3*")).decode("latin-1")
    places = {"outputs": "\n".join(outputs),
              "ledger and side store": database.replace(f"{CANARIES[0]} NOTE TEXT", "")}
    for identifier in identifiers:
        for place, text in places.items():
            assert identifier not in text, (identifier, place)
    deid_bytes = b"".join(p.read_bytes() for p in deid.rglob("*.dcm"))
    for identifier in identifiers:
        assert identifier.encode() not in deid_bytes, identifier
