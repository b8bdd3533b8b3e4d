"""Public anchors (issue 5): the contract artifact cannot drift from its source; deploy, anchor
and verify on a real EVM (py-evm in process through eth-tester, and a Hardhat 2 node over
JSON-RPC); tampered receipts fail naming the field; errors are typed, exit 2, no traceback."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import typer

from radledger.cli import main
from radledger.cli.anchorcmds import anchor_app
from radledger.core.anchor import AnchorReceipt, parse_receipt
from radledger.errors import (
    AnchorError,
    AnchorKeyError,
    ChainUnreachable,
    InputError,
    NotAnchorContract,
)
from radledger.ledger import anchor
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Ledger
from radledger.ledger.setup import init_ledger

from helpers import qc

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
HARDHAT_CLI = CONTRACTS / "node_modules" / "hardhat" / "internal" / "cli" / "cli.js"
# Hardhat's first well-known dev account (printed by every `hardhat node`; public, test only)
HARDHAT_KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ORIGIN = "example.org/anchor"
SRC = ROOT / "src"

# -- the artifact -----------------------------------------------------------------------------
def test_the_artifact_was_built_from_the_checked_in_source() -> None:
    artifact = json.loads((CONTRACTS / "RadledgerAnchor.json").read_text())
    source = (CONTRACTS / "RadledgerAnchor.sol").read_bytes()
    assert artifact["sourceSha256"] == hashlib.sha256(source).hexdigest(), \
        "RadledgerAnchor.sol changed: rebuild with python tools/build_contract.py"
    pinned = json.loads((CONTRACTS / "package.json").read_text())["devDependencies"]["solc"]
    assert artifact["solcVersion"].startswith(pinned + "+commit.")
    assert artifact["evmVersion"] == "paris"
    assert f"pragma solidity {pinned};" in source.decode()
    assert anchor.load_artifact().source_sha256 == artifact["sourceSha256"]


def test_the_artifact_rebuilds_byte_for_byte_with_the_pinned_solc() -> None:
    _need_node_modules()
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_contract.py"),
                           "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_web3_loads_only_when_an_anchor_command_runs() -> None:
    code = ("import sys, radledger.cli.main, radledger.cli.anchorcmds, radledger.ledger.anchor;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('web3', 'eth_account', 'eth_tester', 'eth')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.stdout.strip() == "[]"


def test_only_the_anchor_module_imports_web3() -> None:
    allowed = {SRC / "radledger" / "ledger" / "anchor.py",
               SRC / "radledger" / "cli" / "anchorcmds.py"}  # eth_account for types only
    for path in (SRC / "radledger").rglob("*.py"):
        text = path.read_text()
        if path not in allowed:
            assert "import web3" not in text and "from web3" not in text, path
            assert "from eth_" not in text and "import eth_" not in text, path


# -- an in-process chain (py-evm through eth-tester) ------------------------------------------
def test_loading_web3_keeps_the_recursion_limit(tmp_path: Path) -> None:
    # py_ecc and py-evm raise it to 100,000 on import; radledger must keep its own
    code = ("import sys; limit = sys.getrecursionlimit(); from radledger.ledger import anchor;"
            f"anchor.write_key(__import__('pathlib').Path({str(tmp_path / 'k')!r}));"
            "print('web3' in sys.modules, sys.getrecursionlimit() == limit)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.stdout.split() == ["True", "True"]


@pytest.fixture(scope="module")
def chain() -> anchor.Chain:
    # imported here, not at the top: py-evm, like py_ecc, raises the recursion limit on
    # import, which would change how every other test module's deep inputs fail
    limit = sys.getrecursionlimit()
    try:
        from web3 import EthereumTesterProvider, Web3  # noqa: PLC0415

        return anchor.chain_of(Web3(EthereumTesterProvider()), "eth-tester")
    finally:
        sys.setrecursionlimit(limit)


def _fund(chain: anchor.Chain, address: str) -> None:
    web3 = chain.web3
    tx = web3.eth.send_transaction({"from": web3.eth.accounts[0], "to": address,
                                    "value": 10**18})
    web3.eth.wait_for_transaction_receipt(tx)


def _key_file(path: Path, private_key: str, mode: int = 0o600) -> Path:
    path.write_text(private_key + "\n")
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def payer(chain: anchor.Chain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A funded key file."""
    path = tmp_path_factory.mktemp("key") / "anchor.key"
    _fund(chain, anchor.write_key(path).address)
    return path


@pytest.fixture(scope="module")
def contract(chain: anchor.Chain, payer: Path) -> str:
    deployed = anchor.deploy_contract(chain, anchor.read_key(payer))
    assert deployed.chain_id == chain.web3.eth.chain_id
    return deployed.address


@pytest.fixture()
def home(tmp_path: Path) -> tuple[LedgerHome, Ledger]:
    loaded, ledger = init_ledger(tmp_path / "home", ORIGIN, "alice")
    ledger.append_drafts([qc(n) for n in range(5)], loaded.ledger_signer)
    return loaded, ledger


@pytest.fixture()
def anchored(home: tuple[LedgerHome, Ledger], chain: anchor.Chain, contract: str,
             payer: Path) -> AnchorReceipt:
    receipt, sent = anchor.anchor_checkpoint(*home, chain, contract, anchor.read_key(payer))
    assert sent
    return receipt


def test_the_latest_checkpoint_is_anchored_and_its_receipt_verifies(
        home: tuple[LedgerHome, Ledger], chain: anchor.Chain, contract: str,
        anchored: AnchorReceipt, payer: Path) -> None:
    checkpoint = anchor.latest_checkpoint(*home)
    assert anchored.is_for(checkpoint) and checkpoint.tree_size == 7
    assert anchored.contract == contract
    assert anchored.sender == anchor.read_key(payer).address
    assert anchor.anchor_receipts(home[0]) == [anchored.to_json()]
    assert anchor.anchor_receipts(home[0], checkpoint) == [anchored.to_json()]
    assert anchor.anchor_receipts(home[0], replace(checkpoint, root_hash=bytes(32))) == []
    check = anchor.verify_anchor(anchored.to_json(), chain, checkpoint)
    assert check.ok, check.failures
    assert f"tree size 7 was anchored on chain {anchored.chain_id} in block " \
           f"{anchored.block_number}" in check.claim
    assert parse_receipt(json.loads(json.dumps(anchored.to_json()))) == anchored


def test_anchoring_the_same_checkpoint_again_sends_nothing(
        home: tuple[LedgerHome, Ledger], chain: anchor.Chain, contract: str,
        anchored: AnchorReceipt, payer: Path) -> None:
    height = chain.web3.eth.block_number
    again, sent = anchor.anchor_checkpoint(*home, chain, contract.lower(),
                                           anchor.read_key(payer))
    assert (again, sent) == (anchored, False)
    assert chain.web3.eth.block_number == height
    loaded, ledger = home
    ledger.append_drafts([qc(9)], loaded.ledger_signer)
    later, sent = anchor.anchor_checkpoint(*home, chain, contract, anchor.read_key(payer))
    assert sent and later.tree_size == 8 and later.block_number > anchored.block_number
    assert [r["tree_size"] for r in anchor.anchor_receipts(loaded)] == [7, 8]
    assert anchor.verify_anchor(later, chain).ok


@pytest.mark.parametrize(("field", "value"), [
    ("root_hash", "00" * 32),
    ("tree_size", 6),
    ("origin", "example.org/other"),
    ("block_number", 1),
    ("block_hash", "0x" + "11" * 32),
    ("block_time", 1),
    ("log_index", 1),
    ("sender", "0x" + "22" * 20),
    ("contract", "0x" + "33" * 20),
    ("tx_hash", "0x" + "44" * 32),
])
def test_a_tampered_receipt_fails_naming_what_differs(
        anchored: AnchorReceipt, chain: anchor.Chain, field: str, value: Any) -> None:
    check = anchor.verify_anchor(replace(anchored, **{field: value}), chain)
    assert not check.ok and not check.claim
    named = {"log_index": "no log 1", "contract": "no log 0", "tx_hash": "not on chain"}
    assert any(named.get(field, field) in failure for failure in check.failures), \
        check.failures


def test_a_receipt_of_another_checkpoint_fails(
        home: tuple[LedgerHome, Ledger], anchored: AnchorReceipt, chain: anchor.Chain) -> None:
    loaded, ledger = home
    ledger.append_drafts([qc(10)], loaded.ledger_signer)
    check = anchor.verify_anchor(anchored, chain, anchor.latest_checkpoint(*home))
    assert check.failures == [
        f"anchor: the receipt is of tree size 7 root {anchored.root_hash}, not of the "
        f"checkpoint (tree size 8 root {anchor.latest_checkpoint(*home).root_hash.hex()})"]


@pytest.mark.parametrize("bad", [
    {},
    {"chain_id": 1},
    "not an object",
])
def test_a_malformed_receipt_is_a_failure_not_a_crash(bad: object, chain: anchor.Chain
                                                      ) -> None:
    check = anchor.verify_anchor(bad, chain)  # type: ignore[arg-type]
    assert check.failures and "exactly the fields" in check.failures[0]


def test_a_receipt_field_out_of_shape_is_refused(anchored: AnchorReceipt) -> None:
    for field, value in (("root_hash", "AB" * 32), ("chain_id", 0), ("tree_size", -1),
                         ("tx_hash", "0x12"), ("origin", ""), ("block_time", True)):
        with pytest.raises(InputError, match=field if field != "origin" else "origin"):
            replace(anchored, **{field: value})


def test_a_receipt_on_another_chain_is_not_checked(anchored: AnchorReceipt,
                                                   chain: anchor.Chain) -> None:
    with pytest.raises(AnchorError, match="serves chain .* the anchor is on chain 5"):
        anchor.verify_anchor(replace(anchored, chain_id=5), chain)


def test_anchoring_through_something_else_than_the_contract_is_refused(
        home: tuple[LedgerHome, Ledger], chain: anchor.Chain, payer: Path) -> None:
    account = anchor.read_key(payer)
    # init code that deploys the 10-byte runtime "return 42"
    other = chain.web3.eth.wait_for_transaction_receipt(chain.web3.eth.send_transaction({
        "from": chain.web3.eth.accounts[0],
        "data": "0x600a600c600039600a6000f3602a60005260206000f3"}))["contractAddress"]
    for address, message in ((account.address, "no contract at"),
                             (other, "is not RadledgerAnchor"),
                             ("0x1234", "is not an Ethereum address")):
        with pytest.raises(NotAnchorContract, match=message):
            anchor.anchor_checkpoint(*home, chain, address, account)
    assert anchor.anchor_receipts(home[0]) == []


def test_an_unfunded_key_is_a_clear_error(home: tuple[LedgerHome, Ledger],
                                          chain: anchor.Chain, contract: str,
                                          tmp_path: Path) -> None:
    broke = anchor.write_key(tmp_path / "broke.key")
    with pytest.raises(AnchorError, match=f"account {broke.address} holds 0 wei on eth-tester; "
                                          "anchoring tree size 7 costs more than 0 wei: fund"):
        anchor.anchor_checkpoint(*home, chain, contract, broke)


@pytest.mark.parametrize(("text", "mode", "message"), [
    ("zz" * 32, 0o600, "not an Ethereum private key"),
    ("12" * 31, 0o600, "not an Ethereum private key"),
    ("00" * 32, 0o600, "not a valid secp256k1 private key"),
    ("ff" * 32, 0o600, "not a valid secp256k1 private key"),
    (HARDHAT_KEY, 0o644, r"readable by others \(mode 0644\); chmod 600"),
])
def test_a_bad_key_file_is_refused(tmp_path: Path, text: str, mode: int, message: str) -> None:
    with pytest.raises(AnchorKeyError, match=message):
        anchor.read_key(_key_file(tmp_path / "k", text, mode))
    with pytest.raises(AnchorKeyError, match="cannot read"):
        anchor.read_key(tmp_path / "missing")


def test_a_new_key_is_written_private(tmp_path: Path) -> None:
    account = anchor.write_key(tmp_path / "anchor.key")
    assert (tmp_path / "anchor.key").stat().st_mode & 0o777 == 0o600
    assert anchor.read_key(tmp_path / "anchor.key").address == account.address
    with pytest.raises(AnchorKeyError, match="refusing to overwrite"):
        anchor.write_key(tmp_path / "anchor.key")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/v3/SECRET-API-KEY?key=SECRET",
                                 "not-a-url", "ftp://127.0.0.1/SECRET", "http:///SECRET"])
def test_an_unreachable_node_is_a_typed_error_that_keeps_the_url_secret(url: str) -> None:
    with pytest.raises(ChainUnreachable) as caught:
        anchor.connect(url.format(port=_free_port()), timeout=5)
    assert "SECRET" not in caught.value.diagnostics()


# -- a Hardhat 2 node over JSON-RPC, through the CLI ------------------------------------------
def _need_node_modules() -> None:
    if not HARDHAT_CLI.is_file():
        pytest.fail("contracts/node_modules is missing: run `make system-deps` (npm ci in "
                    "contracts/)")


def _rpc_ready(url: str) -> bool:
    request = urllib.request.Request(url, data=json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode(),
        headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return "result" in json.load(response)
    except OSError:
        return False


@pytest.fixture(scope="module")
def hardhat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Hardhat 2 dev node on a free port (chain 31337, automining), its URL."""
    _need_node_modules()
    port = _free_port()
    log = tmp_path_factory.mktemp("hardhat") / "node.log"
    with log.open("wb") as out:
        node = subprocess.Popen(
            ["node", str(HARDHAT_CLI), "node", "--hostname", "127.0.0.1", "--port", str(port)],
            cwd=CONTRACTS, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _rpc_ready(url):
            if node.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Hardhat node did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        node.terminate()
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    """``radledger anchor ...`` through main.run(), the one place errors become exit codes."""
    app = typer.Typer(pretty_exceptions_enable=False)
    app.add_typer(anchor_app, name="anchor")
    monkeypatch.setattr(main, "app", app)
    monkeypatch.setenv("RADLEDGER_HOME", str(tmp_path / "home"))

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["radledger", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = 0
        try:
            main.run()
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_deploy_push_list_and_verify_over_json_rpc(
        hardhat: str, cli: Any, tmp_path: Path) -> None:
    loaded, ledger = init_ledger(tmp_path / "home", ORIGIN, "alice")
    ledger.append_drafts([qc(n) for n in range(3)], loaded.ledger_signer)
    imported = _key_file(tmp_path / "hardhat.key", "0x" + HARDHAT_KEY)
    code, out, err = cli("anchor", "key", "--import", str(imported), "--json")
    assert code == 0, err
    assert json.loads(out)["address"] == HARDHAT_ADDRESS
    assert (tmp_path / "home" / "keys" / "anchor.key").stat().st_mode & 0o777 == 0o600

    code, out, err = cli("anchor", "deploy", "--rpc", hardhat)
    assert code == 0, err
    address = out.strip()
    assert re.fullmatch("0x[0-9a-fA-F]{40}", address) and address != address.lower()

    code, out, err = cli("anchor", "push", "--rpc", hardhat, "--contract", address, "--json")
    assert code == 0, err
    pushed = json.loads(out)
    assert pushed["sent"] and pushed["receipt"]["chain_id"] == 31337
    assert pushed["receipt"]["tree_size"] == 5
    code, out, _ = cli("anchor", "push", "--rpc", hardhat, "--contract", address)
    assert code == 0 and out.startswith("already anchored example.org/anchor tree size 5")

    code, out, _ = cli("anchor", "list", "--json")
    assert json.loads(out) == [pushed["receipt"]]
    code, out, err = cli("anchor", "verify", "--rpc", hardhat)
    assert code == 0, err
    assert "1 of 1 anchors verified" in out
    check = anchor.verify_anchor(pushed["receipt"], hardhat)
    assert check.ok and "on chain 31337" in check.claim
    _a_bundle_rechecks_its_anchor_online(loaded, pushed["receipt"], hardhat)
    tampered = {**pushed["receipt"], "root_hash": "ab" * 32}
    assert "root_hash" in anchor.verify_anchor(tampered, hardhat).failures[0]

    for args, message in (
            (("push", "--rpc", f"http://127.0.0.1:{_free_port()}", "--contract", address),
             "does not answer"),
            (("push", "--rpc", hardhat, "--contract", HARDHAT_ADDRESS),
             "no contract at"),
            (("push", "--rpc", hardhat, "--contract", address, "--key",
              str(_key_file(tmp_path / "bad.key", "nothex"))), "not an Ethereum private key"),
            (("deploy", "--rpc", hardhat, "--key", str(tmp_path / "none.key")), "cannot read")):
        code, out, err = cli("anchor", *args)
        assert code == 2 and err.startswith("error: ") and message in err, (args, err)
        assert "Traceback" not in err and "hint:" in err


def _a_bundle_rechecks_its_anchor_online(loaded: LedgerHome, receipt: dict[str, Any],
                                         rpc: str) -> None:
    """The reviewer's --rpc path: a bundle's receipt re-checked against the chain; a receipt
    the chain contradicts is a failure naming the field."""
    from radledger.core.anchor import parse_receipt  # noqa: PLC0415
    from radledger.core.bundle import Bundle, Report  # noqa: PLC0415
    from radledger.ledger.setup import open_ledger  # noqa: PLC0415
    from radledger.reviewer import _check_anchors  # noqa: PLC0415

    _, ledger = open_ledger(loaded.path)
    note = ledger.store.checkpoint() or ""

    def report_for(item: dict[str, Any]) -> Report:
        report = Report()
        bundle = Bundle(loaded.origin, "", note, 0, (), (), (), (parse_receipt(item),))
        _check_anchors(bundle, rpc, report)
        return report

    good = report_for(receipt)
    assert not good.failures and any("on chain 31337" in c for c in good.claims)
    bad = report_for({**receipt, "block_number": receipt["block_number"] + 1})
    assert any(f.startswith("anchors:") and "block" in f.lower() for f in bad.failures), \
        (bad.failures, bad.claims)
    offline = report_for(receipt)  # an unreachable node: said, not a failure
    _check_anchors(Bundle(loaded.origin, "", note, 0, (), (), (), (parse_receipt(receipt),)),
                   f"http://127.0.0.1:{_free_port()}", offline)
    assert any(c.startswith("anchor not checked") for c in offline.claims)
