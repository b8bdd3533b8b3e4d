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

from radledger.api import routes_entries, routes_log
from radledger.api.context import ApiContext
from radledger.api.errors import install_error_handlers
from radledger.api.limits import DEFAULT_MAX_BODY, BodyLimit
from radledger.api.ratelimit import TokenBuckets
from radledger.ledger.home import load_home


def create_app(home_path: Path, *, public_log: bool = True,
               max_body: int = DEFAULT_MAX_BODY, limits: TokenBuckets | None = None
               ) -> FastAPI:
    """The API over the ledger home at ``home_path``.

    ``public_log``: the tlog-tiles read path (``/checkpoint``, ``/tile/...``) needs no token.
    ``max_body``: request bodies over this many bytes are refused with 413.
    ``limits``: requests per token (default: TokenBuckets(); over it, 429 with Retry-After).
    Raises LedgerHomeError if there is no complete ledger home at ``home_path``.
    """
    home = load_home(home_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = ApiContext.open(home.path, public_log, limits)
        app.state.radledger = ctx
        try:
            yield
        finally:
            ctx.close()

    app = FastAPI(title="radledger", version="0.1.0", lifespan=lifespan,
                  summary=f"The ledger {home.origin} over HTTP")
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body)
    app.include_router(routes_log.router)
    app.include_router(routes_entries.router)
    return app
