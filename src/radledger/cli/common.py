"""Options and helpers every command shares."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from radledger.ledger.home import HOME_ENV, LedgerHome, resolve_home
from radledger.ledger.service import Ledger
from radledger.ledger.setup import open_ledger

HomeOption = Annotated[str | None, typer.Option(
    "--home", envvar=HOME_ENV, show_envvar=True,
    help="Ledger home folder (default ./radledger-home).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


# ledgers this command opened, with their size then: after the command, what it sealed is
# sent to the configured witnesses (witness_new_checkpoints)
_opened: list[tuple[LedgerHome, Ledger, int]] = []
WITNESS_TIMEOUT_S = 5.0


def open_home(home: str | None) -> tuple[LedgerHome, Ledger]:
    """Open the ledger in --home / $RADLEDGER_HOME / ./radledger-home."""
    loaded, ledger = open_ledger(resolve_home(home))
    _opened.append((loaded, ledger, ledger.store.entry_count()))
    return loaded, ledger


def witness_new_checkpoints() -> None:
    """Send what the command sealed to the ledger's witnesses, if any are configured
    (best effort: a witness that is down or refuses is a warning; appending never waits on
    it beyond WITNESS_TIMEOUT_S, and ``radledger witness sync`` catches up later)."""
    from radledger.ledger.witnessing import WITNESSES_FILE, witness_latest  # noqa: PLC0415

    while _opened:
        loaded, ledger, size = _opened.pop()
        if not (loaded.path / WITNESSES_FILE).exists() or \
                ledger.store.entry_count() == size:
            continue
        for outcome in witness_latest(ledger, loaded, timeout=WITNESS_TIMEOUT_S):
            if outcome.status != "cosigned":
                typer.echo(f"warning: witness {outcome.witness}: {outcome.status}: "
                           f"{outcome.detail}", err=True)


def echo_json(value: object) -> None:
    """Print one JSON document (sorted keys, so output is stable)."""
    typer.echo(json.dumps(value, sort_keys=True, ensure_ascii=False))
