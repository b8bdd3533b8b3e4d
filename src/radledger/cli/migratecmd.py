"""``radledger migrate --to postgresql://…``: move an SQLite ledger to PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import typer

from radledger.cli.common import HomeOption, JsonOption, echo_json
from radledger.errors import InputError
from radledger.ledger.home import is_database_url, load_home, resolve_home


def migrate(
    to: Annotated[str, typer.Option(
        "--to", help="The PostgreSQL database to copy the ledger into (postgresql://…; it "
        "must not hold a radledger ledger yet).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy this SQLite ledger to PostgreSQL byte for byte, prove the copy has the same
    checkpoints and roots and verifies in full, then switch the home to it (the SQLite file
    is left untouched)."""
    from radledger.ledger.migrate import migrate as run  # noqa: PLC0415 - psycopg lazily

    if not is_database_url(to):
        raise InputError(f"--to must be a postgresql:// URL, not {to[:40]!r}")
    loaded = load_home(resolve_home(home))

    def progress(what: str, count: int) -> None:
        if not as_json:
            typer.echo(f"copied {count} {what}", err=True)

    done = run(loaded, to, progress=progress)
    if as_json:
        echo_json(done.as_json())
        return
    typer.echo(
        f"migrated {done.entries} entries, {done.blocks} blocks and checkpoints, "
        f"{done.cosignatures} cosignatures, {done.files} file paths and {done.openings} "
        f"openings to {done.target}\nproven: every checkpoint identical, every root equal, "
        f"full verification passed (root {done.root_hash})\n"
        f"{loaded.path} now uses {done.target}; {loaded.database.name} was left as it was")
