"""``radledger serve``: the HTTP API (FastAPI under uvicorn, one worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radledger.cli.common import HomeOption
from radledger.core.note import Verifier
from radledger.errors import InputError
from radledger.ledger.home import resolve_home
from radledger.ledger.witness_server import parse_log_option

# the defaults of api.services, api.timeouts and api.ratelimit, repeated so that the CLI does
# not load the web stack to show them (tests/test_api_data.py checks they agree)
DEFAULT_MAX_UPLOAD = 4 << 30
DEFAULT_MAX_UPLOAD_FILE = 1 << 30
DEFAULT_REQUEST_TIMEOUT_S = 60.0
DEFAULT_RATE, DEFAULT_BURST = 50.0, 100  # api.ratelimit's
_UNLIMITED = 1e18  # requests a second: no rate limit


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
    home: HomeOption = None,
) -> None:
    """Serve the ledger over HTTP: JSON API with OpenAPI docs at /docs, and the C2SP
    tlog-tiles read path (/checkpoint, /tile/...)."""
    # the web stack loads only for this command, not on every CLI start
    import uvicorn  # noqa: PLC0415

    from radledger.api.app import create_app  # noqa: PLC0415
    from radledger.api.ratelimit import TokenBuckets  # noqa: PLC0415
    from radledger.api.services import ApiOptions, WitnessEndpoint  # noqa: PLC0415

    witness = None
    if witness_home is not None or witness_log:
        if witness_home is None or not witness_log:
            raise InputError("--witness-home and --witness-log go together")
        logs: dict[str, list[Verifier]] = {}
        for text in witness_log:
            origin, verifier = parse_log_option(text)
            logs.setdefault(origin, []).append(verifier)
        witness = WitnessEndpoint(witness_home, logs)
    options = ApiOptions(max_upload_file=max_upload_file, max_upload=max_upload,
                         request_timeout=request_timeout or None, witness=witness)
    limits = TokenBuckets(rate_limit, burst) if rate_limit else TokenBuckets(_UNLIMITED,
                                                                           1 << 62)
    app = create_app(resolve_home(home), public_log=not private_log, limits=limits,
                     options=options)
    uvicorn.run(app, host=host, port=port, workers=1, log_level="info", access_log=access_log)
