"""The append path: sequence, integrate, seal; keys; idempotency; proofs from storage."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from radledger.core import jcs, merkle
from radledger.core.checkpoint import open_checkpoint
from radledger.core.entry import Statement, actor_id, parse_entry, sign_entry, signing_input
from radledger.core.note import Signer
from radledger.errors import EntryError, InputError, SignatureError, StorageFull
from radledger.ledger import proofs
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Draft, Ledger, rfc3339
from radledger.ledger.setup import init_ledger, open_ledger
from radledger.ledger.verify import verify_ledger

from helpers import qc, register_key


@pytest.fixture()
def made(tmp_path: Path) -> tuple[LedgerHome, Ledger]:
    return init_ledger(tmp_path / "home", origin="example.org/lab", actor_name="alice")


def test_genesis_registers_ledger_and_actor_keys(made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    keys = ledger.keyring().keys
    ledger_actor = actor_id(home.origin, home.ledger_signer.signing_key.public_key)
    alice = actor_id("alice", home.actor_signer.signing_key.public_key)
    assert keys[ledger_actor].role == "ledger" and keys[ledger_actor].registered_at == 0
    assert keys[alice].role == "actor" and keys[alice].registered_at == 1
    assert ledger.store.entry_count() == 2
    note = ledger.store.checkpoint()
    assert note is not None
    cp = open_checkpoint(note, home.ledger_verifier, origin=home.origin)
    assert cp.tree_size == 2


def test_batch_is_one_block_with_dense_indices(made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    receipts = ledger.append_drafts([qc(i) for i in range(100)], home.actor_signer)
    assert [r.index for r in receipts] == list(range(2, 102))
    latest = ledger.store.latest_block()
    assert latest is not None
    header, _ = latest
    assert (header.height, header.first_index, header.tree_size) == (1, 2, 102)
    leaves = [ledger.store.entry(i)[0] for i in range(102)]  # type: ignore[index]
    assert header.root_hash == merkle.root(leaves)


def test_stored_tree_serves_proofs_for_every_size(made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    for i in range(20):  # 20 blocks of varied sizes
        ledger.append_drafts([qc(i * 10 + j) for j in range(i % 4 + 1)], home.actor_signer)
    size = ledger.store.entry_count()
    leaves = [ledger.store.entry(i)[0] for i in range(size)]  # type: ignore[index]
    for tree_size in (1, 2, 3, 7, 8, 9, size):
        for index in {0, tree_size // 2, tree_size - 1}:
            result = proofs.inclusion(ledger.store, index, tree_size)
            assert result.root == merkle.root(leaves[:tree_size])
            merkle.verify_inclusion(leaves[index], index, tree_size, result.proof, result.root)
    c = proofs.consistency(ledger.store, 5, size)
    merkle.verify_consistency(5, size, c.proof, merkle.root(leaves[:5]), merkle.root(leaves))


def test_proof_arguments_outside_the_tree_are_input_errors(
        made: tuple[LedgerHome, Ledger]) -> None:
    _, ledger = made
    with pytest.raises(InputError, match="not in the tree"):
        proofs.inclusion(ledger.store, 2)
    with pytest.raises(InputError, match="outside the sealed tree"):
        proofs.inclusion(ledger.store, 0, 3)
    with pytest.raises(InputError, match="outside the sealed tree"):
        proofs.consistency(ledger.store, 0, 2)


def test_the_same_signed_entry_twice_is_stored_once(made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    signer = home.actor_signer
    data = sign_entry(Statement("x-lab.qc-check", actor_id("alice", signer.signing_key.public_key),
                                rfc3339(1_700_000_000), {}, {"n": 1}, ()),
                      signer.signing_key.sign)
    first = ledger.append_signed([data])
    again = ledger.append_signed([data, data])
    assert first[0].new and first[0].index == 2
    assert [(r.index, r.new) for r in again] == [(2, False), (2, False)]
    assert ledger.store.entry_count() == 3


def test_client_signed_entry_with_a_bad_signature_is_refused(
        made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    signer = home.actor_signer
    data = sign_entry(Statement("x-lab.qc-check", actor_id("alice", signer.signing_key.public_key),
                                rfc3339(1_700_000_000), {}, {"n": 1}, ()),
                      signer.signing_key.sign)
    forged = data.replace(b'"n":1', b'"n":2')
    with pytest.raises(SignatureError) as caught:
        ledger.append_signed([forged])
    assert caught.value.index == 2
    assert ledger.store.entry_count() == 2


def test_unknown_kind_and_bad_bodies_are_refused_before_anything_is_written(
        made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    with pytest.raises(EntryError, match="unknown kind 'lab.qc'"):
        ledger.append_drafts([qc(1), Draft("lab.qc", {})], home.actor_signer)
    with pytest.raises(EntryError, match="unexpected field 'nme'"):
        ledger.append_drafts([Draft("protocol.registered", {"nme": "x"} | {
            "name": "p", "document_sha256": "0" * 64})], home.actor_signer)
    with pytest.raises(EntryError, match="ref 99 is not an existing entry"):
        ledger.append_drafts([Draft("x-a", {}, refs=(99,))], home.actor_signer)
    assert ledger.store.entry_count() == 2


def test_refs_to_earlier_entries_by_index_and_leaf_hash(made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    (r,) = ledger.append_drafts([qc(1)], home.actor_signer)
    (r2,) = ledger.append_drafts([Draft("x-a", {}, refs=(r.index, r.leaf_hash.hex()))],
                                 home.actor_signer)
    assert r2.index == r.index + 1
    with pytest.raises(EntryError, match="not the leaf hash"):
        ledger.append_drafts([Draft("x-a", {}, refs=("ab" * 32,))], home.actor_signer)


def test_revoked_key_signs_no_more_but_old_signatures_verify(
        made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    bob, _ = register_key(ledger, home, "bob")
    (old,) = ledger.append_drafts([qc(1)], bob)
    bob_id = actor_id("bob", bob.signing_key.public_key)
    ledger.append_drafts([Draft("key.revoked", {"key": bob_id, "reason": "left the lab"})],
                         home.ledger_signer)
    with pytest.raises(SignatureError, match="was revoked at entry 4"):
        ledger.append_drafts([qc(2)], bob)
    report = verify_ledger(ledger.store, home.ledger_verifier, workers=1)
    assert report.ok, report.problems
    assert old.index == 3


def test_rotated_ledger_key_old_checkpoints_keep_verifying(
        made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    new_ledger, _ = register_key(ledger, home, home.origin, role="ledger")
    old_id = actor_id(home.origin, home.ledger_signer.signing_key.public_key)
    ledger.append_drafts([Draft("key.revoked", {"key": old_id, "reason": "rotation"})],
                         home.ledger_signer)
    ledger.ledger_signer = Signer(home.origin, new_ledger.signing_key)
    ledger.append_drafts([qc(1)], home.actor_signer)
    report = verify_ledger(ledger.store, home.ledger_verifier, workers=1)
    assert report.ok, report.problems
    assert report.blocks_checked == 4


def test_only_ledger_keys_register_keys(made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    with pytest.raises(SignatureError, match="must be signed by a ledger key"):
        ledger.append_drafts(
            [Draft("key.registered", {"name": "mallory", "role": "ledger",
                                      "public_key": "A" * 43 + "="})], home.actor_signer)
    assert ledger.store.entry_count() == 2


def test_block_time_never_goes_backwards(tmp_path: Path) -> None:
    times = iter([1000.0, 1000.0, 500.0, 500.0, 2000.0, 2000.0, 2000.0])
    home, ledger = init_ledger(tmp_path / "h", clock=lambda: next(times))
    ledger.append_drafts([qc(1)], home.actor_signer)
    ledger.append_drafts([qc(2)], home.actor_signer)
    blocks = ledger.store.blocks(0, 10)
    assert [b.sealed_time for b, _ in blocks] == [1000, 1000, 2000]


def test_threads_appending_through_one_process_get_dense_indices(tmp_path: Path) -> None:
    home, _ = init_ledger(tmp_path / "h")
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            _, own = open_ledger(home.path)
            for i in range(10):
                own.append_drafts([qc(n * 100 + i)], home.actor_signer)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _, ledger = open_ledger(home.path)
    assert ledger.store.entry_count() == 42
    report = verify_ledger(ledger.store, home.ledger_verifier, workers=1)
    assert report.ok, report.problems
    assert report.blocks_checked == 41


def test_append_only_triggers_refuse_update_and_delete(made: tuple[LedgerHome, Ledger]) -> None:
    home, _ = made
    conn = sqlite3.connect(home.database)
    for statement in ("UPDATE entries SET kind = 'x' WHERE idx = 0",
                      "DELETE FROM entries WHERE idx = 1",
                      "DELETE FROM blocks", "UPDATE checkpoints SET note = ''",
                      "DELETE FROM nodes"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)


def test_signature_splice_equals_full_canonicalization(made: tuple[LedgerHome, Ledger]) -> None:
    home, _ = made
    signer = home.actor_signer
    for subject in ({}, {"study": "a"}, {"subject": "x", "a": ',"subject":"y"'}):
        statement = Statement("x-a", actor_id("alice", signer.signing_key.public_key),
                              rfc3339(1), subject, {"subject": {"v": 1}, "z": [1.5]}, (0,))
        data = sign_entry(statement, signer.signing_key.sign)
        entry = parse_entry(data)
        envelope = entry.envelope() | {"sig": json.loads(data)["sig"]}
        assert data == jcs.canonicalize(envelope)
        assert signing_input(entry, data) == signing_input(entry)


def test_checkpoint_from_the_future_is_a_problem(tmp_path: Path) -> None:
    home, ledger = init_ledger(tmp_path / "h", clock=lambda: 2_000_000_000.0)
    ledger.append_drafts([qc(1)], home.actor_signer)
    report = verify_ledger(ledger.store, home.ledger_verifier, workers=1,
                           now=2_000_000_000 - 3600)
    assert not report.ok
    assert "future" in report.problems[0].what and report.problems[0].block == 0
    later = verify_ledger(ledger.store, home.ledger_verifier, workers=1,
                          now=2_000_000_000)
    assert later.ok


def test_disk_full_leaves_nothing_partial_and_resumes(made: tuple[LedgerHome, Ledger]) -> None:
    home, ledger = made
    conn = ledger.store._conn  # noqa: SLF001 - simulate a full disk with SQLite's page cap
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(StorageFull, match="storage full"):
        ledger.append_drafts([qc(i) for i in range(2000)], home.actor_signer)
    assert ledger.store.entry_count() == 2
    conn.execute("PRAGMA max_page_count = 1073741823")
    receipts = ledger.append_drafts([qc(i) for i in range(2000)], home.actor_signer)
    assert receipts[0].index == 2 and receipts[-1].index == 2001
    report = verify_ledger(ledger.store, home.ledger_verifier, workers=1)
    assert report.ok, report.problems
