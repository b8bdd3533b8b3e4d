"""Witnesses (issue 5; DESIGN section 5; RELIABILITY 7, 10-12, 15): real ``witness serve``
processes on loopback cosign a ledger's growth, keep their state across restarts, and refuse
rollbacks, forks, rewritten histories and split views with the tlog-witness status codes,
while the ledger keeps the refusals as evidence and a down witness never stops appending."""

from __future__ import annotations

import base64
import io
import json
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from radledger.cli.witnesscmds import run as witness_cli
from radledger.core.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from radledger.core.cosignature import open_cosignatures, parse_witness_vkey
from radledger.core.ed25519 import SigningKey
from radledger.core.note import Signer, format_vkey
from radledger.errors import ForkRefused
from radledger.ledger import proofs
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Ledger
from radledger.ledger.setup import init_ledger, open_ledger
from radledger.ledger.witness_server import DATABASE, init_witness_home
from radledger.ledger.witnessing import (
    WitnessConfig,
    add_witness,
    checkpoint_with_cosignatures,
    cosigners,
    load_witnesses,
    sync_witnesses,
    witness_latest,
    witnessed,
)
from radledger.storage.cosignatures import cosignatures, refusals
from radledger.storage.sqlite import SQLiteStore
from radledger.storage.witness_store import WitnessStore

from helpers import qc

ORIGIN = "example.org/site-a"


@dataclass
class WitnessProc:
    home: Path
    vkey: str
    port: int
    logs: list[str]
    proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [sys.executable, "-m", "radledger.cli.witnesscmds", "serve", "--port",
                str(self.port), "--dir", str(self.home)]
        for log in self.logs:
            args += ["--log", log]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ""
        if "listening on http://127.0.0.1:" not in line:
            self.stop()
            pytest.fail(f"witness did not start: {line!r}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
            self.proc = None

    def config(self, name: str) -> WitnessConfig:
        return WitnessConfig(name, self.url, parse_witness_vkey(self.vkey))


@pytest.fixture()
def site(tmp_path: Path) -> tuple[LedgerHome, Ledger]:
    return init_ledger(tmp_path / "site-a", ORIGIN, "alice")


def _log_vkey(home: LedgerHome) -> str:
    return format_vkey(home.origin, home.ledger_signer.signing_key.public_key)


@pytest.fixture()
def start_witnesses(tmp_path: Path) -> Iterator[object]:
    started: list[WitnessProc] = []

    def start(count: int, logs: list[str], port: int = 0) -> list[WitnessProc]:
        out = []
        for _ in range(count):
            home = tmp_path / f"witness-{len(started)}"
            cosigner = init_witness_home(home, f"example.org/w{len(started)}")
            witness = WitnessProc(home, cosigner.verifier.vkey, port, logs)
            started.append(witness)
            witness.start()
            out.append(witness)
        return out

    yield start
    for witness in started:
        witness.stop()


def _configure(home: LedgerHome, witnesses: list[WitnessProc], quorum: int | None = None
               ) -> list[WitnessConfig]:
    for i, w in enumerate(witnesses):
        add_witness(home.path, f"w{i}", w.url, w.vkey, quorum)
    return list(load_witnesses(home.path).witnesses)


def _post(url: str, body: str) -> tuple[int, str, str]:
    request = urllib.request.Request(url + "/add-checkpoint", data=body.encode(),
                                     method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()


def _body(old: int, proof: list[bytes], note: str) -> str:
    return f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof) + \
        "\n" + note


def _statuses(outcomes: list) -> list[str]:  # type: ignore[type-arg]
    return [o.status for o in outcomes]


# -- growth, quorum, restart ----------------------------------------------------------------
@pytest.fixture()
def cli(site: tuple[LedgerHome, Ledger], monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
        capsys: pytest.CaptureFixture[str]):
    """``radledger witness ...`` in this process, on the site's ledger home."""
    monkeypatch.setenv("RADLEDGER_HOME", str(site[0].path))

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["radledger-witness", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = 0
        try:
            witness_cli()
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_growth_is_cosigned_stored_verifiable_and_survives_a_restart(
        site: tuple[LedgerHome, Ledger], start_witnesses, cli) -> None:  # type: ignore[no-untyped-def]
    home, ledger = site
    witnesses = start_witnesses(3, [_log_vkey(home)])
    for i, w in enumerate(witnesses):
        assert cli("add", f"w{i}", w.url, w.vkey, "--quorum", "3")[0] == 0
    code, out, _ = cli("sync", "--json")
    assert code == 0, out
    assert json.loads(out)["witnessed"] is True
    configured = load_witnesses(home.path).witnesses
    for round_ in range(3):
        ledger.append_drafts([qc(round_), qc(round_ + 10)], home.actor_signer)
        outcomes = sync_witnesses(ledger.store, configured)
        assert _statuses(outcomes) == ["cosigned"] * 3, outcomes
        if round_ == 1:  # a witness restarts between two syncs: its state is on disk
            witnesses[0].stop()
            witnesses[0].start()
    size = ledger.store.entry_count()
    assert size == 8
    assert {r.tree_size for r in cosignatures(ledger.store)} == {2, 4, 6, 8}
    assert witnessed(ledger.store, configured, 3)

    note = checkpoint_with_cosignatures(ledger.store)
    assert open_checkpoint(note, home.ledger_verifier, origin=ORIGIN).tree_size == size
    text, found = open_cosignatures(note, [w.verifier for w in configured])
    assert len(found) == 3 and note.count("\u2014 ") == 4
    listed = json.loads(cli("list", "--json")[1])
    assert [w["last_cosigned_size"] for w in listed["witnesses"]] == [size] * 3
    assert listed["witnessed"] is True

    # the restarted witness still holds size 8: a fresh client learns it from the 409
    status, kind, answer = _post(witnesses[0].url, _body(0, [], ledger.store.checkpoint()
                                                              or ""))
    assert (status, kind, answer) == (409, "text/x.tlog.size", f"{size}\n")


# -- the spec's status codes ------------------------------------------------------------------
def test_add_checkpoint_status_codes(site: tuple[LedgerHome, Ledger], start_witnesses  # type: ignore[no-untyped-def]
                                     ) -> None:
    home, ledger = site
    (w,) = start_witnesses(1, [_log_vkey(home)])
    ledger.append_drafts([qc(i) for i in range(5)], home.actor_signer)  # size 7
    note7 = ledger.store.checkpoint() or ""
    ledger.append_drafts([qc(i) for i in range(5, 9)], home.actor_signer)  # size 11
    note11 = ledger.store.checkpoint() or ""
    signer = home.ledger_signer

    assert _post(w.url, "old 0\n")[0] == 400  # no checkpoint
    assert _post(w.url, "old 00\n\n" + note7)[0] == 400  # leading zero
    stranger = Signer("example.org/other", SigningKey.generate())
    other_log = sign_checkpoint(Checkpoint("example.org/other", 1, bytes(32)), stranger)
    assert _post(w.url, _body(0, [], other_log))[0] == 404
    impostor = sign_checkpoint(Checkpoint(ORIGIN, 7, bytes(32)),
                               Signer(ORIGIN, SigningKey.generate()))
    assert _post(w.url, _body(0, [], impostor))[0] == 403
    assert _post(w.url, _body(0, [bytes(32)], note7))[0] == 422  # a proof from 0 is empty

    status, kind, line = _post(w.url, _body(0, [], note7))
    assert status == 200 and line.startswith("\u2014 example.org/w0 ")
    assert open_cosignatures(note7 + line, [parse_witness_vkey(w.vkey)])[1]
    assert _post(w.url, _body(0, [], note11))[:3] == (409, "text/x.tlog.size", "7\n")
    assert _post(w.url, _body(8, [], note11))[:3] == (409, "text/x.tlog.size", "7\n")
    assert _post(w.url, _body(12, [], note11))[0] == 400  # old size above the checkpoint's

    proof = proofs.consistency(ledger.store, 7, 11).proof
    bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    assert _post(w.url, _body(7, bad, note11))[0] == 422
    assert _post(w.url, _body(7, proof[:-1], note11))[0] == 422  # wrong length
    fork = sign_checkpoint(Checkpoint(ORIGIN, 7, b"\x01" * 32), signer)
    status, kind, answer = _post(w.url, _body(7, [], fork))
    assert status == 409 and kind != "text/x.tlog.size" and "fork" in answer
    assert _post(w.url, _body(7, [], note7))[0] == 200  # the same size again: cosigned again

    assert _post(w.url, _body(7, proof, note11))[0] == 200
    rollback = sign_checkpoint(Checkpoint(ORIGIN, 7, bytes(32)), signer)
    assert _post(w.url, _body(11, [], rollback))[0] == 400

    with socket.create_connection(("127.0.0.1", w.port), timeout=10) as conn:
        conn.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 10000000\r\n\r\n")
        assert b" 413 " in conn.recv(200).split(b"\r\n")[0]
    assert _get(w.url + "/add-checkpoint") == 405
    assert _get(w.url + "/elsewhere") == 405

    # requests signed by the log that contradict what was cosigned are kept as evidence
    store = WitnessStore.open_or_create(w.home / DATABASE, "example.org/w0")
    kept = [(status, reason.split(":")[0]) for _, status, reason, _ in store.refused(ORIGIN)]
    store.close()
    assert [status for status, _ in kept] == [422, 422, 422, 409, 400], kept


def _get(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code


def test_the_witness_database_refuses_a_second_root_for_a_size(
        tmp_path: Path) -> None:
    store = WitnessStore.open_or_create(tmp_path / DATABASE, "example.org/w")
    with store.write():
        store.record_cosigned(ORIGIN, 5, b"a" * 32, 1, "note")
        store.record_cosigned(ORIGIN, 5, b"a" * 32, 2, "note")  # same root again: no-op
    with pytest.raises(ForkRefused), store.write():
        store.record_cosigned(ORIGIN, 5, b"b" * 32, 3, "forked note")
    raw = sqlite3.connect(tmp_path / DATABASE)
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("INSERT INTO cosigned VALUES (?, 5, ?, 4, 'x')", (ORIGIN, b"c" * 32))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE cosigned SET root_hash = ?", (b"c" * 32,))
    raw.close()
    assert store.latest(ORIGIN) == (5, b"a" * 32)
    store.close()


# -- rewritten history, split view, down witness ---------------------------------------------
def _rewrite(home: LedgerHome, keep_evidence: bool) -> None:
    """Rebuild the ledger database with another history, re-signed with the real key."""
    forged_path = home.path / "forged.sqlite3"
    store = SQLiteStore.create(forged_path, {"origin": home.origin, "ledger_id": home.ledger_id})
    forged = Ledger(store, home.origin, home.ledger_signer)
    from radledger.ledger.setup import _key_draft  # noqa: PLC0415 - the genesis drafts

    forged.append_drafts([
        _key_draft(home.origin, home.ledger_signer.signing_key.public_key, "ledger"),
        _key_draft(home.actor_signer.name, home.actor_signer.signing_key.public_key, "actor"),
    ], home.ledger_signer)
    forged.append_drafts([qc(100 + i) for i in range(6)], home.actor_signer)
    store.close()
    if keep_evidence:
        raw = sqlite3.connect(forged_path)
        raw.execute("ATTACH ? AS old", (str(home.database),))
        raw.execute("INSERT INTO cosignatures SELECT * FROM old.cosignatures")
        raw.commit()
        raw.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(home.database) + suffix).unlink(missing_ok=True)
    forged_path.rename(home.database)
    for suffix in ("-wal", "-shm"):
        Path(str(forged_path) + suffix).unlink(missing_ok=True)


@pytest.mark.parametrize("keep_evidence", [True, False], ids=["table-kept", "table-scrubbed"])
def test_a_rewritten_ledger_is_refused_by_every_witness_with_evidence(
        site: tuple[LedgerHome, Ledger], start_witnesses, cli, keep_evidence: bool) -> None:  # type: ignore[no-untyped-def]
    home, ledger = site
    witnesses = start_witnesses(2, [_log_vkey(home)])
    configured = _configure(home, witnesses)
    ledger.append_drafts([qc(i) for i in range(3)], home.actor_signer)  # size 5
    assert _statuses(sync_witnesses(ledger.store, configured)) == ["cosigned"] * 2
    held = ledger.store.checkpoint() or ""
    ledger.store.close()

    _rewrite(home, keep_evidence)
    _, rewritten = open_ledger(home.path)
    assert rewritten.store.entry_count() == 8
    if not keep_evidence:  # through the CLI: a refusal is a verification failure, exit 1
        code, out, _ = cli("sync")
        assert code == 1 and out.count("refused (HTTP 422)") == 2, out
        rewritten.store.close()
        _, rewritten = open_ledger(home.path)
        assert len(refusals(rewritten.store)) == 2
        return
    outcomes = sync_witnesses(rewritten.store, configured)
    assert _statuses(outcomes) == ["refused"] * 2
    assert {o.http_status for o in outcomes} == {422}
    assert not witnessed(rewritten.store, configured, 1)

    for refusal in refusals(rewritten.store):
        assert refusal.status == 422 and refusal.old_size == 5 and refusal.tree_size == 8
        # the evidence: the checkpoint sent, signed by the real key, with the failed proof ...
        sent = refusal.request.split("\n\n", 1)[1]
        assert open_checkpoint(sent, home.ledger_verifier, origin=ORIGIN).tree_size == 8
        assert len(refusal.request.split("\n\n", 1)[0].split("\n")) > 1  # old line + proof
        # ... and the earlier checkpoint of size 5 that the witness cosigned, when kept
        if keep_evidence:
            assert refusal.held is not None and refusal.held.startswith(held)
            vkey = parse_witness_vkey(refusal.witness)
            assert open_cosignatures(refusal.held, [vkey])[1]
            assert open_checkpoint(refusal.held, home.ledger_verifier,
                                   origin=ORIGIN).root_hash != open_checkpoint(
                sent, home.ledger_verifier, origin=ORIGIN).root_hash
    assert len(refusals(rewritten.store)) == 2
    rewritten.store.close()


def test_a_split_view_cannot_gather_a_quorum(tmp_path: Path, site: tuple[LedgerHome, Ledger],  # type: ignore[no-untyped-def]
                                             start_witnesses) -> None:
    home_a, ledger_a = site
    witnesses = start_witnesses(3, [_log_vkey(home_a)])
    configured = _configure(home_a, witnesses, quorum=2)
    assert _statuses(sync_witnesses(ledger_a.store, configured)) == ["cosigned"] * 3
    ledger_a.store.close()
    shutil.copytree(home_a.path, tmp_path / "site-b")  # the same key, two futures
    home_a, ledger_a = open_ledger(home_a.path)
    home_b, ledger_b = open_ledger(tmp_path / "site-b")
    ledger_a.append_drafts([qc(1)], home_a.actor_signer)  # size 3
    ledger_b.append_drafts([qc(2), qc(3)], home_b.actor_signer)  # size 4, another history

    # the attacker shows each witness one history ...
    assert _statuses(sync_witnesses(ledger_a.store, configured[:2])) == ["cosigned"] * 2
    assert _statuses(sync_witnesses(ledger_b.store, configured[2:])) == ["cosigned"]
    # ... and each witness then refuses the other one
    assert _statuses(sync_witnesses(ledger_a.store, configured)) == [
        "cosigned", "cosigned", "refused"]
    assert _statuses(sync_witnesses(ledger_b.store, configured)) == [
        "refused", "refused", "cosigned"]
    assert witnessed(ledger_a.store, configured, 2)
    assert not witnessed(ledger_b.store, configured, 2)
    assert len(cosigners(ledger_b.store, configured)) == 1
    assert {r.status for r in refusals(ledger_b.store)} == {422}
    (behind,) = refusals(ledger_a.store)  # w2 had cosigned size 4: A (size 3) is behind
    assert behind.old_size == 4 and "rolled back or forked" in behind.response


def test_a_restored_backup_is_recognised_as_a_rollback(site: tuple[LedgerHome, Ledger],  # type: ignore[no-untyped-def]
                                                       start_witnesses, tmp_path: Path) -> None:
    home, ledger = site
    configured = _configure(home, start_witnesses(2, [_log_vkey(home)]))
    ledger.append_drafts([qc(1)], home.actor_signer)
    assert _statuses(sync_witnesses(ledger.store, configured)) == ["cosigned"] * 2
    ledger.store.close()
    shutil.copy(home.database, tmp_path / "backup.sqlite3")  # closed: the WAL is merged
    home, ledger = open_ledger(home.path)
    ledger.append_drafts([qc(2), qc(3)], home.actor_signer)  # size 5, witnessed
    assert _statuses(sync_witnesses(ledger.store, configured)) == ["cosigned"] * 2
    ledger.store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(home.database) + suffix).unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.sqlite3", home.database)  # the old backup, size 3

    _, restored = open_ledger(home.path)
    outcomes = sync_witnesses(restored.store, configured)
    assert _statuses(outcomes) == ["refused"] * 2
    assert all("rolled back or forked" in o.detail for o in outcomes)
    assert {(r.old_size, r.tree_size) for r in refusals(restored.store)} == {(5, 3)}
    restored.store.close()


def test_a_down_witness_does_not_stop_appending(site: tuple[LedgerHome, Ledger],  # type: ignore[no-untyped-def]
                                                 start_witnesses, tmp_path: Path, cli) -> None:
    home, ledger = site
    (up,) = start_witnesses(1, [_log_vkey(home)])
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    down_home = tmp_path / "down-witness"
    down = WitnessProc(down_home, init_witness_home(down_home, "example.org/down").verifier.vkey,
                       free_port, [_log_vkey(home)])
    configured = _configure(home, [up, down], quorum=2)

    receipts = ledger.append_drafts([qc(1)], home.actor_signer)
    assert receipts[0].index == 2
    outcomes = witness_latest(ledger, home, timeout=2)
    assert _statuses(outcomes) == ["cosigned", "unreachable"]
    assert not witnessed(ledger.store, configured, 2)
    ledger.append_drafts([qc(2)], home.actor_signer)  # appending goes on regardless
    assert ledger.store.entry_count() == 4
    code, out, _ = cli("sync", "--timeout", "2")
    assert code == 3 and "unreachable" in out and "not witnessed" in out

    down.start()
    try:
        assert _statuses(witness_latest(ledger, home.path)) == ["cosigned", "cosigned"]
        assert witnessed(ledger.store, configured, 2)
    finally:
        down.stop()
    assert witness_latest(ledger, tmp_path / "no-such-home") == []


def test_an_older_ledger_gains_the_witness_tables_on_open(site: tuple[LedgerHome, Ledger]
                                                          ) -> None:
    home, ledger = site
    ledger.store.close()
    raw = sqlite3.connect(home.database)
    for name in ("cosignatures", "witness_refusals"):
        raw.execute(f"DROP TABLE {name}")  # drops its triggers too
    raw.commit()
    raw.close()
    _, reopened = open_ledger(home.path)
    assert cosignatures(reopened.store) == [] and refusals(reopened.store) == []
    reopened.store.close()


def test_witness_init_and_key_commands(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    where = str(tmp_path / "w")
    code, out, _ = cli("init", "--dir", where, "--name", "example.org/w", "--json")
    assert code == 0
    vkey = json.loads(out)["vkey"]
    assert parse_witness_vkey(vkey).name == "example.org/w"
    assert cli("key", "--dir", where)[1].strip() == vkey
    assert (tmp_path / "w" / "witness.skey").stat().st_mode & 0o777 == 0o600
    code, _, err = cli("init", "--dir", where)
    assert code == 2 and "already holds a witness key" in err and "Traceback" not in err
    code, _, err = cli("add", "w", "ftp://x", vkey)
    assert code == 2 and "must start with http" in err
    code, _, err = cli("add", "w", "http://127.0.0.1:1", "example.org/w+00000000+AAAA")
    assert code == 2 and err.startswith("error: ")


def test_bundles_carry_and_check_the_cosignatures(site: tuple[LedgerHome, Ledger],  # type: ignore[no-untyped-def]
                                                  start_witnesses) -> None:
    from radledger.core.bundle import Bundle, verify_bundle  # noqa: PLC0415

    home, ledger = site
    witnesses = start_witnesses(2, [_log_vkey(home)])
    configs = _configure(home, witnesses)
    ledger.append_drafts([qc(1)], home.actor_signer)
    sync_witnesses(ledger.store, configs, timeout=10)
    note = checkpoint_with_cosignatures(ledger.store)
    pinned = [parse_witness_vkey(w.vkey) for w in witnesses]

    def check(checkpoint: str, quorum: int, keys: list) -> list[str]:  # type: ignore[type-arg]
        bundle = Bundle(ORIGIN, _log_vkey(home), checkpoint, 0, (), (),
                        tuple(w.vkey for w in witnesses))
        report = verify_bundle(bundle, None, None, quorum, keys)
        return [*report.claims, *report.failures]

    said = check(note, 2, pinned)
    assert any("2 witness(es) cosigned the checkpoint (pinned)" in s for s in said)
    assert not any(s.startswith("witnesses:") for s in said)
    assert any("(not pinned)" in s for s in check(note, 0, []))
    lines = note.rstrip("\n").split("\n")
    lines[-1] = lines[-1][:-6] + ("A" if lines[-1][-6] != "A" else "B") + lines[-1][-5:]
    tampered = "\n".join(lines) + "\n"
    assert any(s.startswith("witnesses:") for s in check(tampered, 1, pinned))
    assert any("0 of the 3 cosignatures required" in s for s in check(
        ledger.store.checkpoint() or "", 3, pinned))


def test_appending_from_the_cli_sends_the_new_checkpoint_to_the_witnesses(
        site: tuple[LedgerHome, Ledger], start_witnesses, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
        capsys: pytest.CaptureFixture[str]) -> None:
    from radledger.cli.main import run  # noqa: PLC0415

    home, ledger = site
    witnesses = start_witnesses(2, [_log_vkey(home)])
    _configure(home, witnesses)
    monkeypatch.setenv("RADLEDGER_HOME", str(home.path))

    def radledger(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["radledger", *args])
        try:
            run()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    assert radledger("append", "--kind", "x-lab.qc-check", "--body", '{"n": 1}') == 0
    size = ledger.store.entry_count()
    assert {row.tree_size for row in cosignatures(ledger.store)} == {size}  # no `sync` run
    assert len(cosignatures(ledger.store, tree_size=size)) == 2
    witnesses[0].stop()  # a witness down: the append still succeeds, with a warning
    capsys.readouterr()
    assert radledger("append", "--kind", "x-lab.qc-check", "--body", '{"n": 2}') == 0
    assert "warning: witness" in capsys.readouterr().err
    assert ledger.store.entry_count() == size + 1
