"""Request timeouts: a request still running after ``seconds`` is answered 504 in the one
error shape (``RequestTimedOut``), and the client is free to go.

What the request had started is not undone, and nothing is left half-done: work handed to a
worker thread (a transaction, a verification run, fingerprinting) runs to its end, so a write
it commits stays committed, with its ``access.recorded`` entry; what the request would have
done after that step is not done. A 504 therefore means "outcome unknown": read before
retrying a write. A response that has already started (headers sent) is not interrupted.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from radledger.api.errors import error_response, status_of
from radledger.errors import RequestTimedOut

log = logging.getLogger("radledger.api")
DEFAULT_REQUEST_TIMEOUT_S = 60.0


class RequestTimeout:
    """ASGI middleware: answer 504 for a request running longer than ``seconds`` (None:
    no limit)."""

    def __init__(self, app: ASGIApp, seconds: float | None = DEFAULT_REQUEST_TIMEOUT_S
                 ) -> None:
        self.app = app
        self.seconds = seconds
        self._abandoned: set[asyncio.Task[None]] = set()  # kept alive until they end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds is None:
            await self.app(scope, receive, send)
            return
        started = timed_out = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the client was answered already
            started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if task in done or started:
            await task
            return
        timed_out = True
        task.cancel()  # a worker thread it waits on still finishes its step
        self._abandoned.add(task)
        task.add_done_callback(self._ended)
        error = RequestTimedOut(f"the request took longer than {self.seconds:g} s; work it "
                                "had started may have completed: check before retrying")
        status, code = status_of(error)
        await error_response(status, code, str(error))(scope, receive, send)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a request that timed out ended with %r", task.exception())
