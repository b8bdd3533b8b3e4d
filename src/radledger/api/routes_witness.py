"""C2SP tlog-witness on the API's port: ``POST /add-checkpoint``, when the server was started
with a witness home (``radledger serve --witness-home DIR --witness-log VKEY``).

The logic and the answers are ``witness_server.Witness``'s, the same as ``radledger witness
serve``: plain-text bodies with the spec's statuses (400, 403, 404, 409 with
``text/x.tlog.size``, 422, 200 with the cosignature), not the API's JSON error shape, since
a tlog-witness client expects them. No token: the log's signature is what is checked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from radledger.api.services import Services, services_dependency
from radledger.errors import RadledgerError
from radledger.ledger.witness_server import MAX_BODY, Reply

router = APIRouter(tags=["witness"])
Open = Annotated[Services, Depends(services_dependency)]


@router.post("/add-checkpoint", response_class=Response,
             responses={200: {"content": {"text/plain": {}}}},
             summary="C2SP tlog-witness: cosign a checkpoint that extends the last one")
async def add_checkpoint(request: Request, svc: Open) -> Response:
    """Body: ``old <size>``, consistency proof lines, an empty line, the signed checkpoint.
    200 with a cosignature line; 400, 403, 404, 409, 413 or 422 as the spec says."""
    witness = svc.witness
    if witness is None:  # the route is only mounted with a witness; kept for safety
        return Response("this server is not a witness\n", 404, media_type="text/plain")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return _reply(Reply(413, f"request body over {MAX_BODY} bytes\n"))
    try:
        reply = await run_in_threadpool(witness.add_checkpoint, body)
    except RadledgerError as exc:  # storage busy, full or corrupt: nothing was cosigned
        reply = Reply(503, f"witness unavailable: {exc}\n")
    return _reply(reply)


def _reply(reply: Reply) -> Response:
    return Response(reply.body, reply.status, media_type=None,
                    headers={"Content-Type": reply.content_type})
