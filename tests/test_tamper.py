"""RELIABILITY 9-11: someone with write access to the database alters history.

Each case bypasses radledger (triggers dropped, raw SQL) and asserts that verify names the
first bad index or block, with evidence.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from radledger.core.checkpoint import Checkpoint, sign_checkpoint
from radledger.core.ed25519 import SigningKey
from radledger.core.merkle import leaf_hash
from radledger.core.note import Signer
from radledger.errors import RollbackError, SignatureError
from radledger.ledger import proofs
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Ledger
from radledger.ledger.setup import init_ledger, open_ledger
from radledger.ledger.verify import VerifyReport, verify_ledger

from helpers import qc, raw_db


@pytest.fixture()
def made(tmp_path: Path) -> tuple[LedgerHome, Ledger]:
    home, ledger = init_ledger(tmp_path / "home", origin="example.org/lab", actor_name="alice")
    for block in range(4):  # entries 2..41 in blocks 1..4
        ledger.append_drafts([qc(block * 10 + i) for i in range(10)], home.actor_signer)
    return home, ledger


def _verify(home: LedgerHome) -> VerifyReport:
    _, ledger = open_ledger(home.path)
    return verify_ledger(ledger.store, home.ledger_verifier, workers=1)


def _flip_byte(conn: sqlite3.Connection) -> None:
    (data,) = conn.execute("SELECT data FROM entries WHERE idx = 17").fetchone()
    conn.execute("UPDATE entries SET data = ? WHERE idx = 17", (data.replace(b'"n":', b'"m":'),))


def _flip_byte_and_fix_leaf(conn: sqlite3.Connection) -> None:
    (data,) = conn.execute("SELECT data FROM entries WHERE idx = 17").fetchone()
    new = data.replace(b'"n":15', b'"n":16')
    assert new != data
    conn.execute("UPDATE entries SET data = ?, leaf_hash = ? WHERE idx = 17",
                 (new, leaf_hash(new)))


def _delete_row(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM entries WHERE idx = 17")


def _swap_rows(conn: sqlite3.Connection) -> None:
    a = conn.execute("SELECT kind, leaf_hash, data FROM entries WHERE idx = 17").fetchone()
    b = conn.execute("SELECT kind, leaf_hash, data FROM entries WHERE idx = 23").fetchone()
    conn.execute("DELETE FROM entries WHERE idx IN (17, 23)")
    conn.execute("INSERT INTO entries VALUES (17, ?, ?, ?)", b)
    conn.execute("INSERT INTO entries VALUES (23, ?, ?, ?)", a)


def _insert_entry(conn: sqlite3.Connection) -> None:
    (kind, leaf, data) = conn.execute(
        "SELECT kind, leaf_hash, data FROM entries WHERE idx = 41").fetchone()
    new = data.replace(b'"n":', b'"k":')
    conn.execute("INSERT INTO entries VALUES (42, ?, ?, ?)", (kind, leaf_hash(new), new))


def _alter_node(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 5")


def _replace_checkpoint(conn: sqlite3.Connection) -> None:
    (note,) = conn.execute("SELECT note FROM checkpoints WHERE height = 2").fetchone()
    cp = Checkpoint("example.org/lab", 22, bytes(32))
    forged = sign_checkpoint(cp, Signer("example.org/lab", SigningKey.generate()))
    conn.execute("UPDATE checkpoints SET note = ? WHERE height = 2", (forged,))


def _time_backwards(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE blocks SET sealed_time = 0 WHERE height = 3")


def _block_root(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE blocks SET root_hash = zeroblob(32) WHERE height = 3")


def _kind_column(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE entries SET kind = 'x-other' WHERE idx = 30")


def _hide_key_entry(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE entries SET kind = 'x-lab.qc-check' WHERE idx = 1")


CASES: list[tuple[str, Callable[[sqlite3.Connection], None], str, int]] = [
    # name, tamper, what the first problem names ("index"/"block"), which
    ("flip-byte", _flip_byte, "index", 17),
    ("flip-byte-and-fix-leaf-hash", _flip_byte_and_fix_leaf, "index", 17),
    ("delete-row", _delete_row, "index", 17),
    ("swap-two-entries", _swap_rows, "index", 17),
    ("insert-unsealed-entry", _insert_entry, "index", 42),
    ("alter-tree-node", _alter_node, "index", 20),
    ("kind-column", _kind_column, "index", 30),
    ("hide-key-entry", _hide_key_entry, "index", 1),
    ("replace-checkpoint", _replace_checkpoint, "block", 2),
    ("time-backwards", _time_backwards, "block", 3),
    ("block-root", _block_root, "block", 3),
]


@pytest.mark.parametrize(("tamper", "where", "which"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_verify_names_the_first_bad_place(made: tuple[LedgerHome, Ledger],
                                          tamper: Callable[[sqlite3.Connection], None],
                                          where: str, which: int) -> None:
    home, _ = made
    assert _verify(home).ok
    tamper(raw_db(home.database))
    report = _verify(home)
    assert not report.ok
    if where == "index":
        assert report.first_bad_index() == which, report.problems
    else:
        assert report.first_bad_index() is None, report.problems
    named = [p for p in report.problems if getattr(p, where) == which]
    assert named and named[0].what


def test_evidence_carries_expected_and_computed(made: tuple[LedgerHome, Ledger]) -> None:
    home, _ = made
    _alter_node(raw_db(home.database))
    problem = _verify(home).problems[0]
    assert problem.expected == bytes(32) and isinstance(problem.computed, bytes)
    assert problem.computed != bytes(32)


def test_truncated_tail_is_caught_against_a_held_checkpoint(
        made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    held = ledger.store.checkpoint()
    assert held is not None
    conn = raw_db(home.database)
    conn.execute("DELETE FROM checkpoints WHERE height = 4")
    conn.execute("DELETE FROM blocks WHERE height = 4")
    conn.execute("DELETE FROM entries WHERE idx >= 32")
    conn.execute("DELETE FROM nodes WHERE (idx + 1) << level > 32")
    assert _verify(home).ok  # consistent truncation cannot be seen from inside
    _, reopened = open_ledger(home.path)
    with pytest.raises(RollbackError, match="rolled back") as caught:
        proofs.check_against(reopened.store, held, home.ledger_verifier, home.origin)
    assert (caught.value.expected, caught.value.computed) == (42, 32)
    assert held in str(caught.value)  # the evidence: both signed checkpoints


def test_history_rewritten_and_resigned_with_the_real_key(
        made: tuple[LedgerHome, Ledger], tmp_path: Path) -> None:
    home, ledger = made
    backup = tmp_path / "backup.sqlite3"
    held_small = ledger.store.checkpoint()
    ledger.store.close()
    shutil.copy(home.database, backup)
    _, ledger = open_ledger(home.path)
    ledger.append_drafts([qc(100 + i) for i in range(5)], home.actor_signer)
    held = ledger.store.checkpoint()
    assert held is not None and held_small is not None
    ledger.store.close()
    # the operator restores the old database and writes a different history, re-signed
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home.database}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, home.database)
    _, ledger = open_ledger(home.path)
    ledger.append_drafts([qc(200 + i) for i in range(8)], home.actor_signer)
    assert verify_ledger(ledger.store, home.ledger_verifier, workers=1).ok
    proofs.check_against(ledger.store, held_small, home.ledger_verifier, home.origin)
    with pytest.raises(RollbackError, match="rewritten") as caught:
        proofs.check_against(ledger.store, held, home.ledger_verifier, home.origin)
    assert held in str(caught.value)


def test_checkpoint_from_another_ledger_is_not_accepted_as_held(
        made: tuple[LedgerHome, Ledger], tmp_path: Path) -> None:
    home, ledger = made
    other_home, other = init_ledger(tmp_path / "other", origin="example.org/lab")
    note = other.store.checkpoint()
    assert note is not None
    with pytest.raises(SignatureError):
        proofs.check_against(ledger.store, note, home.ledger_verifier, home.origin)
