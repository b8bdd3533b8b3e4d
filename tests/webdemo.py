"""The demo ledger (``make run``'s) that the web UI tests run over, and what they need to
know about it: a token per role, the released study and its copies, a study nobody consented
for. Built once per test module (a few seconds)."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom

from radledger.core.pseudonym import pseudonym
from radledger.demo import main as demo_main
from radledger.dicom.synthetic import fake_patients
from radledger.ledger.home import load_home
from radledger.ledger.setup import open_ledger, open_workspace
from radledger.ledger.tokens import ROLES, create_token, open_tokens


@dataclass(frozen=True)
class Demo:
    """The demo ledger home and its landmarks."""

    home: Path
    tokens: dict[str, str]  # role -> token; each token is named after its role
    study_uid: str  # study-1's real StudyInstanceUID: identified data, released as copies
    study_key: str  # its pseudonym
    release: int  # the demo-release entry
    copies: list[int]  # the de-identified instances it released
    sources: list[int]  # the identified instances they were made from
    unconsented_uid: str  # study-2's StudyInstanceUID: no consent recorded for its patient
    patient_id: str  # study-1's fake PatientID (consent granted)

    def size(self) -> int:
        """The ledger's size now."""
        _, ledger = open_ledger(self.home)
        try:
            return ledger.store.entry_count()
        finally:
            ledger.store.close()

    def copy_files(self) -> dict[int, Path]:
        """Where the released de-identified copies are, by entry index."""
        home, ledger = open_ledger(self.home)
        space = open_workspace(home, ledger)
        try:
            return {i: Path(p) for i, p in space.side.paths_of(self.copies).items()}
        finally:
            space.side.close()
            ledger.store.close()

    def entries(self, start: int) -> list[dict[str, Any]]:
        """The entries from ``start`` on, parsed."""
        _, ledger = open_ledger(self.home)
        try:
            size = ledger.store.entry_count()
            return [json.loads(data) for _, _, _, data in ledger.store.entries(start, size)]
        finally:
            ledger.store.close()


def _uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def build_demo(folder: Path) -> Demo:
    """Run the demo (``--no-serve``) in ``folder``/demo-home and make a token per role."""
    path = folder / "demo-home"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # pydicom warns about odd but readable sample files
        assert demo_main(["demo", str(path), "--no-serve"]) == 0
    home = load_home(path)
    store = open_tokens(home)
    try:
        tokens = {role: create_token(store, role, role) for role in ROLES}
    finally:
        store.close()
    _, ledger = open_ledger(path)
    try:
        rows = ledger.store.entries(0, ledger.store.entry_count())
    finally:
        ledger.store.close()
    entries = {index: json.loads(data) for index, _, _, data in rows}
    release = next(i for i, e in entries.items() if e["kind"] == "dataset.released")
    copies = [m["index"] for m in entries[release]["body"]["members"]]
    sources = sorted(i for e in entries.values() if e["kind"] == "derivation.recorded"
                     for i in e["body"]["inputs"])
    study_uid = _uid(path / "sample-dicom" / "study-1" / "slice-0001.dcm")
    return Demo(path, tokens, study_uid, pseudonym(home.project_key, "StudyInstanceUID",
                                                   study_uid),
                release, copies, sources,
                _uid(path / "sample-dicom" / "study-2" / "slice-0001.dcm"),
                next(fake_patients(1)).patient_id)
