"""``radledger token ...``: bearer tokens for the HTTP API (``radledger serve``)."""

from __future__ import annotations

from typing import Annotated

import typer

from radledger.cli.common import HomeOption, JsonOption, echo_json
from radledger.ledger.home import load_home, resolve_home
from radledger.ledger.service import rfc3339
from radledger.ledger.tokens import ROLES, create_token, list_tokens, open_tokens, revoke_token

token_app = typer.Typer(help="Bearer tokens for the HTTP API.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(
        help="Who holds it (recorded in access.recorded entries); 1-64 of A-Z a-z 0-9 . _ @ -.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print it once: only its SHA-256 is kept (tokens.sqlite3)."""
    store = open_tokens(load_home(resolve_home(home)))
    try:
        token = create_token(store, name, role)
    finally:
        store.close()
    if as_json:
        echo_json({"name": name, "role": role, "token": token})
    else:
        typer.echo(token)
        typer.echo(f"token {name!r} ({role}) created; it is shown only now", err=True)


@token_app.command("list")
def token_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Every token: name, role, created, revoked (never the token itself)."""
    store = open_tokens(load_home(resolve_home(home)))
    try:
        rows = list_tokens(store)
    finally:
        store.close()
    if as_json:
        echo_json([{"name": r.name, "role": r.role, "created_at": rfc3339(r.created_at),
                    "revoked_at": None if r.revoked_at is None else rfc3339(r.revoked_at)}
                   for r in rows])
        return
    for r in rows:
        revoked = "in force" if r.revoked_at is None else f"revoked {rfc3339(r.revoked_at)}"
        typer.echo(f"{r.name:<24} {r.role:<10} created {rfc3339(r.created_at)}  {revoked}")


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke the token in force with this name: requests with it get 401 from then on."""
    store = open_tokens(load_home(resolve_home(home)))
    try:
        revoke_token(store, name)
    finally:
        store.close()
    if as_json:
        echo_json({"name": name, "revoked": True})
    else:
        typer.echo(f"revoked token {name!r}")
