"""``radledger serve``: the HTTP API (FastAPI under uvicorn, one worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radledger.cli.common import HomeOption
from radledger.ledger.home import resolve_home

# the defaults of api.services, api.timeouts and api.ratelimit, repeated so that the CLI does
# not load the web stack to show them (tests/test_api_data.py checks they agree)
DEFAULT_MAX_UPLOAD = 4 << 30
DEFAULT_MAX_UPLOAD_FILE = 1 << 30
DEFAULT_REQUEST_TIMEOUT_S = 60.0
DEFAULT_RATE, DEFAULT_BURST = 50.0, 100  # api.ratelimit's


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8600,
    private_log: Annotated[bool, typer.Option(
        "--private-log", help="Require a reader token for /checkpoint and /tile/... too.")
    ] = False,
    max_upload: Annotated[int, typer.Option(
        help="Bytes of one upload request (POST /ingest, /fingerprint), all files together.",
        min=1)] = DEFAULT_MAX_UPLOAD,
    max_upload_file: Annotated[int, typer.Option(
        help="Bytes of one uploaded file.", min=1)] = DEFAULT_MAX_UPLOAD_FILE,
    request_timeout: Annotated[float, typer.Option(
        help="Seconds a request may run before it is answered 504 (0: no limit); work it "
             "started may still complete.", min=0)] = DEFAULT_REQUEST_TIMEOUT_S,
    witness_home: Annotated[Path | None, typer.Option(
        "--witness-home", help="Also be a witness (C2SP tlog-witness): serve POST "
                               "/add-checkpoint from this witness home (`radledger witness "
                               "init`).", file_okay=False)] = None,
    witness_log: Annotated[list[str] | None, typer.Option(
        "--witness-log", help="With --witness-home: a log to witness, ORIGIN=VKEY or VKEY. "
                              "Repeatable.")] = None,
    rate_limit: Annotated[float, typer.Option(
        help="Requests a second per token after a burst (0: no limit).", min=0)
    ] = DEFAULT_RATE,
    burst: Annotated[int, typer.Option(help="Requests per token at once.", min=1)
                     ] = DEFAULT_BURST,
    access_log: Annotated[bool, typer.Option(
        "--access-log/--no-access-log", help="Log one line per request (uvicorn's).")
    ] = True,
    workers: Annotated[int, typer.Option(
        help="Server processes sharing the port (uvicorn workers); each has its own "
             "connections, group commit and rate-limit buckets.", min=1, max=64)] = 1,
    home: HomeOption = None,
) -> None:
    """Serve the ledger over HTTP: JSON API with OpenAPI docs at /docs, and the C2SP
    tlog-tiles read path (/checkpoint, /tile/...)."""
    # the web stack loads only for this command, not on every CLI start
    import uvicorn  # noqa: PLC0415

    from radledger.api.serving import ServeSettings, build_app  # noqa: PLC0415

    settings = ServeSettings(
        home=str(resolve_home(home)), private_log=private_log, max_upload=max_upload,
        max_upload_file=max_upload_file, request_timeout=request_timeout,
        rate_limit=rate_limit, burst=burst,
        witness_home=None if witness_home is None else str(witness_home),
        witness_log=list(witness_log or []))
    if workers == 1:
        app = build_app(settings)
        uvicorn.run(app, host=host, port=port, workers=1, log_level="info",
                    access_log=access_log)
        return
    build_app(settings)  # refuse bad options here, before any worker starts
    settings.to_environment()
    uvicorn.run("radledger.api.serving:app_from_environment", factory=True, host=host,
                port=port, workers=workers, log_level="info", access_log=access_log)
