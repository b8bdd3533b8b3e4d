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


def open_home(home: str | None) -> tuple[LedgerHome, Ledger]:
    """Open the ledger in --home / $RADLEDGER_HOME / ./radledger-home."""
    return open_ledger(resolve_home(home))


def echo_json(value: object) -> None:
    """Print one JSON document (sorted keys, so output is stable)."""
    typer.echo(json.dumps(value, sort_keys=True, ensure_ascii=False))
