"""One storage conformance suite, run against SQLite and PostgreSQL alike (issue 7).

Every test takes the ``backend`` fixture and goes through the same ledger services; only the
way an attacker reaches the raw tables (``Backend.raw``) and where erased bytes could linger
(``Backend.files``) differ. The PostgreSQL cluster is the tests' own (tests/pgcluster.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydicom import dcmread

from radledger.core import merkle
from radledger.core.checkpoint import open_checkpoint
from radledger.dicom.synthetic import Acquisition, fake_patients, write_study
from radledger.errors import StorageError, UnrecognisedDatabase, UnsafeStorage
from radledger.ledger import proofs, trail
from radledger.ledger.home import LedgerHome
from radledger.ledger.ingest import Ingester, ingest
from radledger.ledger.service import Ledger
from radledger.ledger.setup import init_ledger, open_ledger, open_workspace
from radledger.ledger.verify import VerifyReport, verify_ledger
from radledger.storage.postgres import PostgresStore

from helpers import qc, raw_db

EXE = Path(sys.executable).parent / "radledger"
NOTE = b"CANARY-CONFORMANCE-NOTE-k2 right hilum"


@dataclass
class Backend:
    """A ledger home on one backend, and an attacker's way around radledger."""

    name: str
    home: LedgerHome
    ledger: Ledger
    pg_data: Path | None = None

    def raw(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``%s`` placeholders) bypassing radledger and its append-only
        triggers, as someone with write access to the database would."""
        if self.home.database_url is None:
            conn = raw_db(self.home.database)
            try:
                cur = conn.execute(sql.replace("%s", "?"), args)
                return cur.fetchall()
            finally:
                conn.close()
        with psycopg.connect(self.home.database_url, autocommit=True) as pg:
            pg.execute("SET search_path = radledger")
            pg.execute("SET session_replication_role = replica")  # triggers off
            cur = pg.execute(sql.encode(), args)
            return cur.fetchall() if cur.description else []

    def plain(self, sql: str) -> None:
        """Run ``sql`` as an ordinary client, triggers in force."""
        if self.home.database_url is None:
            import sqlite3  # noqa: PLC0415

            conn = sqlite3.connect(self.home.database, isolation_level=None)
            try:
                conn.execute(sql)
            finally:
                conn.close()
            return
        with psycopg.connect(self.home.database_url, autocommit=True) as pg:
            pg.execute("SET search_path = radledger")
            pg.execute(sql.encode())

    def files(self) -> Iterator[Path]:
        """Every file the backend keeps table data in (not the PostgreSQL WAL: see README)."""
        if self.pg_data is None:
            yield from self.home.path.glob("*.sqlite3*")
        else:
            yield from (p for p in (self.pg_data / "base").rglob("*") if p.is_file())


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    url, data = None, None
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        url, data = cluster.create_database(), cluster.data
    home, ledger = init_ledger(tmp_path / "home", "example.org/conformance", "alice",
                               database_url=url)
    made = Backend(request.param, home, ledger, data)
    yield made
    made.ledger.store.close()


def _reopen(b: Backend) -> Ledger:
    b.ledger.store.close()
    _, b.ledger = open_ledger(b.home.path)
    return b.ledger


def _verify(b: Backend) -> VerifyReport:
    return verify_ledger(b.ledger.store, b.home.ledger_verifier, workers=1)


def _fill(b: Backend, blocks: int = 4, per_block: int = 10) -> None:
    for block in range(blocks):  # entries 2..41 in blocks 1..4
        b.ledger.append_drafts([qc(block * per_block + i) for i in range(per_block)],
                               b.home.actor_signer)


# -- append, batch append, reopen ------------------------------------------------------------
def test_append_and_batch_append_are_dense_and_survive_reopening(backend: Backend) -> None:
    (one,) = backend.ledger.append_drafts([qc(0)], backend.home.actor_signer)
    batch = backend.ledger.append_drafts([qc(n) for n in range(1, 301)],
                                         backend.home.actor_signer)
    assert one.index == 2
    assert [r.index for r in batch] == list(range(3, 303))
    ledger = _reopen(backend)
    assert ledger.store.entry_count() == 303
    rows = ledger.store.entries(0, 400)
    assert [r[0] for r in rows] == list(range(303))
    assert rows[150][2] == merkle.leaf_hash(rows[150][3])
    assert ledger.store.find_leaves([batch[7].leaf_hash]) == {batch[7].leaf_hash: 10}


def test_the_same_signed_entry_is_stored_once(backend: Backend) -> None:
    (receipt,) = backend.ledger.append_drafts([qc(1)], backend.home.actor_signer)
    data = backend.ledger.store.entry(receipt.index)
    assert data is not None
    (again,) = backend.ledger.append_signed([data[1]])
    assert (again.index, again.new) == (receipt.index, False)
    assert backend.ledger.store.entry_count() == receipt.index + 1


# -- blocks, checkpoints, proofs --------------------------------------------------------------
def test_every_append_seals_one_block_with_one_signed_checkpoint(backend: Backend) -> None:
    _fill(backend)
    store = backend.ledger.store
    blocks = store.blocks(0, 100)
    assert [h.height for h, _ in blocks] == [0, 1, 2, 3, 4]
    assert [(h.first_index, h.tree_size) for h, _ in blocks][1:] == [
        (2, 12), (12, 22), (22, 32), (32, 42)]
    for (previous, stored_hash), (header, _) in zip(blocks, blocks[1:], strict=False):
        assert header.previous_hash == stored_hash == previous.block_hash()
    notes = store.checkpoints(0, 100)
    assert [size for _, size, _ in notes] == [2, 12, 22, 32, 42]
    latest = open_checkpoint(notes[-1][2], backend.home.ledger_verifier,
                             origin=backend.home.origin)
    assert latest.root_hash == blocks[-1][0].root_hash
    assert _verify(backend).ok


def test_inclusion_and_consistency_proofs_verify_against_checkpoints(backend: Backend) -> None:
    _fill(backend)
    store = backend.ledger.store
    for index, size in ((0, 2), (5, 12), (17, 42), (41, 42), (11, 22)):
        result = proofs.inclusion(store, index, size)
        merkle.verify_inclusion(result.leaf_hash, index, size, result.proof, result.root)
        note = store.checkpoint(size)
        assert note is not None
        assert open_checkpoint(note, backend.home.ledger_verifier,
                               origin=backend.home.origin).root_hash == result.root
    for old, new in ((2, 42), (12, 32), (22, 42)):
        c = proofs.consistency(store, old, new)
        merkle.verify_consistency(old, new, c.proof, c.root1, c.root2)


# -- append-only, tamper detection ----------------------------------------------------------
@pytest.mark.parametrize("sql", [
    "UPDATE entries SET kind = 'x' WHERE idx = 3",
    "DELETE FROM entries WHERE idx = 3",
    "DELETE FROM blocks WHERE height = 1",
    "UPDATE checkpoints SET note = 'x' WHERE tree_size = 2",
    "DELETE FROM nodes WHERE level = 0 AND idx = 0",
])
def test_ordinary_clients_cannot_change_history(backend: Backend, sql: str) -> None:
    _fill(backend, blocks=1)
    with pytest.raises(Exception, match="append-only") as caught:
        backend.plain(sql)
    assert not isinstance(caught.value, AssertionError)
    assert _verify(backend).ok


def _flip(b: Backend) -> None:
    ((data,),) = b.raw("SELECT data FROM entries WHERE idx = 17")
    b.raw("UPDATE entries SET data = %s WHERE idx = 17",
          (bytes(data).replace(b'"n":', b'"m":'),))


def _flip_and_fix_leaf(b: Backend) -> None:
    ((data,),) = b.raw("SELECT data FROM entries WHERE idx = 17")
    new = bytes(data).replace(b'"n":15', b'"n":16')
    assert new != bytes(data)
    b.raw("UPDATE entries SET data = %s, leaf_hash = %s WHERE idx = 17",
          (new, merkle.leaf_hash(new)))


def _delete(b: Backend) -> None:
    b.raw("DELETE FROM entries WHERE idx = 17")


def _node(b: Backend) -> None:
    b.raw("UPDATE nodes SET hash = %s WHERE level = 1 AND idx = 8", (b"\x01" * 32,))


@pytest.mark.parametrize(("tamper", "index"), [
    (_flip, 17), (_flip_and_fix_leaf, 17), (_delete, 17), (_node, None)])
def test_tampering_behind_radledgers_back_is_named(
        backend: Backend, tamper: Callable[[Backend], None], index: int | None) -> None:
    _fill(backend)
    tamper(backend)
    report = _verify(_reopened(backend))
    assert not report.ok
    if index is not None:
        assert report.first_bad_index() == index, report.problems[:3]
    else:
        assert any("node" in p.what for p in report.problems), report.problems[:3]
    problem = report.problems[0]
    assert problem.expected is not None or problem.computed is not None or problem.what


def _reopened(b: Backend) -> Backend:
    _reopen(b)
    return b


# -- side store and erasure -----------------------------------------------------------------
def test_side_store_lookup_files_and_erasure(backend: Backend, tmp_path: Path) -> None:
    space = open_workspace(backend.home, backend.ledger)
    folder = tmp_path / "study"
    write_study(folder, next(fake_patients(1)), Acquisition(slices=3, rows=16, columns=16))
    indices: list[int] = []
    ingest(Ingester(space, backend.home.actor_signer), [folder], 2,  # forked workers
           lambda outcome, _size: indices.append(outcome.index or -1))
    assert len(indices) == 3 and min(indices) > 1
    assert set(space.side.files_under(str(folder)).values()) == set(indices)
    patient_id = dcmread(folder / "slice-0001.dcm").PatientID
    note = trail.add_note(space, backend.home.actor_signer,
                          trail.about(space, [str(indices[0])]), NOTE)
    assert trail.read_note(space, note.index) == NOTE
    proof_before = proofs.inclusion(backend.ledger.store, note.index)

    receipt, erased = trail.erase_patient(space, backend.home.actor_signer, patient_id,
                                          "request of 2026-11-28", "alice")
    assert len(erased) == 1
    assert trail.read_note(space, note.index) is None
    assert space.side.files_under(str(folder)) == {}
    assert receipt.index > note.index
    assert _verify(backend).ok
    merkle.verify_inclusion(proof_before.leaf_hash, proof_before.index,
                            proof_before.tree_size, proof_before.proof, proof_before.root)
    if backend.home.database_url is not None:  # write every dirty page to the table files
        with psycopg.connect(backend.home.database_url, autocommit=True) as pg:
            pg.execute("CHECKPOINT")
    leaks = [p for p in backend.files() if b"CANARY-CONFORMANCE" in p.read_bytes()]
    assert leaks == [], f"erased note text still in {leaks}"
    space.side.close()


# -- crash recovery: kill -9 the client mid-append ------------------------------------------
def _appender(home: LedgerHome) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(EXE), "append", "-", "--home", str(home.path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)


def _feed_until_killed(proc: subprocess.Popen[bytes], after_acks: int) -> list[int]:
    """Stream lines into ``radledger append -`` and SIGKILL it once ``after_acks`` entries
    are acknowledged; returns every acknowledged index."""
    assert proc.stdin is not None and proc.stdout is not None
    acks: list[int] = []

    def feed() -> None:
        try:
            for n in range(100_000):
                proc.stdin.write(json.dumps({"kind": "x-lab.crash", "body": {"n": n}}).encode()
                                 + b"\n")
                if n % 50 == 0:
                    proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    for raw in proc.stdout:
        acks.append(int(raw.split()[0]))
        if len(acks) >= after_acks:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    acks.extend(int(raw.split()[0]) for raw in proc.stdout.read().splitlines() if raw)
    feeder.join(timeout=30)
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except OSError:
            pass  # a broken pipe to the killed process
    return acks


def test_kill_9_mid_append_loses_no_acknowledged_entry(backend: Backend) -> None:
    backend.ledger.store.close()
    for round_ in range(3):
        acks = _feed_until_killed(_appender(backend.home), 300 + 200 * round_)
        _, ledger = open_ledger(backend.home.path)
        size = ledger.store.entry_count()
        assert acks and max(acks) < size
        assert [r[0] for r in ledger.store.entries(0, size)] == list(range(size))
        ledger.store.close()
    _, backend.ledger = open_ledger(backend.home.path)
    assert _verify(backend).ok


# -- concurrency: several processes append at once ------------------------------------------
def test_four_processes_appending_at_once_leave_a_dense_verified_ledger(
        backend: Backend) -> None:
    backend.ledger.store.close()
    lines = b"".join(json.dumps({"kind": "x-lab.concurrent", "body": {"n": n}}).encode() + b"\n"
                     for n in range(150))
    procs = [subprocess.Popen([str(EXE), "append", "-", "--home", str(backend.home.path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(4)]
    outs = []
    threads = []

    def run(p: subprocess.Popen[bytes], tag: int) -> None:
        body = lines.replace(b'{"n":', b'{"p": %d, "n":' % tag)
        outs.append(p.communicate(body, timeout=300))

    for tag, p in enumerate(procs):
        threads.append(threading.Thread(target=run, args=(p, tag)))
        threads[-1].start()
    for t in threads:
        t.join()
    assert all(p.returncode == 0 for p in procs), [err[-300:] for _, err in outs]
    acked = sorted(int(line.split()[0]) for out, _ in outs for line in out.splitlines())
    assert len(acked) == len(set(acked)) == 600
    _, backend.ledger = open_ledger(backend.home.path)
    size = backend.ledger.store.entry_count()
    assert size == 602
    heights = [h.height for h, _ in backend.ledger.store.blocks(0, 10_000)]
    assert heights == list(range(len(heights)))
    assert _verify(backend).ok


# -- what each backend refuses --------------------------------------------------------------
def test_a_database_that_is_not_a_ledger_is_refused(backend: Backend, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    if backend.name == "sqlite":
        other = tmp_path / "other.sqlite3"
        other.write_bytes(b"not a database at all" * 10)
        from radledger.storage.sqlite import SQLiteStore  # noqa: PLC0415

        with pytest.raises(UnrecognisedDatabase):
            SQLiteStore.open(other)
        return
    empty = request.getfixturevalue("pg_cluster").create_database()
    with pytest.raises(UnrecognisedDatabase, match="no radledger ledger"):
        PostgresStore.open(empty)
    assert backend.home.database_url is not None
    with pytest.raises(StorageError, match="already holds a radledger ledger"):
        PostgresStore.create(backend.home.database_url, {"origin": "x", "ledger_id": "y"})


def test_postgresql_without_durable_commits_is_refused(pg_cluster: Any) -> None:
    url = pg_cluster.create_database()
    PostgresStore.create(url, {"origin": "example.org/x", "ledger_id": "1"}).close()
    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as pg:
        pg.execute(f'ALTER DATABASE "{dbname}" SET synchronous_commit = off'.encode())
    with pytest.raises(UnsafeStorage, match="synchronous_commit=off"):
        PostgresStore.open(url)


def test_an_unreachable_server_is_a_typed_error() -> None:
    started = time.monotonic()
    with pytest.raises(StorageError, match="postgresql://127.0.0.1:1/"):
        PostgresStore.open("postgresql://postgres@127.0.0.1:1/nowhere")
    assert time.monotonic() - started < 60


def test_postgresql_server_killed_mid_append_keeps_every_acknowledged_entry(
        tmp_path: Path) -> None:
    """SIGKILL of the PostgreSQL server itself (a power cut, to the server) while a client
    streams appends: after crash recovery every acknowledged entry is there."""
    from pgcluster import PgCluster  # noqa: PLC0415

    cluster = PgCluster()
    cluster.init()
    cluster.start()
    try:
        home, ledger = init_ledger(tmp_path / "home", "example.org/crash", "alice",
                                   database_url=cluster.create_database())
        ledger.store.close()
        proc = _appender(home)
        assert proc.stdout is not None and proc.stdin is not None
        acks: list[int] = []

        def feed() -> None:
            try:
                for n in range(100_000):
                    proc.stdin.write(b'{"kind": "x-lab.crash", "body": {"n": %d}}\n' % n)
                    if n % 20 == 0:
                        proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        for raw in proc.stdout:
            acks.append(int(raw.split()[0]))
            if len(acks) == 400:
                cluster.crash()
                break
        acks.extend(int(raw.split()[0]) for raw in proc.stdout.read().splitlines()
                    if raw.split() and raw.split()[0].isdigit())
        assert proc.wait(timeout=60) != 0  # the client saw its server go
        feeder.join(timeout=30)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass  # a broken pipe to the process that exited
        cluster.start()  # crash recovery from the WAL
        _, ledger = open_ledger(home.path)
        size = ledger.store.entry_count()
        assert max(acks) < size
        assert verify_ledger(ledger.store, home.ledger_verifier, workers=1).ok
        (more,) = ledger.append_drafts([qc(1)], home.actor_signer)
        assert more.index == size
        ledger.store.close()
    finally:
        cluster.stop()


def test_api_tokens_are_shared_and_a_revocation_holds_at_once(backend: Backend) -> None:
    from radledger.errors import InputError  # noqa: PLC0415
    from radledger.ledger.tokens import (  # noqa: PLC0415
        TokenRejected,
        authenticate,
        create_token,
        open_tokens,
        revoke_token,
    )

    one, two = open_tokens(backend.home), open_tokens(backend.home)  # two processes' view
    try:
        token = create_token(one, "ward-7", "writer")
        assert authenticate(two, token).role == "writer"
        with pytest.raises(InputError, match="in force"):
            create_token(two, "ward-7", "reader")
        revoke_token(two, "ward-7")
        with pytest.raises(TokenRejected):
            authenticate(one, token)
        again = create_token(one, "ward-7", "reader")  # a revoked name may be given out again
        assert authenticate(two, again).role == "reader"
        assert [(r.name, r.role, r.revoked_at is None) for r in two.all()] == [
            ("ward-7", "writer", False), ("ward-7", "reader", True)]
        if backend.home.database_url is not None:
            assert not (backend.home.path / "tokens.sqlite3").exists()
    finally:
        one.close()
        two.close()


def test_postgresql_damaged_page_is_storage_corrupt(tmp_path: Path) -> None:
    """RELIABILITY 3 on PostgreSQL: a damaged heap page of the entries table (the cluster
    has data checksums) is reported as StorageCorrupt by reads and refuses appends."""
    from pgcluster import PgCluster  # noqa: PLC0415
    from radledger.errors import StorageCorrupt  # noqa: PLC0415

    cluster = PgCluster()
    cluster.init()
    cluster.start()
    try:
        url = cluster.create_database()
        home, ledger = init_ledger(tmp_path / "home", "example.org/damage", "alice",
                                   database_url=url)
        for block in range(3):
            ledger.append_drafts([qc(block * 50 + i) for i in range(50)], home.actor_signer)
        ledger.store.close()
        with psycopg.connect(url, autocommit=True) as pg:
            (relpath,) = pg.execute(
                "SELECT pg_relation_filepath('radledger.entries')").fetchone() or ("",)
            pg.execute("CHECKPOINT")
        cluster.stop_server()
        heap = cluster.data / relpath
        raw = bytearray(heap.read_bytes())
        raw[4000:4016] = b"\xff" * 16  # inside the first 8 kB page, past its header
        heap.write_bytes(bytes(raw))
        cluster.start()
        with pytest.raises(StorageCorrupt, match="storage corrupt"):
            _, ledger = open_ledger(home.path)
            ledger.store.entries(0, 200)
    finally:
        cluster.stop()
