"""The ``radledger`` command: parse, call a ledger service, render.

Exit codes: 0 ok, 1 verification failure, 2 usage or input error (including storage errors),
3 a run that finished but rejected some of its inputs (``ingest``; each is named).
Errors are mapped to exit codes in exactly one place, ``run()``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from radledger.cli import (
    anchorcmds,
    appendcmd,
    bundlecmds,
    dicomcmds,
    exportcmds,
    migratecmd,
    orthanccmds,
    scpcmds,
    servecmds,
    tokencmds,
    trailcmds,
    witnesscmds,
)
from radledger.cli.common import (
    HomeOption,
    JsonOption,
    echo_json,
    open_home,
    witness_new_checkpoints,
)
from radledger.cli.progress import entry_progress
from radledger.core.checkpoint import open_checkpoint
from radledger.core.entry import parse_entry
from radledger.core.note import format_vkey
from radledger.errors import InputError, RadledgerError, VerificationError
from radledger.ledger import keyadmin, proofs
from radledger.ledger.audit import run_verification
from radledger.ledger.home import is_database_url, resolve_home
from radledger.ledger.setup import init_ledger, open_workspace
from radledger.ledger.verify import VerifyReport
from radledger.ledger.witnessing import checkpoint_with_cosignatures

app = typer.Typer(
    name="radledger",
    help="A tamper-evident research ledger for radiological imaging.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
key_app = typer.Typer(help="The ledger's keys.", no_args_is_help=True)
proof_app = typer.Typer(help="RFC 9162 inclusion and consistency proofs.", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(proof_app, name="proof")
app.command("append")(appendcmd.append)
app.command("ingest")(dicomcmds.ingest)
app.command("history")(dicomcmds.history)
app.command("deidentify")(dicomcmds.deidentify)
app.command("scp")(scpcmds.scp)
trailcmds.register(app)
app.add_typer(exportcmds.export_app, name="export")
app.add_typer(bundlecmds.bundle_app, name="bundle")
app.add_typer(witnesscmds.witness_app, name="witness")
app.add_typer(anchorcmds.anchor_app, name="anchor")
app.add_typer(orthanccmds.orthanc_app, name="orthanc")
app.add_typer(tokencmds.token_app, name="token")
app.command("serve")(servecmds.serve)
app.command("migrate")(migratecmd.migrate)


@app.command()
def init(
    directory: Annotated[str | None, typer.Argument(
        help="Ledger home to create (default: --home, $RADLEDGER_HOME or ./radledger-home).")
    ] = None,
    origin: Annotated[str | None, typer.Option(
        help="The log's identity in its checkpoints (default: radledger.local/<random id>).")
    ] = None,
    actor: Annotated[str | None, typer.Option(
        help="Name of your own signing key (default: your login name).")] = None,
    database: Annotated[str | None, typer.Option(
        "--database", help="Keep the ledger in PostgreSQL: a postgresql:// URL (put the "
        "password in ~/.pgpass, not the URL). Default: ledger.sqlite3 in the home.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a ledger: database, ledger signing key, your actor key, project pseudonym key."""
    path = Path(directory) if directory else resolve_home(home)
    if database is not None and not is_database_url(database):
        raise InputError(f"--database must be a postgresql:// URL, not {database[:40]!r}")
    created, ledger = init_ledger(path, origin, actor, database_url=database)
    vkey = format_vkey(created.origin, created.ledger_signer.signing_key.public_key)
    if as_json:
        echo_json({"home": str(path), "origin": created.origin, "vkey": vkey,
                   "tree_size": ledger.store.entry_count()})
    else:
        typer.echo(f"created ledger {created.origin} in {path}\nverifier key: {vkey}")


@app.command("log")
def log_(
    start: Annotated[int, typer.Option(help="First index to list.", min=0)] = 0,
    limit: Annotated[int, typer.Option(help="How many entries to list.", min=1)] = 50,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List entries: index, kind, actor, claimed time, leaf hash (--json: one object a line)."""
    _, ledger = open_home(home)
    for index, _kind, leaf, data in ledger.store.entries(start, start + limit):
        entry = parse_entry(data)
        if as_json:
            typer.echo(json.dumps({"index": index, "leaf_hash": leaf.hex(),
                                   "entry": json.loads(data)}, sort_keys=True))
        else:
            typer.echo(f"{index:>8}  {entry.kind:<22} {entry.actor:<32} {entry.claimed_time}"
                       f"  {leaf.hex()[:16]}")


@app.command()
def show(
    index: Annotated[int, typer.Argument(help="The entry's index.", min=0)],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one entry with its leaf hash and block."""
    _, ledger = open_home(home)
    found = ledger.store.entry(index)
    if found is None:
        raise InputError(f"no entry {index} (ledger size {ledger.store.entry_count()})")
    leaf, data = found
    block = ledger.store.block_containing(index)
    out = {"index": index, "leaf_hash": leaf.hex(), "entry": json.loads(data),
           "block": block.height if block else None}
    if as_json:
        echo_json(out)
    else:
        typer.echo(f"entry {index}  leaf {leaf.hex()}  block {out['block']}")
        typer.echo(json.dumps(out["entry"], indent=2, sort_keys=True, ensure_ascii=False))


@app.command()
def checkpoint(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print the latest signed checkpoint (C2SP signed note) with every witness cosignature
    gathered: one signature line per cosigner."""
    loaded, ledger = open_home(home)
    note = checkpoint_with_cosignatures(ledger.store)
    if as_json:
        cp = open_checkpoint(note, loaded.ledger_verifier, origin=loaded.origin)
        block = cp.block
        echo_json({"origin": cp.origin, "tree_size": cp.tree_size, "root": cp.root_hash.hex(),
                   "block": block.height if block else None, "note": note})
    else:
        sys.stdout.write(note)


@key_app.command("show")
def key_show(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Print the ledger's verifier key (C2SP vkey: name+keyid+base64(0x01 || key))."""
    loaded, _ = open_home(home)
    vkey = format_vkey(loaded.origin, loaded.ledger_signer.signing_key.public_key)
    if as_json:
        echo_json({"origin": loaded.origin, "vkey": vkey})
    else:
        typer.echo(vkey)


@key_app.command("add")
def key_add(
    name: Annotated[str, typer.Argument(help="The person's or service's key name.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an actor key in keys/actors/NAME.skey and register it (signed by the ledger)."""
    loaded, ledger = open_home(home)
    signer, receipt = keyadmin.add_key(loaded, ledger, name)
    actor = keyadmin.signer_actor(signer)
    vkey = format_vkey(signer.name, signer.signing_key.public_key)
    if as_json:
        echo_json({"actor": actor, "vkey": vkey, "index": receipt.index})
    else:
        typer.echo(f"registered {actor} at entry {receipt.index}; sign with --as {name}")


@key_app.command("revoke")
def key_revoke(
    actor: Annotated[str, typer.Argument(help="The key to revoke, as name+keyid.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: its earlier signatures keep verifying, later ones are refused."""
    loaded, ledger = open_home(home)
    receipt = keyadmin.revoke_key(loaded, ledger, actor, reason)
    if as_json:
        echo_json({"actor": actor, "index": receipt.index})
    else:
        typer.echo(f"revoked {actor} at entry {receipt.index}")


@key_app.command("list")
def key_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Every registered key: actor, role, entry that registered it, entry that revoked it."""
    _, ledger = open_home(home)
    keys = keyadmin.list_keys(ledger)
    if as_json:
        echo_json([{"actor": k.actor, "role": k.role, "registered_at": k.registered_at,
                    "revoked_at": k.revoked_at} for k in keys])
        return
    for k in keys:
        revoked = f"revoked at {k.revoked_at}" if k.revoked_at is not None else "in force"
        typer.echo(f"{k.actor:<48} {k.role:<8} registered at {k.registered_at:<8} {revoked}")


@proof_app.command("inclusion")
def proof_inclusion(
    index: Annotated[int, typer.Argument(min=0)],
    size: Annotated[int | None, typer.Option(
        "--size", help="Tree size (default: the latest sealed size).")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Prove entry INDEX is in the tree (hashes hex, one per line)."""
    _, ledger = open_home(home)
    result = proofs.inclusion(ledger.store, index, size)
    if as_json:
        echo_json({"index": result.index, "tree_size": result.tree_size,
                   "leaf_hash": result.leaf_hash.hex(),
                   "proof": [h.hex() for h in result.proof], "root": result.root.hex()})
    else:
        for digest in result.proof:
            typer.echo(digest.hex())


@proof_app.command("consistency")
def proof_consistency(
    size1: Annotated[int, typer.Argument(min=0)],
    size2: Annotated[int, typer.Argument(min=0)],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Prove the tree of SIZE1 is a prefix of the tree of SIZE2."""
    _, ledger = open_home(home)
    result = proofs.consistency(ledger.store, size1, size2)
    if as_json:
        echo_json({"size1": result.size1, "size2": result.size2,
                   "proof": [h.hex() for h in result.proof],
                   "root1": result.root1.hex(), "root2": result.root2.hex()})
    else:
        for digest in result.proof:
            typer.echo(digest.hex())


@app.command()
def fingerprint(
    files: Annotated[list[Path], typer.Argument(help="DICOM files.", dir_okay=False)],
    as_json: JsonOption = False,
) -> None:
    """Print each file's fingerprints (file, decoded pixels, header) without touching a ledger.

    A file that is not acceptable DICOM gets an `error:` line naming it; the others are still
    printed, and the exit code is 2 if any was rejected.
    """
    # pydicom and numpy load only for DICOM commands, not on every CLI start
    from radledger.dicom.fingerprint import fingerprint_file  # noqa: PLC0415

    results, failed = [], 0
    for path in files:
        try:
            results.append(fingerprint_file(path).as_json())
        except InputError as exc:
            failed += 1
            typer.echo(f"error: {exc}", err=True)
    if as_json:
        typer.echo(json.dumps(results, sort_keys=True))
    else:
        for result in results:
            typer.echo(result["path"])
            for key in ("file_sha256", "pixel_sha256", "pixel_hash_kind", "meta_sha256",
                        "sop_class_uid", "modality", "transfer_syntax_uid"):
                typer.echo(f"  {key:<20} {result[key]}")
    if failed:
        raise typer.Exit(2)


@app.command()
def verify(
    against: Annotated[Path | None, typer.Option(
        "--against", help="A signed checkpoint saved earlier: prove the ledger extends it.",
        exists=True, dir_okay=False)] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Also rehash the registered files under this folder.",
        exists=True, file_okay=False)] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes for signature checks and hashing (default: all CPUs).",
        min=1)] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Full audit: signatures, canonical form, leaf hashes, tree nodes, blocks, checkpoints.

    With --data DIR, also every registered file under DIR: modified (saying whether pixels,
    header or only the encoding changed), missing, or unregistered.
    """
    loaded, ledger = open_home(home)
    with entry_progress(ledger.store.entry_count(), enabled=not as_json) as progress:
        # recorded (verify-runs.jsonl), as the API's runs are: when was it last verified
        report, _ = run_verification(ledger.store, loaded, "cli", workers=workers,
                                     progress=progress)
    against_error: VerificationError | None = None
    if against is not None and report.ok:
        try:
            proofs.check_against(ledger.store, against.read_text(), loaded.ledger_verifier,
                                 loaded.origin)
        except VerificationError as exc:
            against_error = exc
    ok = report.ok and against_error is None
    problems = [p.as_json() for p in report.problems]
    if against_error is not None:
        problems.append({"what": against_error.what, "expected": _hex(against_error.expected),
                         "computed": _hex(against_error.computed)})
    if not as_json:
        _print_verify(report, against, against_error)
    data_ok, data_report = True, None
    if data is not None:
        data_ok, data_report = dicomcmds.check_data_folder(
            open_workspace(loaded, ledger), data, workers, as_json)
    if as_json:
        out: dict[str, object] = {"ok": ok and data_ok, "tree_size": report.tree_size,
                                  "problems": problems}
        if data_report is not None:
            out["data"] = data_report
        echo_json(out)
    elif not data_ok:
        typer.echo("data verification FAILED: files modified or missing", err=True)
    if not (ok and data_ok):
        raise typer.Exit(1)


def _print_verify(report: VerifyReport, against: Path | None,
                  against_error: VerificationError | None) -> None:
    for problem in report.problems:
        typer.echo(f"FAIL {problem}", err=True)
    if against_error is not None:
        typer.echo(f"FAIL {against_error}", err=True)
    if report.ok and against_error is None:
        extra = f"; consistent with {against}" if against else ""
        typer.echo(f"ok: {report.entries_checked} entries, {report.blocks_checked} blocks "
                   f"verified, tree size {report.tree_size}{extra}")
    else:
        typer.echo(f"verification FAILED: {report.problem_count} problem(s)", err=True)


def _hex(value: object) -> object:
    return value.hex() if isinstance(value, bytes) else value


def run() -> None:
    """Console entry point: the one place errors become exit codes."""
    try:
        try:
            app()
        finally:  # what was sealed goes to the witnesses, also when the command failed late
            witness_new_checkpoints()
    except RadledgerError as exc:
        typer.echo(f"error: {exc.diagnostics()}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
