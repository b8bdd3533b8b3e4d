"""``radledger export prov|fhir``: the provenance of a study, file or the whole ledger as W3C
PROV-JSON or a FHIR R4 Bundle (Provenance and AuditEvent). Each export is recorded
(``access.recorded``, action ``export``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radledger.cli.common import HomeOption, open_home
from radledger.ledger.setup import open_workspace
from radledger.storage.files import write_atomically

export_app = typer.Typer(help="Provenance exports (W3C PROV-JSON, FHIR).", no_args_is_help=True)

TargetArgument = Annotated[str | None, typer.Argument(
    help="A Study/Series/SOP Instance UID, a pseudonym or a file: export its history. "
         "Without it, the whole ledger.", metavar="[UID_OR_PATH]")]
OutOption = Annotated[Path | None, typer.Option(
    "-o", "--out", help="Write to this file (atomically) instead of standard output.",
    dir_okay=False)]


def _export(fmt: str, target: str | None, out: Path | None, home: str | None) -> None:
    # the export modules load prov and fhir.resources, not wanted on every CLI start
    from radledger.ledger import trail  # noqa: PLC0415
    from radledger.ledger.export import ledger_entries, parse_rows  # noqa: PLC0415
    from radledger.ledger.history import history  # noqa: PLC0415

    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    entries = parse_rows(history(space, target)[0]) if target else ledger_entries(ledger.store)
    if fmt == "prov":
        from radledger.ledger.export_prov import prov_json  # noqa: PLC0415

        text = prov_json(loaded.origin, entries)
    else:
        from radledger.ledger.export_fhir import to_fhir_bundle  # noqa: PLC0415

        text = json.dumps(to_fhir_bundle(loaded.origin, entries), indent=2, sort_keys=True)
    # the target itself is not recorded: a UID is an identifier
    trail.record_access(space, loaded.actor_signer, "export",
                        f"{fmt}:{'history' if target else 'ledger'}:{len(entries)} entries")
    if out is None:
        typer.echo(text)
        return
    write_atomically(out, (text + "\n").encode("utf-8"))


@export_app.command("prov")
def export_prov(target: TargetArgument = None, out: OutOption = None,
                home: HomeOption = None) -> None:
    """W3C PROV-JSON: entities (instances, files, protocols, releases), activities
    (derivations, access, erasure), agents (actors)."""
    _export("prov", target, out, home)


@export_app.command("fhir")
def export_fhir(target: TargetArgument = None, out: OutOption = None,
                home: HomeOption = None) -> None:
    """A FHIR R4 Bundle of Provenance and AuditEvent resources."""
    _export("fhir", target, out, home)
