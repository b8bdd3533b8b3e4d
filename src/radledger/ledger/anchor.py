"""Public anchors: a checkpoint's (origin, tree size, root) written to an Ethereum-compatible
chain through the RadledgerAnchor contract, one event per anchor (DESIGN sections 1 and 5).

The only module that talks to a chain; web3 is imported inside the functions, so the CLI and
every other command start without it. A chain is reached through ``connect(url)`` (JSON-RPC
over HTTP) or, in tests and embedded uses, ``chain_of(web3)``: the functions take the
``Chain``, never a URL, except ``verify_anchor``, which takes either.

Files in the ledger home::

    keys/anchor.key       the Ethereum private key that pays for anchors (hex), mode 0600
    anchors.sqlite3       the receipts (radledger/storage/anchors.py)

Anchoring the same checkpoint through the same contract twice sends nothing the second time
and returns the stored receipt. If the process dies after the transaction is sent and before
the receipt is stored, the next run anchors again: the chain then holds two events for one
checkpoint, which is harmless.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from radledger.core.anchor import AnchorReceipt, parse_receipt
from radledger.core.checkpoint import Checkpoint, open_checkpoint
from radledger.errors import (
    AnchorError,
    AnchorKeyError,
    AnchorReceiptError,
    ChainUnreachable,
    InputError,
    NotAnchorContract,
)
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Ledger
from radledger.storage.anchors import AnchorStore
from radledger.storage.files import write_secret

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.contract import Contract

ARTIFACT = Path(__file__).resolve().parents[3] / "contracts" / "RadledgerAnchor.json"
ANCHOR_KEY = "anchor.key"
ANCHORS_DATABASE = "anchors.sqlite3"
RPC_TIMEOUT_S = 30.0
MINING_TIMEOUT_S = 180.0


def _load_web3() -> None:
    """Import web3 and eth_account, keeping the interpreter's recursion limit.

    py_ecc (under eth_account) raises it to 100,000 when first imported, for good; in a
    process that also reads DICOM or JSON that would turn a runaway recursion into a C stack
    overflow instead of a RecursionError. Call before any lazy web3 import.
    """
    limit = sys.getrecursionlimit()
    try:
        import eth_account  # noqa: F401, PLC0415
        import web3  # noqa: F401, PLC0415
    finally:
        sys.setrecursionlimit(limit)


@dataclass(frozen=True)
class Artifact:
    """The compiled contract (contracts/RadledgerAnchor.json, built by
    tools/build_contract.py)."""

    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    solc_version: str
    source_sha256: str


def load_artifact(path: Path = ARTIFACT) -> Artifact:
    """Read the contract artifact. Raises AnchorError if it is missing or malformed."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Artifact(doc["abi"], doc["bytecode"], doc["deployedBytecode"],
                        doc["solcVersion"], doc["sourceSha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnchorError(f"the contract artifact {path} cannot be read: {exc}") from None


@dataclass(frozen=True)
class Chain:
    """A connection to one chain, and how messages name it (the RPC URL)."""

    web3: Web3
    name: str
    secrets: tuple[str, ...] = ()
    """Parts of the URL kept out of messages (they may hold an API key)."""

    def scrub(self, text: str) -> str:
        """``text`` without the URL's path and query."""
        for secret in self.secrets:
            if len(secret) > 1:
                text = text.replace(secret, "…")
        return text


def connect(rpc_url: str, timeout: float = RPC_TIMEOUT_S) -> Chain:
    """A JSON-RPC (HTTP) connection; checks the node answers. Raises ChainUnreachable."""
    _load_web3()
    from web3 import HTTPProvider, Web3  # noqa: PLC0415 - web3 loads only for anchors

    parts = urlsplit(rpc_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChainUnreachable("--rpc must be an http:// or https:// URL")
    # messages name the host only: a provider's path or query often holds an API key
    name = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    chain = Chain(Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout})), name,
                  (rpc_url, parts.path, parts.query))
    chain_id(chain)
    return chain


def chain_of(web3: Web3, name: str = "the chain") -> Chain:
    """A Chain over an existing Web3 object (any provider)."""
    return Chain(web3, name)


@contextmanager
def _calling(chain: Chain, action: str) -> Iterator[None]:
    """Map what web3 and its transport raise to radledger's anchor errors."""
    _load_web3()
    from eth_utils.exceptions import ValidationError  # noqa: PLC0415
    from web3.exceptions import TimeExhausted, Web3Exception, Web3RPCError  # noqa: PLC0415

    try:
        yield
    except OSError as exc:  # requests' connection errors, refused sockets, timeouts
        raise ChainUnreachable(f"{chain.name} does not answer while {action}: "
                               f"{chain.scrub(str(exc))}") from None
    except TimeExhausted:
        raise AnchorError(f"the transaction was not mined within {MINING_TIMEOUT_S:.0f} s "
                          f"while {action} on {chain.name}") from None
    except Web3RPCError as exc:
        message = exc.rpc_response.get("error", {}).get("message") if exc.rpc_response \
            else None
        raise AnchorError(f"{chain.name} refused {action}: "
                          f"{chain.scrub(str(message or exc))}") from None
    except ValidationError as exc:  # what an in-process chain (eth-tester) raises instead
        raise AnchorError(f"{chain.name} refused {action}: {exc}") from None
    except (Web3Exception, ValueError) as exc:
        raise ChainUnreachable(f"{chain.name} gave an unusable answer while {action}: "
                               f"{chain.scrub(str(exc))}") from None


def chain_id(chain: Chain) -> int:
    """The chain's id (EIP-155). Raises ChainUnreachable."""
    with _calling(chain, "asking for the chain id"):
        return int(chain.web3.eth.chain_id)


# -- the signing key --------------------------------------------------------------------------
def anchor_key_path(home: LedgerHome) -> Path:
    """Where the home keeps its Ethereum key by default."""
    return home.path / "keys" / ANCHOR_KEY


def read_key(path: Path) -> LocalAccount:
    """The Ethereum account of a key file (64 hex digits, 0x optional, mode 0600).

    Raises AnchorKeyError if the file is missing, readable by group or others, or not a key.
    """
    _load_web3()
    from eth_account import Account  # noqa: PLC0415

    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorKeyError(f"cannot read the Ethereum key {path}: {exc}") from None
    if mode & 0o077:
        raise AnchorKeyError(f"the Ethereum key {path} is readable by others (mode "
                             f"{mode:04o}); chmod 600 it")
    digits = text.removeprefix("0x")
    if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):  # noqa: PLR2004
        raise AnchorKeyError(f"{path} is not an Ethereum private key (64 hex digits)")
    try:
        account: LocalAccount = Account.from_key(bytes.fromhex(digits))
    except (ValueError, TypeError) as exc:  # zero, or beyond the curve order
        raise AnchorKeyError(f"{path} is not a valid secp256k1 private key: {exc}") from None
    return account


def write_key(path: Path, private_key: bytes | None = None) -> LocalAccount:
    """Write ``private_key`` (default: a new random one) to ``path`` (which must not exist)
    as hex, mode 0600. Raises AnchorKeyError."""
    _load_web3()
    from eth_account import Account  # noqa: PLC0415

    try:
        account: LocalAccount = Account.from_key(private_key) if private_key is not None \
            else Account.create()
    except (ValueError, TypeError) as exc:
        raise AnchorKeyError(f"not a valid secp256k1 private key: {exc}") from None
    try:
        write_secret(path, account.key.hex().removeprefix("0x") + "\n")
    except FileExistsError:
        raise AnchorKeyError(f"{path} exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise AnchorKeyError(f"cannot create {path}: {exc.strerror}") from None
    return account


# -- deploying and anchoring ------------------------------------------------------------------
@dataclass(frozen=True)
class Deployment:
    """Where a RadledgerAnchor contract was deployed."""

    chain_id: int
    address: str
    tx_hash: str
    block_number: int


def _send(chain: Chain, account: LocalAccount, transaction: Any, action: str) -> Any:
    """Fill, sign and send a transaction from ``account``; its mined receipt. Raises
    AnchorError if it reverts."""
    web3 = chain.web3
    with _calling(chain, f"{action} from account {account.address}"):
        balance = web3.eth.get_balance(account.address)
        # checked before gas estimation too, which some nodes refuse without funds
        if balance == 0 and web3.eth.gas_price > 0:
            _unfunded(chain, account, action, balance, "more than 0")
        tx = transaction.build_transaction({
            "from": account.address,
            "nonce": web3.eth.get_transaction_count(account.address, "pending"),
            "chainId": web3.eth.chain_id,
        })
        cost = int(tx["gas"]) * int(tx.get("maxFeePerGas", tx.get("gasPrice", 0)))
        if balance < cost:
            _unfunded(chain, account, action, balance, f"up to {cost}")
        tx_hash = web3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = web3.eth.wait_for_transaction_receipt(tx_hash, timeout=MINING_TIMEOUT_S)
    if receipt["status"] != 1:
        raise AnchorError(f"transaction {tx_hash.to_0x_hex()} reverted while {action}")
    return receipt


def _unfunded(chain: Chain, account: LocalAccount, action: str, balance: int,
              cost: str) -> NoReturn:
    raise AnchorError(f"account {account.address} holds {balance} wei on {chain.name}; "
                      f"{action} costs {cost} wei: fund it first")


def deploy_contract(chain: Chain, account: LocalAccount,
                    artifact: Artifact | None = None) -> Deployment:
    """Deploy RadledgerAnchor from ``account``. Raises ChainUnreachable or AnchorError."""
    artifact = artifact or load_artifact()
    factory = chain.web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = _send(chain, account, factory.constructor(), "deploying the anchor contract")
    return Deployment(chain_id(chain), str(receipt["contractAddress"]),
                      receipt["transactionHash"].to_0x_hex(), int(receipt["blockNumber"]))


def _contract(chain: Chain, address: str, artifact: Artifact) -> Contract:
    """The contract at ``address``, refused unless its code is RadledgerAnchor's."""
    _load_web3()
    from web3 import Web3  # noqa: PLC0415

    if not Web3.is_address(address):
        raise NotAnchorContract(f"{address!r:.80} is not an Ethereum address (0x and 40 hex "
                                "digits)")
    checksummed = Web3.to_checksum_address(address)
    with _calling(chain, f"reading the code at {checksummed}"):
        code = chain.web3.eth.get_code(checksummed)
    if not code:
        raise NotAnchorContract(f"no contract at {checksummed} on {chain.name}")
    if code.to_0x_hex() != artifact.deployed_bytecode:
        raise NotAnchorContract(f"the contract at {checksummed} on {chain.name} is not "
                                "RadledgerAnchor (its code differs)")
    return chain.web3.eth.contract(address=checksummed, abi=artifact.abi)


def open_anchor_store(home: LedgerHome) -> AnchorStore:
    """The home's receipt store, created on first use."""
    return AnchorStore.open_or_create(home.path / ANCHORS_DATABASE, home.ledger_id)


def latest_checkpoint(home: LedgerHome, ledger: Ledger) -> Checkpoint:
    """The latest signed checkpoint, verified against the home's ledger key."""
    note = ledger.store.checkpoint()
    if note is None:
        raise InputError("the ledger has no checkpoint yet")
    return open_checkpoint(note, home.ledger_verifier, origin=home.origin)


def anchor_checkpoint(home: LedgerHome, ledger: Ledger, chain: Chain, contract: str,
                      account: LocalAccount) -> tuple[AnchorReceipt, bool]:
    """Anchor the latest checkpoint through ``contract``; (receipt, whether a transaction was
    sent). A checkpoint already anchored through this contract is not sent again.

    Raises NotAnchorContract, ChainUnreachable, AnchorError, or InputError (no checkpoint).
    """
    checkpoint = latest_checkpoint(home, ledger)
    anchor = _contract(chain, contract, load_artifact())
    chain_number = chain_id(chain)
    root = checkpoint.root_hash.hex()
    store = open_anchor_store(home)
    try:
        found = store.find(chain_number, anchor.address, checkpoint.origin,
                           checkpoint.tree_size, root)
        if found is not None:
            return found, False
        mined = _send(chain, account, anchor.functions.anchor(
            checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash),
            f"anchoring tree size {checkpoint.tree_size}")
        with _calling(chain, "reading the anchor's block"):
            (event,) = anchor.events.Anchored().process_receipt(mined)
            block = chain.web3.eth.get_block(mined["blockNumber"])
        receipt = AnchorReceipt(
            chain_number, anchor.address, mined["transactionHash"].to_0x_hex(),
            int(mined["blockNumber"]), mined["blockHash"].to_0x_hex(),
            int(block["timestamp"]), int(event["logIndex"]), str(event["args"]["sender"]),
            checkpoint.origin, checkpoint.tree_size, root)
        with store.write():
            store.add(receipt)
        return receipt, True
    finally:
        store.close()


def anchor_receipts(home: LedgerHome, checkpoint: Checkpoint | None = None
                    ) -> list[dict[str, str | int]]:
    """The home's receipts as JSON objects, oldest first: every one, or those of exactly
    ``checkpoint`` (its origin, tree size and root), which is what a bundle of that checkpoint
    carries. Empty if nothing was ever anchored (no store file is created then)."""
    if not (home.path / ANCHORS_DATABASE).exists():
        return []
    store = open_anchor_store(home)
    try:
        receipts = store.receipts(checkpoint.tree_size if checkpoint else None)
    finally:
        store.close()
    return [r.to_json() for r in receipts if checkpoint is None or r.is_for(checkpoint)]


# -- verifying --------------------------------------------------------------------------------
@dataclass
class AnchorCheck:
    """The outcome of re-checking one receipt against a chain: ``claim`` when it holds,
    ``failures`` naming each field the chain contradicts."""

    receipt: AnchorReceipt | None
    failures: list[str] = field(default_factory=list)
    claim: str = ""

    @property
    def ok(self) -> bool:
        """The chain holds exactly the receipt's event."""
        return not self.failures


def verify_anchor(receipt: AnchorReceipt | dict[str, Any], rpc: str | Chain,
                  checkpoint: Checkpoint | None = None) -> AnchorCheck:
    """Re-check a receipt: the transaction is mined in the receipt's block (number and hash,
    and time), and its log ``log_index`` is the contract's Anchored event carrying the
    receipt's origin, tree size, root and sender. With ``checkpoint``, the receipt must also
    be of exactly that checkpoint.

    A malformed receipt or a contradiction is a failure in the result. Raises
    ChainUnreachable if the node does not answer, AnchorError if it serves another chain
    (the anchor could not be checked: that is not a failure of the anchor).
    """
    try:
        anchored = receipt if isinstance(receipt, AnchorReceipt) else parse_receipt(receipt)
    except (AnchorReceiptError, TypeError) as exc:
        return AnchorCheck(None, [f"anchor: {exc}"])
    check = AnchorCheck(anchored)
    if checkpoint is not None and not anchored.is_for(checkpoint):
        check.failures.append(
            f"anchor: the receipt is of tree size {anchored.tree_size} root "
            f"{anchored.root_hash}, not of the checkpoint (tree size {checkpoint.tree_size} "
            f"root {checkpoint.root_hash.hex()})")
    chain = connect(rpc) if isinstance(rpc, str) else rpc
    serving = chain_id(chain)
    if serving != anchored.chain_id:
        raise AnchorError(f"{chain.name} serves chain {serving}; the anchor is on chain "
                          f"{anchored.chain_id}: give an RPC of that chain")
    _check_on_chain(chain, anchored, check.failures)
    if check.ok:
        when = datetime.fromtimestamp(anchored.block_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        check.claim = (f"anchor: {anchored.origin} tree size {anchored.tree_size} was anchored "
                       f"on chain {anchored.chain_id} in block {anchored.block_number} "
                       f"({when}), contract {anchored.contract}")
    return check


def _check_on_chain(chain: Chain, r: AnchorReceipt, failures: list[str]) -> None:
    _load_web3()
    from web3.exceptions import BlockNotFound, TransactionNotFound  # noqa: PLC0415

    artifact = load_artifact()
    web3 = chain.web3
    with _calling(chain, f"reading transaction {r.tx_hash}"):
        try:
            mined = web3.eth.get_transaction_receipt(r.tx_hash)  # type: ignore[arg-type]
            block = web3.eth.get_block(r.block_number)
        except (TransactionNotFound, BlockNotFound) as exc:
            failures.append(f"anchor: not on chain {r.chain_id}: {exc}")
            return
    for name, on_chain, claimed in (
            ("block_number", int(mined["blockNumber"]), r.block_number),
            ("block_hash", mined["blockHash"].to_0x_hex(), r.block_hash),
            ("block_time", int(block["timestamp"]), r.block_time),
            ("block_hash (of block_number)", block["hash"].to_0x_hex(), r.block_hash)):
        if on_chain != claimed:
            failures.append(f"anchor: {name} is {claimed} in the receipt but {on_chain} on "
                            "the chain")
    if mined["status"] != 1:
        failures.append(f"anchor: transaction {r.tx_hash} reverted")
    log = next((item for item in mined["logs"] if int(item["logIndex"]) == r.log_index), None)
    if log is None or str(log["address"]).lower() != r.contract.lower():
        failures.append(f"anchor: transaction {r.tx_hash} has no log {r.log_index} from "
                        f"contract {r.contract}")
        return
    contract = web3.eth.contract(address=log["address"], abi=artifact.abi)
    with _calling(chain, "decoding the anchor event"):
        try:
            event = contract.events.Anchored().process_log(log)
        except ValueError as exc:  # another event, or data that does not decode
            failures.append(f"anchor: log {r.log_index} is not an Anchored event: {exc}")
            return
    args = event["args"]
    for name, on_chain, claimed in (
            ("origin", args["origin"], r.origin),
            ("tree_size", args["treeSize"], r.tree_size),
            ("root_hash", bytes(args["rootHash"]).hex(), r.root_hash),
            ("sender", str(args["sender"]).lower(), r.sender.lower())):
        if on_chain != claimed:
            failures.append(f"anchor: {name} is {claimed} in the receipt but {on_chain} in "
                            "the event on the chain")
