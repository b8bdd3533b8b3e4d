"""`make run`'s demo: a ledger over sample DICOM, verified; a second run adds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from radledger.demo import main
from radledger.ledger.setup import open_ledger


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom warns about odd but readable sample files; that is not a test failure."""


def test_demo_builds_a_verified_ledger_over_sample_dicom_and_is_idempotent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "demo-home"
    assert main(["demo", str(home), "--no-serve"]) == 0
    first = capsys.readouterr().out
    assert "verify: ok" in first and " 0 modified, 0 missing" in first
    assert "rejected" in first and "try next" in first
    assert "released demo-release 1" in first
    assert "reviewer bundle" in first and "VERIFIED: 40 of 40 images" in first
    assert "protocol.registered" in first and "derivation.recorded" in first  # the history
    size = open_ledger(home)[1].store.entry_count()
    assert size > 200  # 80 generated slices and the valid pydicom test files
    assert main(["demo", str(home), "--no-serve"]) == 0
    second = capsys.readouterr().out
    assert ": 0 registered, 0 new versions," in second
    assert open_ledger(home)[1].store.entry_count() == size
