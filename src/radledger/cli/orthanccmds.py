"""``radledger orthanc follow``: register what an Orthanc server receives, as it receives it.

The service is ``radledger.ledger.orthanc``; this is parsing and rendering. Credentials come
from ``--user`` and ``--password`` or the environment (``RADLEDGER_ORTHANC_USER``,
``RADLEDGER_ORTHANC_PASSWORD``) and are never printed or recorded.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from radledger.cli.common import HomeOption, JsonOption, open_home
from radledger.ledger.home import LedgerHome
from radledger.ledger.keyadmin import load_signer
from radledger.ledger.setup import open_workspace

if TYPE_CHECKING:  # pydicom loads only when the command runs, not on every CLI start
    from radledger.ledger.fixity import FileCheck
    from radledger.ledger.ingest import FileOutcome
    from radledger.ledger.orthanc import Follower, PassReport

USER_ENV = "RADLEDGER_ORTHANC_USER"
PASSWORD_ENV = "RADLEDGER_ORTHANC_PASSWORD"
EXIT_MODIFIED = 1  # --verify found an instance whose bytes differ from its registration
EXIT_REJECTED = 3  # the pass finished, but some instances were rejected (each named)
WITNESS_TIMEOUT_S = 5.0

orthanc_app = typer.Typer(
    help="Follow an Orthanc server: register every instance it receives.",
    no_args_is_help=True,
)


@orthanc_app.command("follow")
def follow(
    url: Annotated[str, typer.Option(
        "--url", help="The Orthanc server's base URL (without credentials).")
    ] = "http://127.0.0.1:8042",
    user: Annotated[str | None, typer.Option(
        "--user", envvar=USER_ENV, show_envvar=True, help="Orthanc user (HTTP Basic).")
    ] = None,
    password: Annotated[str | None, typer.Option(
        "--password", envvar=PASSWORD_ENV, show_envvar=True, show_default=False,
        help="The user's password; prefer the environment variable, since a command line "
             "is visible to other local users.")] = None,
    once: Annotated[bool, typer.Option(
        "--once", help="Process the pending changes (and --verify), then exit.")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Also fetch every registered instance again and report any whose "
                         "bytes differ from its registration (exit 1 with --once).")
    ] = False,
    interval: Annotated[float, typer.Option(
        "--interval", help="Seconds between polls of Orthanc's change log.", min=0.1)
    ] = 5.0,
    verify_interval: Annotated[float, typer.Option(
        "--verify-interval", help="With --verify and without --once: seconds between "
                                  "verifications (the first is at start).", min=1.0)
    ] = 3600.0,
    as_name: Annotated[str | None, typer.Option(
        "--as", help="Sign with the actor key NAME from keys/actors (default: your own).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Follow Orthanc's change log: register each new instance (fingerprints, pseudonymous
    keys, no PHI, no Orthanc ID in clear) and record each stable study.

    Resumes after a restart from the last change processed (kept in orthanc.sqlite3 in the
    ledger home). Runs until stopped (SIGINT or SIGTERM) unless --once. With --once, exit 1
    if --verify found a modified or missing instance, 3 if an instance was rejected.
    """
    from radledger.ledger.orthanc import Follower  # noqa: PLC0415
    from radledger.ledger.orthanc_http import HttpOrthanc  # noqa: PLC0415
    from radledger.storage.orthanc_state import STATE_FILE, OrthancState  # noqa: PLC0415

    client = HttpOrthanc(url, user, password)  # refuses a bad URL before opening anything
    loaded, ledger = open_home(home)
    state = OrthancState.open_or_create(loaded.path / STATE_FILE, loaded.ledger_id)
    follower = Follower(open_workspace(loaded, ledger), load_signer(loaded, as_name), client,
                        state)
    show = _Renderer(as_json)
    try:
        if once:
            rejected = show.pass_(follower.follow_once(show.outcome))
            if verify and not show.verification(follower):
                raise typer.Exit(EXIT_MODIFIED)
            if rejected:
                raise typer.Exit(EXIT_REJECTED)
            return
        _serve(follower, loaded, show, interval, verify_interval if verify else None)
    finally:
        state.close()


def _serve(follower: Follower, loaded: LedgerHome, show: _Renderer, interval: float,
           verify_every: float | None) -> None:
    """Poll until SIGINT or SIGTERM. Orthanc being down or answering an error is a warning
    and the next poll retries; refused credentials end the command (exit 2)."""
    from radledger.errors import OrthancAuthError, OrthancError  # noqa: PLC0415

    next_verify = time.monotonic() if verify_every is not None else None
    with _stop_on_signals() as stopping:
        while not stopping.is_set():
            size = follower.space.ledger.store.entry_count()
            try:
                show.pass_(follower.follow_once(show.outcome, stopping.is_set), quiet=True)
                if next_verify is not None and verify_every is not None \
                        and time.monotonic() >= next_verify and not stopping.is_set():
                    show.verification(follower)
                    next_verify = time.monotonic() + verify_every
            except OrthancAuthError:
                raise
            except OrthancError as exc:
                typer.echo(f"warning: {exc}; retrying in {interval:g} s", err=True)
            if follower.space.ledger.store.entry_count() != size:
                _witness(follower, loaded)
            stopping.wait(interval)
    typer.echo("stopped", err=True)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM (a second SIGINT interrupts at once)."""
    stopping = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stopping.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopping
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _witness(follower: Follower, loaded: LedgerHome) -> None:
    """What a long-running follower sealed goes to the witnesses after each pass (a
    one-shot command has it done by ``radledger``'s entry point when it ends)."""
    from radledger.ledger.witnessing import WITNESSES_FILE, witness_latest  # noqa: PLC0415

    if not (loaded.path / WITNESSES_FILE).exists():
        return
    for outcome in witness_latest(follower.space.ledger, loaded, timeout=WITNESS_TIMEOUT_S):
        if outcome.status != "cosigned":
            typer.echo(f"warning: witness {outcome.witness}: {outcome.status}: "
                       f"{outcome.detail}", err=True)


class _Renderer:
    """Prints outcomes as text, or as one JSON object a line (``--json``)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def _json(self, event: str, value: dict[str, object]) -> None:
        typer.echo(json.dumps({"event": event, **value}, sort_keys=True))

    def outcome(self, outcome: FileOutcome) -> None:
        if self.as_json:
            self._json("instance", dict(outcome.as_json()))
        elif outcome.status == "rejected":
            typer.echo(f"rejected {outcome.error}", err=True)
        elif outcome.status == "new-version":
            typer.echo(f"new version {outcome.path}: entry {outcome.index} supersedes entry "
                       f"{outcome.previous}")
        if outcome.flags and not self.as_json:
            typer.echo(f"flagged {outcome.path}: {', '.join(outcome.flags)} (recorded)",
                       err=True)

    def pass_(self, report: PassReport, quiet: bool = False) -> int:
        """Show a pass (``quiet``: only if it did something); returns how many instances
        were rejected."""
        if report.restarted:
            typer.echo("warning: Orthanc's change log is behind the saved cursor (a new "
                       "Orthanc database?); following it from its start again (nothing is "
                       "registered twice)", err=True)
        counts, studies = report.counts, report.studies
        if quiet and report.last == report.since and not report.restarted:
            return counts["rejected"]
        if self.as_json:
            self._json("pass", dict(report.as_json()))
        else:
            typer.echo(f"changes {report.since}..{report.last}: {counts['registered']} "
                       f"registered, {counts['new-version']} new versions, "
                       f"{counts['already-registered']} already registered, "
                       f"{counts['rejected']} rejected, {counts['gone']} gone; stable "
                       f"studies: {studies['recorded']} recorded, "
                       f"{studies['already-recorded']} already recorded")
        return counts["rejected"]

    def verification(self, follower: Follower) -> bool:
        """Run and show a verification; True if nothing was modified or missing."""
        from radledger.ledger.orthanc import verify_instances  # noqa: PLC0415

        problems: list[dict[str, object]] = []

        def on_check(check: FileCheck) -> None:
            if check.status == "ok":
                return
            problems.append(dict(check.as_json()))
            if not self.as_json:
                what = f" ({', '.join(check.changed)} changed)" if check.changed else ""
                typer.echo(f"{check.status.upper()} {check.path}{what}; entry {check.index}",
                           err=True)

        report = verify_instances(follower, on_check)
        counts = report.counts
        if self.as_json:
            self._json("verify", {"ok": report.ok, "counts": counts, "instances": problems})
        else:
            typer.echo(f"verify: {sum(counts.values())} instances: {counts['ok']} ok, "
                       f"{counts['modified']} modified, {counts['missing']} missing")
        return report.ok
