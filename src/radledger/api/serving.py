"""How ``radledger serve`` builds its app, in one process or in several (``--workers N``).

uvicorn starts each worker process itself and imports the app there, so the settings travel
in one environment variable (``RADLEDGER_SERVE_SETTINGS``, JSON) and each worker builds the
same app with ``app_from_environment``. The web UI's CSRF key is made once by the parent
and shared, so a form served by one worker is accepted by another.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fastapi import FastAPI

from radledger.api.app import create_app
from radledger.api.ratelimit import TokenBuckets
from radledger.api.services import ApiOptions, WitnessEndpoint
from radledger.core.note import Verifier
from radledger.errors import InputError
from radledger.ledger.witness_server import parse_log_option

ENV = "RADLEDGER_SERVE_SETTINGS"
_UNLIMITED = 1e18  # requests a second: no rate limit


@dataclass(frozen=True)
class ServeSettings:
    """What ``radledger serve`` was asked for (see its options)."""

    home: str
    private_log: bool
    max_upload: int
    max_upload_file: int
    request_timeout: float
    rate_limit: float
    burst: int
    witness_home: str | None = None
    witness_log: list[str] = field(default_factory=list)
    web_key: str = field(default_factory=lambda: secrets.token_hex(32))

    def to_environment(self) -> None:
        """Put these settings where the worker processes find them."""
        os.environ[ENV] = json.dumps(asdict(self))


def build_app(settings: ServeSettings) -> FastAPI:
    """The app ``settings`` describe. Raises InputError for inconsistent witness options,
    LedgerHomeError if there is no ledger home."""
    witness = None
    if settings.witness_home is not None or settings.witness_log:
        if settings.witness_home is None or not settings.witness_log:
            raise InputError("--witness-home and --witness-log go together")
        logs: dict[str, list[Verifier]] = {}
        for text in settings.witness_log:
            origin, verifier = parse_log_option(text)
            logs.setdefault(origin, []).append(verifier)
        witness = WitnessEndpoint(Path(settings.witness_home), logs)
    options = ApiOptions(max_upload_file=settings.max_upload_file,
                         max_upload=settings.max_upload,
                         request_timeout=settings.request_timeout or None, witness=witness,
                         web_key=bytes.fromhex(settings.web_key))
    limits = TokenBuckets(settings.rate_limit, settings.burst) if settings.rate_limit \
        else TokenBuckets(_UNLIMITED, 1 << 62)
    return create_app(Path(settings.home), public_log=not settings.private_log,
                      limits=limits, options=options)


def app_from_environment() -> FastAPI:
    """uvicorn's factory in each worker process: the app of ``RADLEDGER_SERVE_SETTINGS``."""
    text = os.environ.get(ENV)
    if text is None:
        raise InputError(f"{ENV} is not set: start workers with `radledger serve --workers N`")
    return build_app(ServeSettings(**json.loads(text)))
