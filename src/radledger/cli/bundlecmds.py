"""``radledger bundle create`` and ``radledger bundle verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radledger.cli.common import HomeOption, JsonOption, echo_json, open_home
from radledger.ledger.setup import open_workspace
from radledger.reviewer import Checks, render, verify_file

bundle_app = typer.Typer(help="Reviewer bundles: one file, verifiable offline.",
                         no_args_is_help=True)


@bundle_app.command("create")
def bundle_create(
    release: Annotated[str, typer.Option(
        "--release", help="NAME or NAME@VERSION (default: the latest version).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The bundle file to write.",
                                      dir_okay=False)],
    files_root: Annotated[Path | None, typer.Option(
        "--files-root", help="The folder the released files are shipped as: member files "
                             "are named relative to it (default: their common folder).",
        file_okay=False)] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a release's bundle: entries with tlog-proofs, checkpoint, keys, manifest."""
    from radledger.ledger import bundle, trail  # noqa: PLC0415 - loads pydicom
    from radledger.ledger.anchor import anchor_receipts  # noqa: PLC0415

    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    name, _, version = release.partition("@")
    made = bundle.create_bundle(space, bundle.ledger_vkey(
        loaded.origin, loaded.ledger_signer.signing_key.public_key), bundle.BundleRequest(
        name, version or None, files_root, tuple(anchor_receipts(loaded))))
    bundle.write_bundle(made, out)
    trail.record_access(space, loaded.actor_signer, "export",
                        f"bundle:dataset.released/{made.release}")
    if as_json:
        echo_json({"bundle": str(out), "release": made.release,
                   "entries": len(made.entries), "files": len(made.files)})
    else:
        typer.echo(f"wrote {out}: release entry {made.release}, {len(made.entries)} entries "
                   f"with proofs, {len(made.files)} member files")


@bundle_app.command("verify")
def bundle_verify(
    bundle_file: Annotated[Path, typer.Argument(help="The bundle.", dir_okay=False)],
    data: Annotated[Path | None, typer.Option(
        "--data", help="The released files, to rehash.", file_okay=False)] = None,
    trust_key: Annotated[str | None, typer.Option(
        "--trust-key", help="The ledger's verifier key (C2SP vkey) to pin.")] = None,
    witness: Annotated[list[str] | None, typer.Option(
        "--witness", help="A witness's verifier key (type 0x04) to pin. Repeatable.")
    ] = None,
    quorum: Annotated[int, typer.Option(help="Witness cosignatures required.", min=0)] = 0,
    rpc: Annotated[str | None, typer.Option(
        "--rpc", help="Re-check anchor receipts against this chain (goes online).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a bundle offline (no ledger home, no network); exit 1 on any failure."""
    report = verify_file(bundle_file, Checks(data, trust_key, quorum, tuple(witness or []), rpc))
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, "summary": report.summary,
                               "claims": report.claims, "failures": report.failures},
                              sort_keys=True))
    else:
        typer.echo(render(report))
    if not report.ok:
        raise typer.Exit(1)
