"""The research trail commands: protocol, note, result, correct, consent, erase.

Each parses its arguments, calls ``radledger.ledger.trail`` and prints the receipt.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from radledger.cli.common import HomeOption, JsonOption, echo_json, open_home
from radledger.core import jcs
from radledger.errors import InputError
from radledger.ledger import trail
from radledger.ledger.service import Receipt
from radledger.ledger.setup import open_workspace

protocol_app = typer.Typer(help="Scanning protocols and analysis plans.", no_args_is_help=True)
note_app = typer.Typer(help="Research notes (the text stays erasable).", no_args_is_help=True)
result_app = typer.Typer(help="Analysis results.", no_args_is_help=True)
consent_app = typer.Typer(help="Patients' consent, by scope.", no_args_is_help=True)
release_app = typer.Typer(help="Named, versioned dataset releases.", no_args_is_help=True)

AboutOption = Annotated[list[str], typer.Option(
    "--about", help="An entry index, or a registered Study/Series/SOP Instance UID "
                    "(pseudonymised before lookup). Repeatable.")]
PatientOption = Annotated[str, typer.Option(
    "--patient", help="The PatientID; it is pseudonymised at once and never stored.")]
ScopeOption = Annotated[str | None, typer.Option(
    "--scope", help="The project the consent covers (default: this ledger's origin).")]


def _pairs(values: list[str], what: str) -> dict[str, jcs.JSONValue]:
    """``k=v`` options; a value that parses as JSON (a number, true) is kept as that."""
    out: dict[str, jcs.JSONValue] = {}
    for item in values:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise InputError(f"{what} {item!r:.80} must look like name=value")
        try:
            out[name] = jcs.loads(text)
        except InputError:
            out[name] = text
    return out


def _receipt(receipt: Receipt, kind: str, as_json: bool, **extra: object) -> None:
    if as_json:
        echo_json({"index": receipt.index, "leaf_hash": receipt.leaf_hash.hex(), "kind": kind,
                   **extra})
    else:
        typer.echo(f"{receipt.index} {receipt.leaf_hash.hex()}")


@protocol_app.command("register")
def protocol_register(
    document: Annotated[Path, typer.Argument(help="The protocol or plan document.",
                                             exists=True, dir_okay=False)],
    name: Annotated[str, typer.Option("--name", help="The protocol's name.")],
    modality: Annotated[str | None, typer.Option(help="e.g. MR, CT.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="A non-identifying parameter, name=value. Repeatable.")] = None,
    version: Annotated[str | None, typer.Option(help="The protocol's version.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pre-register a protocol: the document's SHA-256, its name and parameters."""
    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    protocol = trail.Protocol(name, document.read_bytes(), modality,
                              _pairs(param or [], "--param"), version)
    _receipt(trail.register_protocol(space, loaded.actor_signer, protocol),
             "protocol.registered", as_json)


@note_app.command("add")
def note_add(
    about: AboutOption,
    text: Annotated[str | None, typer.Argument(help="The note (or use --file).")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="Read the note from a file ('-': stdin).", dir_okay=False)] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a note: the ledger holds a salted commitment, the text stays in the side store."""
    if (text is None) == (file is None):
        raise InputError("give the note as TEXT or with --file, not both")
    data = text.encode() if text is not None else (
        sys.stdin.buffer.read() if str(file) == "-" else Path(str(file)).read_bytes())
    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    _receipt(trail.add_note(space, loaded.actor_signer, trail.about(space, about), data),
             "note.added", as_json)


@note_app.command("show")
def note_show(
    index: Annotated[int, typer.Argument(min=0, help="The note's entry index.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a note's text, checked against its commitment (or say it was erased). The
    read is recorded (access.recorded): a note may hold identified data."""
    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    text = trail.read_note(space, index)
    if text is not None:
        trail.record_access(space, loaded.actor_signer, "read", f"note.added/{index}")
    if as_json:
        echo_json({"index": index, "erased": text is None,
                   "text": None if text is None else text.decode("utf-8", "replace")})
    elif text is None:
        typer.echo(f"note {index}: erased (its commitment can no longer be opened)")
    else:
        typer.echo(text.decode("utf-8", "replace"))


@result_app.command("record")
def result_record(
    about: AboutOption,
    file: Annotated[Path, typer.Option("--file", help="The result file.", exists=True,
                                       dir_okay=False)],
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="A metric, name=value. Repeatable.")] = None,
    name: Annotated[str | None, typer.Option(help="The result's name.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an analysis result: the file's SHA-256, metrics, what it is about."""
    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    result = trail.Result(file.read_bytes(), name, _pairs(metric or [], "--metric"))
    _receipt(trail.record_result(space, loaded.actor_signer, trail.about(space, about), result),
             "result.recorded", as_json)


def correct(
    index: Annotated[int, typer.Argument(min=0, help="The entry to supersede.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    body: Annotated[str | None, typer.Option(
        "--body", help="The corrected body, as JSON.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Supersede an entry with a reason (and a corrected body); both entries stay."""
    corrected = jcs.loads(body) if body is not None else None
    if corrected is not None and not isinstance(corrected, dict):
        raise InputError("--body must be a JSON object")
    loaded, ledger = open_home(home)
    _receipt(trail.correct(open_workspace(loaded, ledger), loaded.actor_signer, index, reason,
                           corrected), "correction.recorded", as_json)


def _consent(patient: str, scope: str | None, evidence: Path | None, home: str | None,
             granted: bool, as_json: bool) -> None:
    loaded, ledger = open_home(home)
    change = trail.Consent(patient, scope or loaded.origin, granted,
                           evidence.read_bytes() if evidence else None)
    kind = "consent.granted" if granted else "consent.withdrawn"
    _receipt(trail.record_consent(open_workspace(loaded, ledger), loaded.actor_signer, change),
             kind, as_json, scope=change.scope)


EvidenceOption = Annotated[Path | None, typer.Option(
    "--evidence", help="The signed form or record: committed, never stored.", exists=True,
    dir_okay=False)]


@consent_app.command("grant")
def consent_grant(patient: PatientOption, scope: ScopeOption = None,
                  evidence: EvidenceOption = None, home: HomeOption = None,
                  as_json: JsonOption = False) -> None:
    """Record that a patient granted consent for a scope."""
    _consent(patient, scope, evidence, home, True, as_json)


@consent_app.command("withdraw")
def consent_withdraw(patient: PatientOption, scope: ScopeOption = None,
                     evidence: EvidenceOption = None, home: HomeOption = None,
                     as_json: JsonOption = False) -> None:
    """Record that a patient withdrew consent for a scope (later releases refuse them)."""
    _consent(patient, scope, evidence, home, False, as_json)


@consent_app.command("show")
def consent_show(patient: PatientOption, scope: ScopeOption = None, home: HomeOption = None,
                 as_json: JsonOption = False) -> None:
    """Whether a patient's consent is in force for a scope, and which entry says so."""
    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    in_force, index = trail.consent_in_force(space, trail.patient_key(space, patient),
                                             scope or loaded.origin)
    if as_json:
        echo_json({"in_force": in_force, "index": index, "scope": scope or loaded.origin})
    else:
        said = f" (entry {index})" if index is not None else " (never recorded)"
        typer.echo(("in force" if in_force else "not in force") + said)


def erase(
    patient: PatientOption,
    reason: Annotated[str, typer.Option("--reason", help="The request being honoured.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Crypto-shred a patient's committed data (note texts, evidence salts); records
    erasure.recorded. verify and every earlier proof still pass."""
    loaded, ledger = open_home(home)
    receipt, erased = trail.erase_patient(open_workspace(loaded, ledger), loaded.actor_signer,
                                          patient, reason, loaded.actor_signer.name)
    if as_json:
        echo_json({"index": receipt.index, "leaf_hash": receipt.leaf_hash.hex(),
                   "kind": "erasure.recorded", "commitments": erased})
    else:
        typer.echo(f"{receipt.index} {receipt.leaf_hash.hex()}\n"
                   f"erased the openings of {len(erased)} commitment(s)")


def derive(
    op: Annotated[str, typer.Option("--op", help="segment, register, convert, annotate, "
                                                  "analyse, infer or deidentify.")],
    inputs: Annotated[list[str], typer.Option(
        "--input", help="An entry index, a registered file, or a registered Study/Series/SOP "
                        "Instance UID. Repeatable.")],
    outputs: Annotated[list[Path], typer.Option(
        "--output", help="A file the step produced. Repeatable.", exists=True,
        dir_okay=False)],
    tool: Annotated[str, typer.Option("--tool", help="The tool's name.")],
    tool_version: Annotated[str, typer.Option("--tool-version", help="The tool's version.")],
    params: Annotated[Path | None, typer.Option(
        "--params", help="The parameters or recipe file (its SHA-256 is recorded).",
        exists=True, dir_okay=False)] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="A non-identifying parameter in clear, name=value. Repeatable.")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a processing step: inputs -> outputs; DICOM outputs are registered."""
    from radledger.ledger.derive import (  # noqa: PLC0415 - loads pydicom
        Derivation,
        record_derivation,
        resolve_inputs,
    )

    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    derivation = Derivation(op, tool, tool_version, params.read_bytes() if params else None,
                            _pairs(param or [], "--param"))
    receipt, recorded = record_derivation(space, loaded.actor_signer, derivation,
                                          resolve_inputs(space, inputs), outputs)
    _receipt(receipt, "derivation.recorded", as_json, outputs=recorded)


@release_app.command("create")
def release_create(
    name: Annotated[str, typer.Argument(help="The release's name.")],
    version: Annotated[str, typer.Option("--version", help="The release's version.")],
    study: Annotated[list[str] | None, typer.Option(
        "--study", help="A Study/Series/SOP Instance UID (original or de-identified). "
                        "Repeatable.")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", help="A file listing members, one per line: entry index, registered "
                            "file, or UID.", exists=True, dir_okay=False)] = None,
    every: Annotated[bool, typer.Option(
        "--all", help="Every de-identified instance in the ledger.")] = False,
    scope: ScopeOption = None,
    exclude_unconsented: Annotated[bool, typer.Option(
        help="Leave out (and list) members without consent instead of refusing.")] = False,
    allow_identified: Annotated[bool, typer.Option(
        help="An internal release: identified instances allowed.")] = False,
    include_burned_in: Annotated[bool, typer.Option(
        help="Include members flagged for burned-in annotation review (recorded).")] = False,
    description: Annotated[str | None, typer.Option(help="What the release is.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Release a dataset: manifest, Merkle root and the consent state checked now."""
    from radledger.ledger import release  # noqa: PLC0415 - loads pydicom via derive
    from radledger.ledger.derive import resolve_inputs  # noqa: PLC0415

    if sum((bool(study), from_file is not None, every)) != 1:
        raise InputError("choose the members with exactly one of --study, --from-file, --all")
    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    if every:
        members = release.deidentified_instances(space)
    else:
        targets = study or [line.strip() for line in Path(str(from_file)).read_text()
                            .splitlines() if line.strip()]
        members = release.prefer_deidentified(space, resolve_inputs(space, targets))
    plan = release.ReleasePlan(name, version, members, scope or loaded.origin,
                               exclude_unconsented, allow_identified, include_burned_in,
                               description)
    receipt = release.create_release(space, loaded.actor_signer, plan)
    body = json.loads(ledger.store.entry(receipt.index)[1])["body"]  # type: ignore[index]
    if as_json:
        echo_json({"index": receipt.index, "leaf_hash": receipt.leaf_hash.hex(),
                   "kind": "dataset.released", "members": len(body["members"]),
                   "manifest_root": body["manifest_root"], "consent": body["consent"]})
    else:
        typer.echo(f"{receipt.index} {receipt.leaf_hash.hex()}\n"
                   f"released {name} {version}: {len(body['members'])} members, manifest "
                   f"root {body['manifest_root']}; excluded for lack of consent: "
                   f"{body['consent']['excluded_unconsented'] or 'none'}")


def register(app: typer.Typer) -> None:
    """Add the trail commands to the radledger app."""
    app.add_typer(protocol_app, name="protocol")
    app.add_typer(note_app, name="note")
    app.add_typer(result_app, name="result")
    app.add_typer(consent_app, name="consent")
    app.add_typer(release_app, name="release")
    app.command("correct")(correct)
    app.command("derive")(derive)
    app.command("erase")(erase)
