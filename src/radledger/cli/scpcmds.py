"""``radledger scp``: receive DICOM instances over the network (C-ECHO, C-STORE) into a
content-addressed folder and the ledger; each C-STORE is answered once its entry is durable.

Also runnable alone, ``python -m radledger.cli.scpcmds --store DIR ...``, with the same error
handling as ``radledger``.
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Annotated, TextIO

import typer

from radledger.cli.common import HomeOption, open_home, witness_new_checkpoints
from radledger.errors import RadledgerError, StorageError
from radledger.ledger.setup import open_workspace

GRACE_S = 5.0  # on SIGTERM/SIGINT, how long open associations may take to finish
_POLL_S = 0.2


def scp(
    store: Annotated[Path, typer.Option(
        "--store", file_okay=False,
        help="Folder for the received files, each stored as ab/cd/<sha256>.dcm.")],
    ae_title: Annotated[str, typer.Option(
        "--ae-title", help="This SCP's AE title (peers call it).")] = "RADLEDGER",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).", min=0,
                                      max=65535)] = 11112,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    home: HomeOption = None,
) -> None:
    """Run a DICOM storage SCP until SIGTERM or Ctrl-C: C-ECHO, and C-STORE of every storage
    SOP Class in the common transfer syntaxes (uncompressed, deflate, JPEG, JPEG-LS,
    JPEG 2000, RLE).

    Each instance is stored under its SHA-256 with a zeroed preamble, registered with the
    calling AE title and peer address as its source, and answered Success only once both are
    durable; the same bytes again are answered Success and add nothing. A refused instance
    gets 0xC000 with the reason, a storage failure 0xA700. One line per instance names its
    SOP Class and transfer syntax, never a value from the dataset.
    """
    # pydicom and pynetdicom load only when this command runs
    from radledger.dicom.scp import Delivery, StorageSCP, Stored  # noqa: PLC0415
    from radledger.ledger.receive import Receiver  # noqa: PLC0415

    loaded, ledger = open_home(home)
    space = open_workspace(loaded, ledger)
    receiver = Receiver(space, loaded.actor_signer, store)
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:  # one line at a time from the association threads
            typer.echo(line)

    def store_one(delivery: Delivery) -> Stored:
        outcome = receiver.receive(delivery.file_meta, delivery.dataset, delivery.calling_ae,
                                   delivery.peer)
        if outcome.index is None:
            raise StorageError("the instance was not registered")
        return Stored(outcome.index, outcome.status != "already-registered")

    server = StorageSCP(ae_title, host, port, store_one, say)
    warnings.showwarning = _without_message
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda _sig, _frame: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        receiver.start()
        server.serve()
        bound_host, bound_port = server.address
        say(f"scp {ae_title} listening on {bound_host}:{bound_port}, storing into "
            f"{receiver.folder}")
        while not stop.wait(_POLL_S) and receiver.fatal is None:
            pass
    finally:
        server.stop(GRACE_S)
        receiver.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if receiver.fatal is not None:
        raise StorageError(f"the ledger writer stopped ({receiver.fatal}); nothing after it "
                           "was acknowledged") from None
    say("stopped")


def _without_message(message: Warning | str, category: type[Warning], filename: str,
                     lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """Show a warning by its class and place only: pydicom's quote header values."""
    typer.echo(f"warning: {category.__name__} at {filename}:{lineno}", err=True)


def run() -> None:
    """Entry point of ``python -m radledger.cli.scpcmds``."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(scp)
    try:
        try:
            app()
        finally:
            witness_new_checkpoints()
    except RadledgerError as exc:
        typer.echo(f"error: {exc.diagnostics()}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    run()
