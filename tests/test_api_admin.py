"""Keys, witnesses, public anchors and de-identification over HTTP (issue 6), through the
real ASGI app: each route against the CLI command it mirrors, roles (401, 403), typed errors
in the one shape, the access record of a de-identification, and no PHI canary or source
path in any answer."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from typer.testing import CliRunner

from radledger.cli.main import app as cli
from radledger.core.cosignature import Cosigner
from radledger.core.ed25519 import SigningKey
from radledger.dicom.synthetic import Acquisition, canary_patient, write_study
from radledger.ledger import anchor
from radledger.ledger.home import LedgerHome
from radledger.ledger.ingest import Ingester, ingest
from radledger.ledger.setup import init_ledger, open_ledger, open_workspace
from radledger.ledger.witnessing import add_witness
from test_api import Api, _error
from test_api_data import READERS, ROLES, _tokens, running
from test_api_serving import witness_server

ORIGIN = "example.org/api-admin"
CANARY = "ZZADMINCANARY"

ROUTES = [
    ("GET", "/keys", READERS),
    ("GET", "/witnesses", READERS),
    ("POST", "/witnesses/sync", {"admin"}),
    ("GET", "/anchors", READERS),
    ("POST", "/anchors/push", {"admin"}),
    ("POST", "/anchors/verify", {"admin", "auditor"}),
    ("POST", "/deidentify", {"admin", "writer"}),
]


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom may warn while the tests build files; that is not a test failure."""


@pytest.fixture
def home(tmp_path: Path) -> LedgerHome:
    created, ledger = init_ledger(tmp_path / "home", ORIGIN, "service")
    ledger.store.close()
    return created


@pytest.fixture
def tokens(home: LedgerHome) -> dict[str, str]:
    return _tokens(home)


@pytest.fixture
def api(home: LedgerHome) -> Iterator[Api]:
    with running(home) as started:
        yield started


def _cli_json(home: LedgerHome, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--home", str(home.path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _entry(api: Api, tokens: dict[str, str], index: int) -> dict[str, Any]:
    response = api.get(f"/entries/{index}", tokens["reader"])
    assert response.status_code == 200, response.text
    return dict(response.json()["entry"])


def _size(api: Api, tokens: dict[str, str]) -> int:
    return int(api.get("/checkpoints", tokens["reader"]).json()["tree_size"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- roles ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES)
def test_every_route_wants_a_token_and_a_role_that_grants_it(
        api: Api, tokens: dict[str, str], method: str, path: str, allowed: set[str]) -> None:
    for headers in ({}, {"Authorization": "Bearer rlt_unknown"}):
        _error(api.request(method, path, headers=headers, json={}), 401, "unauthorized")
    for role in sorted(set(ROLES) - allowed):
        message = _error(api.request(method, path, tokens[role], json={}), 403, "forbidden")
        assert role in message
    for role in sorted(allowed):  # past the role check (the body may be refused)
        assert api.request(method, path, tokens[role], json={}).status_code not in (401, 403)


def test_the_routes_are_documented(api: Api) -> None:
    paths = set(api.get("/openapi.json").json()["paths"])
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for method, path, _ in ROUTES:
        assert path in paths
        assert f"`{method} {path}" in readme, path


# -- keys -------------------------------------------------------------------------------------
def test_keys_are_the_cli_key_list(home: LedgerHome, api: Api, tokens: dict[str, str]) -> None:
    _cli_json(home, "key", "add", "bob")
    actor = next(k["actor"] for k in _cli_json(home, "key", "list")
                 if k["actor"].startswith("bob+"))
    _cli_json(home, "key", "revoke", actor, "--reason", "left the lab")
    listed = api.get("/keys", tokens["reader"])
    assert listed.status_code == 200, listed.text
    assert listed.json() == _cli_json(home, "key", "list")
    assert [k["revoked_at"] is not None for k in listed.json() if k["actor"] == actor] == [True]
    for method in ("POST", "DELETE"):  # creation and revocation stay on the server's CLI
        assert api.request(method, "/keys", tokens["admin"], json={}).status_code == 405


# -- witnesses --------------------------------------------------------------------------------
def test_witness_sync_and_list_are_the_cli_commands(home: LedgerHome, tokens: dict[str, str],
                                                     tmp_path: Path) -> None:
    with witness_server(tmp_path, home) as (url, vkey):
        add_witness(home.path, "w1", url, vkey)
        with running(home) as api:
            before = api.get("/witnesses", tokens["reader"]).json()
            assert before["witnessed"] is False
            synced = api.post("/witnesses/sync?timeout=5", tokens["admin"])
            assert synced.status_code == 200, synced.text
            out = synced.json()
            assert [(o["witness"], o["status"]) for o in out["outcomes"]] == [("w1", "cosigned")]
            assert (out["cosigned_latest"], out["quorum"], out["witnessed"]) == (1, 1, True)
            listed = api.get("/witnesses", tokens["reader"]).json()
            assert listed == _cli_json(home, "witness", "list")
            assert listed["witnesses"][0]["cosigned_latest"] is True
            for bad in ("0", "31", "x"):
                _error(api.post(f"/witnesses/sync?timeout={bad}", tokens["admin"]), 422,
                       "invalid_request")


def test_a_witness_that_does_not_answer_is_an_outcome(home: LedgerHome,
                                                      tokens: dict[str, str]) -> None:
    vkey = Cosigner("witness.example.org/gone", SigningKey.generate()).verifier.vkey
    add_witness(home.path, "gone", f"http://127.0.0.1:{_closed_port()}", vkey)
    with running(home) as api:
        out = api.post("/witnesses/sync?timeout=2", tokens["admin"]).json()
        assert [o["status"] for o in out["outcomes"]] == ["unreachable"]
        assert out["witnessed"] is False


# -- anchors ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chain() -> anchor.Chain:
    """An in-process py-evm chain (eth-tester), imported here to keep the recursion limit."""
    limit = sys.getrecursionlimit()
    try:
        from web3 import EthereumTesterProvider, Web3  # noqa: PLC0415

        return anchor.chain_of(Web3(EthereumTesterProvider()), "eth-tester")
    finally:
        sys.setrecursionlimit(limit)


def _funded_home_key(chain: anchor.Chain, home: LedgerHome) -> str:
    address = anchor.write_key(anchor.anchor_key_path(home)).address
    web3 = chain.web3
    tx = web3.eth.send_transaction({"from": web3.eth.accounts[0], "to": address,
                                    "value": 10**18})
    web3.eth.wait_for_transaction_receipt(tx)
    return address


def test_anchor_push_list_and_verify_on_an_in_process_chain(
        home: LedgerHome, tokens: dict[str, str], chain: anchor.Chain,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _funded_home_key(chain, home)
    contract = anchor.deploy_contract(chain, anchor.read_key(anchor.anchor_key_path(home)))
    rpc = "http://chain.test:8545/v3/SECRET-API-KEY"
    # the in-process chain has no URL: the RPC named in the body reaches it through this
    monkeypatch.setattr(anchor, "connect", lambda url, timeout=30.0: chain
                        if url == rpc else pytest.fail(url))
    with running(home) as api:
        assert api.get("/anchors", tokens["reader"]).json() == []
        body = {"rpc": rpc, "contract": contract.address}
        pushed = api.post("/anchors/push", tokens["admin"], json=body)
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["sent"] is True
        receipt = pushed.json()["receipt"]
        assert receipt["tree_size"] == _size(api, tokens)
        again = api.post("/anchors/push", tokens["admin"], json=body).json()
        assert again == {"sent": False, "receipt": receipt}
        assert api.get("/anchors", tokens["reader"]).json() == [receipt]
        assert _cli_json(home, "anchor", "list") == [receipt]
        checked = api.post("/anchors/verify", tokens["auditor"], json={"rpc": rpc})
        assert checked.json() == {"ok": True, "checked": 1, "failures": []}
        not_a_contract = api.post("/anchors/push", tokens["admin"], json={
            "rpc": rpc, "contract": chain.web3.eth.accounts[1]})
        _error(not_a_contract, 422, "not_anchor_contract")


def test_anchor_errors_are_typed_and_keep_the_rpc_secret(home: LedgerHome, api: Api,
                                                         tokens: dict[str, str]) -> None:
    contract = "0x" + "11" * 20
    unreachable = f"http://127.0.0.1:{_closed_port()}/v3/SECRET-API-KEY"
    message = _error(api.post("/anchors/push", tokens["admin"],
                              json={"rpc": unreachable, "contract": contract}), 500, "anchor_key")
    assert "SECRET" not in message and str(home.path) not in message  # no key in the home
    anchor.write_key(anchor.anchor_key_path(home))
    for path, body, token in (
            ("/anchors/push", {"rpc": unreachable, "contract": contract}, "admin"),
            ("/anchors/verify", {"rpc": unreachable}, "auditor")):
        response = api.post(path, tokens[token], json=body)
        assert "SECRET" not in _error(response, 502, "chain_unreachable")
    for body in ({"rpc": "ftp://x/SECRET", "contract": contract},
                 {"rpc": unreachable, "contract": "0x12"},
                 {"rpc": unreachable, "contract": contract, "key": "/etc/passwd"}):
        _error(api.post("/anchors/push", tokens["admin"], json=body), 422, "invalid_request")
    _error(api.post("/anchors/verify", tokens["auditor"],
                    content=b'{"rpc": "http://a", "rpc": "http://b"}'), 400, "invalid_json")


# -- de-identification ------------------------------------------------------------------------
@pytest.fixture
def acquired(home: LedgerHome, tmp_path: Path) -> list[tuple[Path, int]]:
    """Three CT slices of a canary patient, registered from their folder: (path, index)."""
    paths = write_study(tmp_path / "PATIENT-ZZADMINCANARY", canary_patient(CANARY),
                        Acquisition(slices=3, rows=16, columns=16))
    loaded, ledger = open_ledger(home.path)
    found: dict[str, int] = {}
    try:
        ingest(Ingester(open_workspace(loaded, ledger), loaded.actor_signer), paths, 1,
               lambda outcome, _: found.__setitem__(outcome.path, outcome.index or -1))
    finally:
        ledger.store.close()
    return [(p, found[str(p)]) for p in paths]


def test_deidentify_registered_instances_as_the_cli_records_them(
        home: LedgerHome, api: Api, tokens: dict[str, str],
        acquired: list[tuple[Path, int]]) -> None:
    study_uid = str(dcmread(acquired[0][0]).StudyInstanceUID)
    size = _size(api, tokens)
    response = api.post("/deidentify", tokens["writer"], json={"sources": [study_uid]})
    assert response.status_code == 200, response.text
    assert CANARY not in response.text and study_uid not in response.text
    out = response.json()
    assert (out["deidentified"], out["rejected"]) == (3, 0)
    assert [i["source_index"] for i in out["instances"]] == sorted(i for _, i in acquired)
    for item in out["instances"]:
        assert item["status"] == "deidentified"
        source = _entry(api, tokens, item["source_index"])["body"]
        copy = _entry(api, tokens, item["output_index"])
        assert copy["body"]["pixel_sha256"] == source["pixel_sha256"]
        assert copy["body"]["source"]["type"] == "deidentify"
        derivation = _entry(api, tokens, item["derivation"])
        assert derivation["kind"] == "derivation.recorded"
        assert derivation["body"]["operation"] == "deidentify"
        assert derivation["body"]["inputs"] == [item["source_index"]]
        assert derivation["body"]["outputs"] == [{"index": item["output_index"]}]
        written = home.path / item["path"]
        assert item["path"].startswith("deidentified/") and written.is_file()
        assert CANARY.encode() not in written.read_bytes()
    access = _entry(api, tokens, out["access_index"])
    assert access["kind"] == "access.recorded"
    assert access["body"]["on_behalf_of"] == "writer"
    assert access["body"]["action"] == "deidentify"
    appended = set(range(size, out["access_index"]))
    assert set(access["refs"]) == appended
    assert appended == {i["output_index"] for i in out["instances"]} | \
        {i["derivation"] for i in out["instances"]}
    # a re-run records nothing new but its access record
    rerun = api.post("/deidentify", tokens["writer"], json={"sources": [study_uid]}).json()
    assert [(i["output_index"], i["derivation"]) for i in rerun["instances"]] == \
        [(i["output_index"], i["derivation"]) for i in out["instances"]]
    assert rerun["access_index"] == out["access_index"] + 1


def test_deidentify_options_are_the_cli_options(api: Api, tokens: dict[str, str],
                                                acquired: list[tuple[Path, int]]) -> None:
    index = acquired[0][1]
    out = api.post("/deidentify", tokens["admin"], json={
        "sources": [index], "options": ["retain-patient-characteristics"]}).json()
    (item,) = out["instances"]
    derivation = _entry(api, tokens, item["derivation"])["body"]
    assert derivation["options"] == ["retain-patient-characteristics"]
    for body, status, code in (
            ({"sources": [index], "options": ["no-such-option"]}, 400, "bad_request"),
            ({"sources": [index], "profile": "full"}, 400, "bad_request"),
            ({"sources": [index], "safe_private": ["GEMS_PARM_01:0043,xx27"]}, 400,
             "bad_request"),
            ({"sources": [index], "options": ["retain-safe-private"],
              "safe_private": ["not a rule"]}, 400, "bad_request"),
            ({"sources": [10_000]}, 404, "not_found"),
            ({"sources": ["1.2.3.4.5.6.7"]}, 404, "not_registered"),
            ({"sources": [str(acquired[0][0])]}, 422, "invalid_request"),
            ({"sources": []}, 422, "invalid_request"),
            ({"sources": [index], "dst": "/tmp"}, 422, "invalid_request")):
        response = api.post("/deidentify", tokens["writer"], json=body)
        message = _error(response, status, code)
        assert str(acquired[0][0].parent) not in message


def test_a_source_gone_or_changed_is_reported_by_reason_and_the_rest_go_on(
        api: Api, tokens: dict[str, str], acquired: list[tuple[Path, int]]) -> None:
    (changed, changed_index), (gone, gone_index), (_, kept_index) = acquired
    changed.write_bytes(changed.read_bytes() + b"\0\0")
    gone.unlink()
    size = _size(api, tokens)
    response = api.post("/deidentify", tokens["writer"],
                        json={"sources": [0, changed_index, gone_index, kept_index]})
    assert response.status_code == 200, response.text
    assert str(changed.parent) not in response.text and CANARY not in response.text
    by_index = {i["source_index"]: i for i in response.json()["instances"]}
    assert by_index[0]["reason"] == "not_an_instance"
    assert by_index[changed_index]["reason"] == "source_changed"
    assert by_index[gone_index]["reason"] == "source_missing"
    assert by_index[kept_index]["status"] == "deidentified"
    assert {i["status"] for i in by_index.values() if i["source_index"] != kept_index} == \
        {"rejected"}
    # the changed file was not registered as a new version: two entries, then the record
    assert response.json()["access_index"] == size + 2
    assert response.json()["rejected"] == 3
