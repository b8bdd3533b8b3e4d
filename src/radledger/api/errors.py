"""Every HTTP error in one JSON shape, ``{"error": {"status", "code", "message"}}``.

``STATUS`` is the one table from radledger's errors to HTTP statuses (STYLE convention 2):
an error takes the entry of the nearest class in its MRO. Framework errors (unknown route,
wrong method, request validation) and the body limit are rendered in the same shape, so a
client parses one thing whatever went wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from radledger.errors import (
    AnchorError,
    AnchorKeyError,
    BodyTooLarge,
    CanonicalJSONError,
    ChainUnreachable,
    EntryError,
    EntryTooLargeForBundle,
    InputError,
    LedgerHomeError,
    NotAnchorContract,
    NotFound,
    NothingToRelease,
    NotRegistered,
    PermissionDenied,
    RadledgerError,
    RateLimited,
    ReleaseExists,
    ReleaseRefused,
    RequestTimedOut,
    SignatureError,
    StorageBusy,
    StorageCorrupt,
    StorageError,
    StorageFull,
    TokenRejected,
    VerificationError,
)

log = logging.getLogger("radledger.api")


STATUS: dict[type[RadledgerError], tuple[int, str]] = {
    TokenRejected: (401, "unauthorized"),
    PermissionDenied: (403, "forbidden"),
    NotFound: (404, "not_found"),
    NotRegistered: (404, "not_registered"),
    ReleaseRefused: (409, "release_refused"),
    ReleaseExists: (409, "release_exists"),
    NothingToRelease: (409, "nothing_to_release"),
    BodyTooLarge: (413, "body_too_large"),
    EntryError: (422, "invalid_entry"),
    CanonicalJSONError: (400, "invalid_json"),
    LedgerHomeError: (500, "ledger_home"),
    InputError: (400, "bad_request"),
    SignatureError: (409, "signature_refused"),
    VerificationError: (409, "verification_failed"),
    EntryTooLargeForBundle: (501, "entry_too_large_for_bundle"),
    StorageBusy: (503, "storage_busy"),
    RequestTimedOut: (504, "timeout"),
    RateLimited: (429, "rate_limited"),
    StorageFull: (507, "storage_full"),
    StorageCorrupt: (500, "storage_corrupt"),
    StorageError: (500, "storage_error"),
    ChainUnreachable: (502, "chain_unreachable"),
    NotAnchorContract: (422, "not_anchor_contract"),
    AnchorKeyError: (500, "anchor_key"),
    AnchorError: (502, "anchor_error"),
    RadledgerError: (500, "error"),
}
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 413: "body_too_large",
               415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests"}
# 5xx whose message is safe and useful to a client; others are logged, not shown
_SHOWN_5XX = {501, 503, 504, 507}
RETRY_AFTER_BUSY_S = 1


def status_of(exc: RadledgerError) -> tuple[int, str]:
    """(HTTP status, error code) of a radledger error: its nearest class in STATUS."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return STATUS[RadledgerError]


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The one error shape."""
    extra = dict(headers or {})
    if status == 401:  # noqa: PLR2004 - RFC 6750: say which scheme is wanted
        extra.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse({"error": {"status": status, "code": code, "message": message}},
                        status_code=status, headers=extra)


async def _radledger_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RadledgerError)
    status, code = status_of(exc)
    headers = {"Retry-After": str(RETRY_AFTER_BUSY_S)} if isinstance(exc, StorageBusy) else {}
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    if status >= 500 and status not in _SHOWN_5XX:  # noqa: PLR2004
        log.error("%s: %s", code, exc)
        return error_response(status, code, "the server could not complete the request; "
                              "its log has the details", headers)
    return error_response(status, code, str(exc), headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal_error", "the server could not complete the request; "
                          "its log has the details")


Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def install_error_handlers(app: FastAPI) -> None:
    """Render every error the app can raise in the one shape."""
    handlers: dict[type[Exception], Handler] = {
        RadledgerError: _radledger_error,
        StarletteHTTPException: _http_error,
        RequestValidationError: _validation_error,
        Exception: _unexpected,
    }
    for cls, handler in handlers.items():
        app.add_exception_handler(cls, handler)


def error_schema() -> dict[str, Any]:
    """The error shape as an OpenAPI response entry."""
    return {"description": "An error, in the one shape every error has",
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["error"],
                "properties": {"error": {
                    "type": "object", "required": ["status", "code", "message"],
                    "properties": {"status": {"type": "integer"}, "code": {"type": "string"},
                                   "message": {"type": "string"}}}}}}}}
