"""Issue 7: `radledger migrate --to postgresql://…` copies an SQLite ledger to PostgreSQL and
proves the copy has the same roots and checkpoints; the home then uses the copy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from radledger.dicom.synthetic import Acquisition, fake_patients, write_study
from radledger.errors import StorageError, VerificationError
from radledger.ledger import trail
from radledger.ledger.home import load_home
from radledger.ledger.migrate import migrate
from radledger.ledger.setup import init_ledger, open_ledger, open_workspace
from radledger.ledger.verify import verify_ledger

from helpers import qc, raw_db

EXE = Path(sys.executable).parent / "radledger"


def _sqlite_lab(tmp_path: Path) -> Path:
    """An SQLite ledger with DICOM, a note (an opening in the side store) and many blocks."""
    home, ledger = init_ledger(tmp_path / "home", "example.org/migrate", "alice")
    space = open_workspace(home, ledger)
    folder = tmp_path / "study"
    write_study(folder, next(fake_patients(1)), Acquisition(slices=4, rows=16, columns=16))
    subprocess.run([str(EXE), "ingest", str(folder), "--home", str(home.path)], check=True,
                   capture_output=True)
    trail.add_note(space, home.actor_signer, trail.about(space, ["2"]), b"note to keep")
    for block in range(30):
        ledger.append_drafts([qc(block * 7 + i) for i in range(7)], home.actor_signer)
    space.side.close()
    ledger.store.close()
    return home.path


def test_migrate_copies_proves_and_switches_the_home(tmp_path: Path, pg_url: str) -> None:
    path = _sqlite_lab(tmp_path)
    before, ledger = open_ledger(path)
    notes = ledger.store.checkpoints(0, 1000)
    size = ledger.store.entry_count()
    ledger.store.close()

    out = subprocess.run([str(EXE), "migrate", "--to", pg_url, "--home", str(path), "--json"],
                         check=True, capture_output=True, text=True)
    report: dict[str, Any] = json.loads(out.stdout)
    assert report["entries"] == size and report["checkpoints"] == len(notes)
    assert report["openings"] == 1 and report["files"] == 4

    home = load_home(path)
    assert home.database_url == pg_url
    _, ledger = open_ledger(path)
    assert ledger.store.checkpoints(0, 1000) == notes  # byte-identical signed checkpoints
    assert verify_ledger(ledger.store, home.ledger_verifier, workers=1).ok
    space = open_workspace(home, ledger)
    note_index = next(i for i, k, _, _ in ledger.store.entries(0, size) if k == "note.added")
    assert trail.read_note(space, note_index) == b"note to keep"  # the opening came along
    (next_receipt,) = ledger.append_drafts([qc(999)], home.actor_signer)
    assert next_receipt.index == size  # the ledger goes on in PostgreSQL
    # the CLI works on the migrated home
    slice_ = tmp_path / "study" / "slice-0001.dcm"
    shown = subprocess.run([str(EXE), "history", str(slice_), "--home", str(path), "--json"],
                           check=False,
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "instance.registered" in shown.stdout
    assert before.database.exists()  # the SQLite file is left as it was
    ledger.store.close()


def test_migrate_refuses_a_target_that_holds_a_ledger(tmp_path: Path, pg_url: str) -> None:
    path = _sqlite_lab(tmp_path)
    init_ledger(tmp_path / "other", "example.org/other", "bob", database_url=pg_url)[1] \
        .store.close()
    with pytest.raises(StorageError, match="already holds a radledger ledger"):
        migrate(load_home(path), pg_url)
    assert load_home(path).database_url is None  # the home still uses SQLite


def test_a_tampered_source_is_not_migrated(tmp_path: Path, pg_url: str) -> None:
    path = _sqlite_lab(tmp_path)
    conn = raw_db(path / "ledger.sqlite3")
    (data,) = conn.execute("SELECT data FROM entries WHERE idx = 40").fetchone()
    conn.execute("UPDATE entries SET data = ? WHERE idx = 40",
                 (data.replace(b'"n":', b'"m":'),))
    conn.close()
    with pytest.raises(VerificationError) as caught:
        migrate(load_home(path), pg_url)
    assert caught.value.index == 40
    assert load_home(path).database_url is None
    with psycopg.connect(pg_url) as pg:  # the failed copy is not mistaken for a ledger
        pg.execute("SELECT 1")
