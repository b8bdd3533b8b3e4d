"""``radledger serve``: the HTTP API (FastAPI under uvicorn, one worker)."""

from __future__ import annotations

from typing import Annotated

import typer

from radledger.cli.common import HomeOption
from radledger.ledger.home import resolve_home


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8600,
    private_log: Annotated[bool, typer.Option(
        "--private-log", help="Require a reader token for /checkpoint and /tile/... too.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Serve the ledger over HTTP: JSON API with OpenAPI docs at /docs, and the C2SP
    tlog-tiles read path (/checkpoint, /tile/...)."""
    # the web stack loads only for this command, not on every CLI start
    import uvicorn  # noqa: PLC0415

    from radledger.api.app import create_app  # noqa: PLC0415

    app = create_app(resolve_home(home), public_log=not private_log)
    uvicorn.run(app, host=host, port=port, workers=1, log_level="info")
