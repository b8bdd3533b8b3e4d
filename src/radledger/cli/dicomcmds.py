"""``radledger ingest`` and ``radledger history``: DICOM folders into the ledger, and back.

pydicom and numpy load only when one of these commands runs, not on every CLI start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from radledger.cli.common import HomeOption, JsonOption, echo_json, open_home
from radledger.cli.progress import file_progress
from radledger.core.entry import parse_entry
from radledger.ledger.setup import Workspace, open_workspace

EXIT_REJECTED = 3  # the run finished, but some files were rejected (each named)
_COUNT_KEYS = {"registered": "registered", "new-version": "new_versions",
               "already-registered": "already_registered", "rejected": "rejected"}

WorkersOption = Annotated[int | None, typer.Option(
    help="Worker processes for fingerprinting (default: all CPUs).", min=1)]


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="DICOM files or folders to register.")],
    workers: WorkersOption = None,
    protocol: Annotated[str | None, typer.Option(
        "--protocol", help="The registered protocol the instances were acquired under.")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register every DICOM instance under PATHS: fingerprints, pseudonymous keys, no PHI.

    Already registered files add nothing; a changed file at a known path is a new version
    referencing the old entry. Files that are not acceptable DICOM are named with the reason
    and the rest go on; the exit code is then 3.
    """
    from radledger.ledger.files import count  # noqa: PLC0415
    from radledger.ledger.ingest import FileOutcome, Ingester  # noqa: PLC0415
    from radledger.ledger.ingest import ingest as ingest_files  # noqa: PLC0415
    from radledger.ledger.trail import protocol_index  # noqa: PLC0415

    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    ingester = Ingester(space, loaded.actor_signer,
                        protocol_index(space, protocol) if protocol else None)
    show_progress = not as_json and os.isatty(2)
    total_files, total_bytes = count(paths) if show_progress else (0, 0)
    first = True
    if as_json:
        typer.echo('{"files": [')

    with file_progress("ingesting", total_files, total_bytes, enabled=show_progress) as tick:

        def on_outcome(outcome: FileOutcome, size: int) -> None:
            nonlocal first
            if tick is not None:
                tick(size)
            if as_json:
                # one file a line, printed once durable: a reader may act on each line
                typer.echo(("" if first else ", ") + json.dumps(outcome.as_json(),
                                                                sort_keys=True))
                first = False
            elif outcome.status == "rejected":
                typer.echo(f"rejected {outcome.error}", err=True)
            elif outcome.status == "new-version":
                typer.echo(f"new version {outcome.path}: entry {outcome.index} supersedes "
                           f"entry {outcome.previous}")
            if outcome.flags and not as_json:
                typer.echo(f"flagged {outcome.path}: {', '.join(outcome.flags)} (recorded; "
                           "the file is never executed or copied)", err=True)

        summary = ingest_files(ingester, paths, workers or os.cpu_count() or 1, on_outcome)
    counts = {_COUNT_KEYS[status]: n for status, n in summary.counts.items()}
    if as_json:
        typer.echo("], " + json.dumps(counts, sort_keys=True)[1:])
    else:
        new = counts["registered"] + counts["new_versions"]
        typer.echo(f"{sum(counts.values())} files: {counts['registered']} registered, "
                   f"{counts['new_versions']} new versions, {counts['already_registered']} "
                   f"already registered, {counts['rejected']} rejected"
                   + ("" if new else "; nothing new registered"))
    if counts["rejected"]:
        raise typer.Exit(EXIT_REJECTED)


def deidentify(
    src: Annotated[Path, typer.Argument(help="A DICOM file or folder.", exists=True)],
    dst: Annotated[Path, typer.Argument(help="The folder for the de-identified copies.")],
    profile: Annotated[str, typer.Option(
        help="The PS3.15 profile: basic (the Basic Application Level Confidentiality "
             "Profile).")] = "basic",
    option: Annotated[list[str] | None, typer.Option(
        "--option", help="A profile option: retain-longitudinal-modified-dates, "
                         "retain-patient-characteristics, retain-device-identity, "
                         "clean-descriptors, retain-safe-private, ... Repeatable.")] = None,
    safe_private: Annotated[list[str] | None, typer.Option(
        "--safe-private", help="With --option retain-safe-private: a private attribute to "
                               "keep, CREATOR:GGGG,xxEE (e.g. GEMS_PARM_01:0043,xx27). "
                               "Repeatable; every other private attribute is removed.")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """De-identify SRC into DST (PS3.15 Annex E) and record both sides and the derivation.

    Copies are named by their new UIDs (DST/<study>/<series>/<instance>.dcm). Files with
    burned-in annotation are flagged for review and releases refuse them. Exit 3 if some
    files were rejected.
    """
    from radledger.dicom.deid_profile import parse_safe_private  # noqa: PLC0415
    from radledger.errors import InputError  # noqa: PLC0415
    from radledger.ledger.deid import PROFILE, DeidJob, DeidOutcome, deidentify_tree  # noqa: PLC0415

    if profile != PROFILE:
        raise InputError(f"unknown profile {profile!r:.40}; radledger implements {PROFILE!r}")
    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    rows: list[DeidOutcome] = []

    def shown(outcome: DeidOutcome) -> None:
        rows.append(outcome)
        if as_json:
            return
        if outcome.status == "rejected":
            typer.echo(f"rejected {outcome.error}", err=True)
        elif outcome.flags:
            typer.echo(f"flagged {outcome.output}: {', '.join(outcome.flags)} (held for "
                       "review: releases refuse it)", err=True)

    job = DeidJob(src, dst, frozenset(option or []),
                  frozenset(parse_safe_private(rule) for rule in safe_private or []))
    deidentify_tree(space, loaded.actor_signer, job, shown)
    done = [r for r in rows if r.status == "deidentified"]
    if as_json:
        echo_json({"files": [{k: v for k, v in vars(r).items() if v not in (None, ())}
                             for r in rows],
                   "deidentified": len(done), "rejected": len(rows) - len(done),
                   "flagged": sum(1 for r in done if r.flags)})
    else:
        typer.echo(f"{len(rows)} files: {len(done)} de-identified into {dst}, "
                   f"{sum(1 for r in done if r.flags)} flagged for review, "
                   f"{len(rows) - len(done)} rejected")
    if len(done) < len(rows):
        raise typer.Exit(EXIT_REJECTED)


def history(
    target: Annotated[str, typer.Argument(
        help="A Study, Series or SOP Instance UID (pseudonymised before lookup), a "
             "pseudonym, or a file path.", metavar="UID_OR_PATH")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every entry about a study, series, instance or file, oldest first."""
    from radledger.ledger.history import history as find_history  # noqa: PLC0415

    loaded, ledger = open_home(home)
    entries, cut = find_history(open_workspace(loaded, ledger), target)
    if as_json:
        echo_json({"entries": [{"index": index, "entry": json.loads(data)}
                               for index, data in entries], "truncated": cut})
        return
    for index, data in entries:
        entry = parse_entry(data)
        line = summary_of(entry.kind, entry.body, entry.refs)
        typer.echo(f"{index:>8}  {entry.claimed_time}  {entry.kind:<22} {line}")
    if cut:
        typer.echo(f"(only the first {len(entries)} entries are shown)")


def summary_of(kind: str, body: Mapping[str, object], refs: tuple[int | str, ...]) -> str:
    """One line about an entry for a timeline."""
    if kind == "instance.registered":
        text = (f"{body.get('modality') or '-'} file {str(body.get('file_sha256'))[:12]} "
                f"pixels {str(body.get('pixel_sha256'))[:12]} ({body.get('pixel_hash_kind')})")
    else:
        text = " ".join(f"{k}={v}" for k, v in sorted(body.items())
                        if isinstance(v, str | int) and not isinstance(v, bool))[:100]
    if refs:
        text += " refs " + ",".join(str(r) if isinstance(r, int) else r[:12] for r in refs)
    return text


def check_data_folder(space: Workspace, folder: Path, workers: int | None,
                      as_json: bool) -> tuple[bool, dict[str, object]]:
    """``verify --data``: rehash the registered files under ``folder``; prints each file
    that is not ok (unless ``as_json``) and returns (ok, the JSON report)."""
    from radledger.ledger.files import count  # noqa: PLC0415
    from radledger.ledger.fixity import FileCheck, check_data  # noqa: PLC0415

    show_progress = not as_json and os.isatty(2)
    total_files, total_bytes = count([folder]) if show_progress else (0, 0)
    problems: list[dict[str, object]] = []
    with file_progress("rehashing", total_files, total_bytes, enabled=show_progress) as tick:

        def on_check(check: FileCheck, size: int) -> None:
            if tick is not None:
                tick(size)
            if check.status == "ok":
                return
            problems.append(dict(check.as_json()))
            if not as_json:
                what = f" ({', '.join(check.changed)} changed)" if check.changed else ""
                entry = f"; entry {check.index}" if check.index is not None else ""
                typer.echo(f"{check.status.upper()} {check.path}{what}{entry}",
                           err=check.status != "unregistered")

        report = check_data(space, folder, workers or os.cpu_count() or 1, on_check)
    if not as_json:
        counts = report.counts
        typer.echo(f"data: {sum(counts.values())} files: {counts['ok']} ok, "
                   f"{counts['modified']} modified, {counts['missing']} missing, "
                   f"{counts['unregistered']} unregistered")
    return report.ok, {"ok": report.ok, "counts": report.counts, "files": problems}
