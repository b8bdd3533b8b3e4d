"""The HTTP API's app factory (issue 6, first slice): ``create_app(home_path)``.

Handlers are thin (parse, call a ledger service, render); errors are rendered in one shape
by ``api.errors``; bodies are limited by ``api.limits``. The ledger home is checked when the
app is created, and opened for the app's lifetime by its lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from radledger.api import (
    routes_admin,
    routes_audit,
    routes_bundles,
    routes_data,
    routes_entries,
    routes_log,
    routes_releases,
    routes_trail,
    routes_witness,
)
from radledger.api.context import ApiContext
from radledger.api.errors import install_error_handlers
from radledger.api.limits import DEFAULT_MAX_BODY, BodyLimit
from radledger.api.ratelimit import TokenBuckets
from radledger.api.services import ApiOptions, Services
from radledger.api.timeouts import RequestTimeout
from radledger.ledger.home import load_home
from radledger.ledger.witness_server import load_witness_key


def create_app(home_path: Path, *, public_log: bool = True,
               max_body: int = DEFAULT_MAX_BODY, limits: TokenBuckets | None = None,
               options: ApiOptions | None = None) -> FastAPI:
    """The API over the ledger home at ``home_path``.

    ``public_log``: the tlog-tiles read path (``/checkpoint``, ``/tile/...``) needs no token.
    ``max_body``: request bodies over this many bytes are refused with 413.
    ``limits``: requests per token (default: TokenBuckets(); over it, 429 with Retry-After).
    ``options``: upload limits, the request timeout, verification workers, and a witness
    home to serve ``POST /add-checkpoint`` from (api.services.ApiOptions).
    Raises LedgerHomeError if there is no complete ledger home at ``home_path``, InputError
    if a witness home is given without a witness key.
    """
    home = load_home(home_path)
    options = options or ApiOptions()
    if options.witness is not None:
        load_witness_key(options.witness.home)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = ApiContext.open(home.path, public_log, limits)
        app.state.radledger = ctx
        try:
            app.state.radledger_services = Services.open(ctx, options)
        except BaseException:
            ctx.close()
            raise
        try:
            yield
        finally:
            app.state.radledger_services.close()
            ctx.close()

    app = FastAPI(title="radledger", version="0.1.0", lifespan=lifespan,
                  summary=f"The ledger {home.origin} over HTTP")
    install_error_handlers(app)
    # the web UI's pages (radledger.web) use this package's context and auth: imported here
    from radledger.web import UPLOAD_PATHS, install_web  # noqa: PLC0415

    app.add_middleware(BodyLimit, max_bytes=max_body,
                       larger={**options.body_limits(), **UPLOAD_PATHS})
    app.add_middleware(RequestTimeout, seconds=options.request_timeout)
    app.include_router(routes_log.router)
    app.include_router(routes_entries.router)
    app.include_router(routes_data.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_bundles.router)
    if options.witness is not None:
        app.include_router(routes_witness.router)
    app.include_router(routes_trail.router)
    app.include_router(routes_releases.router)
    app.include_router(routes_admin.router)
    install_web(app, options.web_key)
    return app
