"""How the HTTP API serves (issue 6), through the real ASGI app: the C2SP witness endpoint
for a witness home, witnessing after writes in the background (coalesced; a hanging witness
never delays a write), request timeouts (504, the write left whole) and group commit of
concurrent appends. Fixtures and helpers are test_api_data.py's."""

# ruff: noqa: F811 - test arguments name the fixtures imported from test_api_data

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from radledger.api import create_app
from radledger.api.services import ApiOptions, WitnessEndpoint
from radledger.core.cosignature import Cosigner, open_cosignatures
from radledger.core.ed25519 import SigningKey
from radledger.errors import InputError
from radledger.ledger import proofs
from radledger.ledger.home import LedgerHome
from radledger.ledger.setup import open_ledger
from radledger.ledger.witness_server import init_witness_home, make_server, open_witness
from radledger.ledger.witnessing import add_witness, checkpoint_with_cosignatures
from radledger.storage.cosignatures import cosignatures
from test_api import DRAFT, _error
from test_api_data import (  # noqa: F401 - pytest finds the fixtures by these names
    AppApi,
    _entry,
    _quiet_pydicom,
    _size,
    api,
    home,
    running,
    tokens,
)


# -- witnesses --------------------------------------------------------------------------------
def _add_checkpoint_body(home: LedgerHome, old: int) -> bytes:
    _, ledger = open_ledger(home.path)
    try:
        note = checkpoint_with_cosignatures(ledger.store)
        size = proofs.sealed_size(ledger.store)
        proof = proofs.consistency(ledger.store, old, size).proof if 0 < old < size else []
    finally:
        ledger.store.close()
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{note}".encode()


def test_the_api_serves_add_checkpoint_for_a_witness_home(home: LedgerHome, tmp_path: Path,
                                                          tokens: dict[str, str]) -> None:
    cosigner = init_witness_home(tmp_path / "witness", "witness.example.org/w1")
    logs = {home.origin: [home.ledger_verifier]}
    options = ApiOptions(witness=WitnessEndpoint(tmp_path / "witness", logs))
    with running(home, options=options) as api:
        response = api.post("/add-checkpoint", content=_add_checkpoint_body(home, 0))
        assert response.status_code == 200, response.text
        note = checkpoint_with_cosignatures_of(home)
        _, found = open_cosignatures(note + response.text, [cosigner.verifier])
        assert len(found) == 1
        api.post("/entries", tokens["writer"], json=DRAFT)
        stale = api.post("/add-checkpoint", content=_add_checkpoint_body(home, 0))
        assert stale.status_code == 409 and stale.text == "2\n"
        assert stale.headers["content-type"].startswith("text/x.tlog.size")
        grown = api.post("/add-checkpoint", content=_add_checkpoint_body(home, 2))
        assert grown.status_code == 200, grown.text
        bad = api.post("/add-checkpoint", content=b"hello")
        assert bad.status_code == 400 and bad.headers["content-type"].startswith("text/plain")
        assert api.post("/add-checkpoint", content=b"x" * 70_000).status_code == 413
    with running(home) as api:  # without a witness home, there is no such route
        _error(api.post("/add-checkpoint", content=b"old 0\n\n"), 404, "not_found")
    with pytest.raises(InputError, match="no witness key"):
        create_app(home.path, options=ApiOptions(
            witness=WitnessEndpoint(tmp_path / "nowhere", logs)))


def checkpoint_with_cosignatures_of(home: LedgerHome) -> str:
    _, ledger = open_ledger(home.path)
    try:
        return ledger.store.checkpoint() or ""
    finally:
        ledger.store.close()


@contextmanager
def witness_server(tmp_path: Path, home: LedgerHome) -> Iterator[tuple[str, str]]:
    """A real tlog-witness for ``home``'s ledger on loopback: (URL, vkey)."""
    cosigner = init_witness_home(tmp_path / "w", "witness.example.org/bg")
    witness = open_witness(tmp_path / "w", {home.origin: [home.ledger_verifier]})
    server = make_server(witness, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", cosigner.verifier.vkey
    finally:
        server.shutdown()
        server.server_close()
        witness.store.close()


def test_api_writes_are_witnessed_in_the_background_coalesced(
        home: LedgerHome, tokens: dict[str, str], tmp_path: Path) -> None:
    with witness_server(tmp_path, home) as (url, vkey):
        add_witness(home.path, "bg", url, vkey)
        with running(home) as api:
            sync = api.app.state.radledger_services.sync
            responses = api.post_many("/entries", tokens["writer"],
                                      [{**DRAFT, "body": {"n": n}} for n in range(30)])
            assert {r.status_code for r in responses} == {201}
            assert sync.idle(10)
            api.post("/entries", tokens["writer"], json=DRAFT)  # and one more, after
            assert sync.idle(10)
            assert 1 <= sync.rounds <= 31 // 2  # pokes while a round runs are coalesced
            latest = api.get("/checkpoints", tokens["reader"]).json()
            assert latest["tree_size"] == 64
            assert latest["cosigners"] == ["witness.example.org/bg"]
    _, ledger = open_ledger(home.path)
    try:
        assert [c.tree_size for c in cosignatures(ledger.store)][-1] == 64
    finally:
        ledger.store.close()


def test_a_hanging_witness_never_delays_a_write(home: LedgerHome, tokens: dict[str, str]
                                               ) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        vkey = Cosigner("witness.example.org/silent", SigningKey.generate()).verifier.vkey
        add_witness(home.path, "silent", f"http://127.0.0.1:{port}", vkey)
        with running(home, options=ApiOptions(witness_timeout=2.0)) as api:
            for n in range(3):
                started = time.monotonic()
                response = api.post("/entries", tokens["writer"], json={**DRAFT,
                                                                        "body": {"n": n}})
                assert response.status_code == 201
                assert time.monotonic() - started < 1.0
            assert api.app.state.radledger_services.sync.rounds == 1  # still waiting on it


# -- timeouts and group commit ----------------------------------------------------------------
def test_a_request_over_the_time_limit_is_504_and_its_write_stays_whole(
        home: LedgerHome, tokens: dict[str, str]) -> None:
    with running(home, options=ApiOptions(request_timeout=0.3)) as api:
        go = threading.Event()

        def hold_the_writer() -> None:
            with api.ctx.writing():
                go.wait(10)

        holder = threading.Thread(target=hold_the_writer)
        holder.start()
        started = time.monotonic()
        response = api.post("/entries", tokens["writer"], json=DRAFT)
        assert time.monotonic() - started < 2.0
        message = _error(response, 504, "timeout")
        assert "0.3 s" in message and "check before retrying" in message
        go.set()
        holder.join()
        deadline = time.monotonic() + 10
        while _size(home) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        # the write the request started completed, with its access record, and verifies
        assert _size(home) == 4
        assert _entry(api, tokens, 3)["body"]["target"] == "entry/2"
        assert api.post("/verify", tokens["auditor"]).json()["ok"] is True
        assert api.get("/entries/0", tokens["reader"]).status_code == 200  # fast ones pass


def test_concurrent_appends_share_transactions_and_identical_ones_fall_back(
        home: LedgerHome, api: AppApi, tokens: dict[str, str]) -> None:
    group = api.ctx._group  # noqa: SLF001 - the test looks inside
    assert group is not None
    before = group.groups
    bodies = [{**DRAFT, "body": {"n": n}} for n in range(40)]
    responses = api.post_many("/entries", tokens["writer"], bodies)
    assert {r.status_code for r in responses} == {201}
    assert group.groups - before < 40  # fewer transactions than requests
    # identical drafts in one group would be one entry: each is appended alone instead
    same = api.post_many("/entries", tokens["writer"], [DRAFT] * 8)
    assert {r.status_code for r in same} == {201}
    assert len({r.json()["index"] for r in same}) == 8
    for response in same:
        out = response.json()
        assert _entry(api, tokens, out["access_index"])["body"]["target"] == \
            f"entry/{out['index']}"
    bad = api.post_many("/entries", tokens["writer"], [DRAFT, {**DRAFT, "refs": [10 ** 6]}])
    assert sorted(r.status_code for r in bad) == [201, 422]
    assert api.post("/verify", tokens["auditor"]).json()["ok"] is True
    assert _size(home) == 2 + 2 * (40 + 8 + 1)


