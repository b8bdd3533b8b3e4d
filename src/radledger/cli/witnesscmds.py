"""``radledger witness ...``: run a witness for other sites' ledgers, and get this ledger's
checkpoints cosigned by theirs.

Witness side (a witness home, not a ledger home): ``init``, ``key``, ``serve``.
Ledger side (the ledger home): ``add``, ``list``, ``sync``.

Also runnable alone, ``python -m radledger.cli.witnesscmds serve ...``, with the same error
handling as ``radledger``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from radledger.cli.common import HomeOption, JsonOption, echo_json, open_home
from radledger.core.note import Verifier
from radledger.errors import RadledgerError
from radledger.ledger import witness_server as ws
from radledger.ledger import witnessing
from radledger.storage.cosignatures import last_cosigned

witness_app = typer.Typer(
    help="Witnesses (C2SP tlog-witness): cosign other ledgers' checkpoints, collect "
         "cosignatures of this one.",
    no_args_is_help=True,
)

DirOption = Annotated[str | None, typer.Option(
    "--dir", envvar=ws.WITNESS_HOME_ENV, show_envvar=True,
    help="Witness home folder (default ./witness-home).")]


@witness_app.command("init")
def witness_init(
    name: Annotated[str | None, typer.Option(
        help="The witness's key name, a schema-less URL (default: "
             "radledger.local/witness-<random>).")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a witness home with a new cosigning key (type 0x04, mode 0600)."""
    path = ws.resolve_witness_home(directory)
    cosigner = ws.init_witness_home(path, name)
    vkey = cosigner.verifier.vkey
    if as_json:
        echo_json({"dir": str(path), "name": cosigner.name, "vkey": vkey})
    else:
        typer.echo(f"created witness {cosigner.name} in {path}\nwitness key: {vkey}")


@witness_app.command("key")
def witness_key(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Print the witness's verifier key (vkey: name+keyid+base64(0x04 || key))."""
    cosigner = ws.load_witness_key(ws.resolve_witness_home(directory))
    if as_json:
        echo_json({"name": cosigner.name, "vkey": cosigner.verifier.vkey})
    else:
        typer.echo(cosigner.verifier.vkey)


@witness_app.command("serve")
def witness_serve(
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).", min=0,
                                      max=65535)],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    log: Annotated[list[str] | None, typer.Option(
        "--log", help="A log to witness, ORIGIN=VKEY (or VKEY alone: its name is the "
                      "origin, as for radledger ledgers). Repeat for more logs.")] = None,
    directory: DirOption = None,
) -> None:
    """Serve POST /add-checkpoint until interrupted; prints one line when listening."""
    logs: dict[str, list[Verifier]] = {}
    for text in log or []:
        origin, verifier = ws.parse_log_option(text)
        logs.setdefault(origin, []).append(verifier)
    witness = ws.open_witness(ws.resolve_witness_home(directory), logs)
    server = ws.make_server(witness, host, port)
    bound_host, bound_port = server.server_address[:2]
    typer.echo(f"witness {witness.cosigner.name} listening on "
               f"http://{bound_host!s}:{bound_port} for {len(logs)} log(s)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        witness.store.close()


@witness_app.command("add")
def witness_add(
    name: Annotated[str, typer.Argument(help="A local name for the witness.")],
    url: Annotated[str, typer.Argument(help="Its submission prefix, e.g. http://host:port.")],
    vkey: Annotated[str, typer.Argument(help="Its verifier key (type 0x04).")],
    quorum: Annotated[int | None, typer.Option(
        help="Also set the quorum: cosignatures required (default: a majority).",
        min=0)] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a witness to the ledger home's witnesses.toml."""
    loaded, _ = open_home(home)
    configured = witnessing.add_witness(loaded.path, name, url, vkey, quorum)
    if as_json:
        echo_json({"name": name, "witnesses": len(configured.witnesses),
                   "quorum": configured.required})
    else:
        typer.echo(f"added witness {name}; {len(configured.witnesses)} witness(es), quorum "
                   f"{configured.required}")


@witness_app.command("list")
def witness_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Each witness: URL, key, the largest tree size it cosigned; and the quorum state."""
    loaded, ledger = open_home(home)
    configured = witnessing.load_witnesses(loaded.path)
    signed = set(witnessing.cosigners(ledger.store, configured.witnesses))
    rows = []
    for w in configured.witnesses:
        last = last_cosigned(ledger.store, w.vkey)
        rows.append({"name": w.name, "url": w.url, "vkey": w.vkey,
                     "last_cosigned_size": last.tree_size if last else None,
                     "cosigned_latest": w.vkey in signed})
    summary = {"witnesses": rows, "quorum": configured.required,
               "cosigned_latest": len(signed),
               "witnessed": len(signed) >= configured.required}
    if as_json:
        echo_json(summary)
        return
    for row in rows:
        typer.echo(f"{row['name']:<20} {row['url']:<32} last cosigned "
                   f"{row['last_cosigned_size']}  {row['vkey']}")
    typer.echo(f"latest checkpoint: {len(signed)} of {len(rows)} cosigned, quorum "
               f"{configured.required}: {'witnessed' if summary['witnessed'] else 'not yet'}")


@witness_app.command("sync")
def witness_sync(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each witness.",
                                           min=0.1)] = witnessing.TIMEOUT_S,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send the latest checkpoint to every witness with a consistency proof; store the
    cosignatures, or the refusals as evidence.

    Exit 0: all cosigned; 1: a witness refused (evidence stored); 3: some unreachable.
    """
    loaded, ledger = open_home(home)
    configured = witnessing.load_witnesses(loaded.path)
    outcomes = witnessing.sync_witnesses(ledger.store, configured.witnesses, timeout=timeout)
    count = len(witnessing.cosigners(ledger.store, configured.witnesses))
    done = count >= configured.required
    if as_json:
        echo_json({"outcomes": [{"witness": o.witness, "tree_size": o.tree_size,
                                 "status": o.status, "detail": o.detail,
                                 "http_status": o.http_status} for o in outcomes],
                   "cosigned_latest": count, "quorum": configured.required,
                   "witnessed": done})
    else:
        for o in outcomes:
            code = f" (HTTP {o.http_status})" if o.http_status else ""
            typer.echo(f"{o.witness}: {o.status}{code} tree size {o.tree_size}: {o.detail}")
        typer.echo(f"{count} of {len(outcomes)} cosigned, quorum {configured.required}: "
                   f"{'witnessed' if done else 'not witnessed'}")
    if any(o.status == "refused" for o in outcomes):
        raise typer.Exit(1)
    if any(o.status != "cosigned" for o in outcomes):
        raise typer.Exit(3)


def run() -> None:
    """Entry point of ``python -m radledger.cli.witnesscmds``."""
    try:
        witness_app()
    except RadledgerError as exc:
        typer.echo(f"error: {exc.diagnostics()}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    run()
