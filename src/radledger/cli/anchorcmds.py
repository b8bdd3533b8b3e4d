"""``radledger anchor``: public anchors on an Ethereum-compatible chain.

``deploy`` the contract once, ``push`` the latest checkpoint whenever it should be anchored
(idempotent), ``list`` and ``verify`` the receipts. web3 loads only when one of these runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from radledger.cli.common import HomeOption, JsonOption, echo_json, open_home
from radledger.errors import AnchorKeyError
from radledger.ledger import anchor
from radledger.ledger.home import load_home, resolve_home

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

anchor_app = typer.Typer(
    help="Public anchors: checkpoints written to an Ethereum-compatible chain.",
    no_args_is_help=True)

RpcOption = Annotated[str, typer.Option(
    "--rpc", envvar="RADLEDGER_RPC", show_envvar=True,
    help="The chain's JSON-RPC URL, e.g. http://127.0.0.1:8545.")]
KeyOption = Annotated[Path | None, typer.Option(
    "--key", dir_okay=False,
    help="Ethereum private key file (hex, mode 0600) that pays (default: keys/anchor.key in "
         "the home).")]


def _account(home: str | None, key: Path | None) -> LocalAccount:
    path = key if key is not None else anchor.anchor_key_path(load_home(resolve_home(home)))
    if key is None and not path.exists():
        raise AnchorKeyError(f"no Ethereum key at {path}")
    return anchor.read_key(path)


@anchor_app.command("deploy")
def deploy(rpc: RpcOption, key: KeyOption = None, home: HomeOption = None,
           as_json: JsonOption = False) -> None:
    """Deploy the RadledgerAnchor contract and print its address."""
    account = _account(home, key)
    done = anchor.deploy_contract(anchor.connect(rpc), account)
    if as_json:
        echo_json({"chain_id": done.chain_id, "contract": done.address,
                   "tx_hash": done.tx_hash, "block_number": done.block_number})
    else:
        typer.echo(done.address)


@anchor_app.command("push")
def push(
    rpc: RpcOption,
    contract: Annotated[str, typer.Option(
        "--contract", envvar="RADLEDGER_ANCHOR_CONTRACT", show_envvar=True,
        help="The RadledgerAnchor contract's address.")],
    key: KeyOption = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Anchor the latest checkpoint (origin, tree size, root) through the contract.

    A checkpoint already anchored through this contract is not sent again: its stored
    receipt is printed.
    """
    account = _account(home, key)
    loaded, ledger = open_home(home)
    receipt, sent = anchor.anchor_checkpoint(loaded, ledger, anchor.connect(rpc), contract,
                                             account)
    if as_json:
        echo_json({"sent": sent, "receipt": receipt.to_json()})
        return
    verb = "anchored" if sent else "already anchored"
    typer.echo(f"{verb} {receipt.origin} tree size {receipt.tree_size} root "
               f"{receipt.root_hash}\n  chain {receipt.chain_id} block {receipt.block_number} "
               f"tx {receipt.tx_hash} log {receipt.log_index}")


@anchor_app.command("key")
def key_(
    import_from: Annotated[Path | None, typer.Option(
        "--import", dir_okay=False, exists=True,
        help="Copy this key file (64 hex digits) into the home instead of creating one.")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the address of the home's Ethereum key, creating or importing it if absent.

    The key is keys/anchor.key (hex, mode 0600), never in the database. Fund its address on
    the chain before deploying or anchoring.
    """
    path = anchor.anchor_key_path(load_home(resolve_home(home)))
    if path.exists():
        if import_from is not None:
            raise AnchorKeyError(f"{path} exists; refusing to overwrite a key")
        account, made = anchor.read_key(path), False
    else:
        private = anchor.read_key(import_from).key if import_from is not None else None
        account, made = anchor.write_key(path, private), True
    if as_json:
        echo_json({"address": account.address, "key_file": str(path), "created": made})
    else:
        typer.echo(account.address)


@anchor_app.command("list")
def list_(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Every anchor receipt kept in the home."""
    receipts = anchor.anchor_receipts(load_home(resolve_home(home)))
    if as_json:
        echo_json(receipts)
        return
    for r in receipts:
        typer.echo(f"{r['tree_size']:>8}  {r['root_hash']}  chain {r['chain_id']} block "
                   f"{r['block_number']} tx {r['tx_hash']}")


@anchor_app.command("verify")
def verify(rpc: RpcOption, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Re-check every receipt in the home against the chain; exit 1 if any fails."""
    receipts = anchor.anchor_receipts(load_home(resolve_home(home)))
    chain = anchor.connect(rpc)
    checks = [anchor.verify_anchor(r, chain) for r in receipts]
    ok = all(c.ok for c in checks)
    if as_json:
        echo_json({"ok": ok, "checked": len(checks),
                   "failures": [f for c in checks for f in c.failures]})
    else:
        for check in checks:
            for line in check.failures or [check.claim]:
                typer.echo(("FAIL " if check.failures else "ok   ") + line)
        typer.echo(f"{sum(c.ok for c in checks)} of {len(checks)} anchors verified")
    if not ok:
        raise typer.Exit(1)
