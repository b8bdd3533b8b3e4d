"""Request body size limit (RELIABILITY item 33: huge bodies are refused with 413).

A pure ASGI middleware: a declared Content-Length over the limit is refused before the body
is read; a body without one (chunked) is counted as it arrives and refused once it passes the
limit, so no request can make the server buffer more than ``max_bytes``. Upload routes
(``larger``: path -> limit) get their own, larger limit; they stream what they receive to
disk and limit each file themselves.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from radledger.api.errors import error_response
from radledger.errors import BodyTooLarge

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: a JSON request; uploads will get their own routes


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 in the one error shape."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY,
                 larger: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    @staticmethod
    def _message(limit: int) -> str:
        return f"the request body is over the limit of {limit} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await error_response(400, "bad_request", "Content-Length is not a "
                                     "non-negative integer")(scope, receive, send)
                return
            if int(declared) > limit:
                await error_response(413, "body_too_large", self._message(limit))(
                    scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(self._message(limit))
            return message

        await self.app(scope, counted, send)
