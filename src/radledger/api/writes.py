"""What the research-trail and release routes share: strict JSON bodies, the request
types they accept, and services run for a token holder with the access they are recorded as.

Every service that appends or touches the side store runs in ``ApiContext.writing()`` (the
one writer of this process), in the worker thread FastAPI gives a sync handler. A write is
followed, under the same lock, by ``access.recorded`` {action "append", target
"entry/<index>", via "api", on_behalf_of <token name>}, as ``ledger.delegated`` records a
``POST /entries``; a read of identified data by {action "read", target ...}.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

from radledger.api.auth import Requires
from radledger.api.context import ApiContext
from radledger.core import jcs
from radledger.core.note import Signer
from radledger.errors import NotFound
from radledger.ledger.delegated import access_draft
from radledger.ledger.service import Receipt
from radledger.ledger.setup import Workspace
from radledger.ledger.tokens import Permission, TokenHolder

PhiReader = Annotated[TokenHolder, Depends(Requires(Permission.READ_PHI))]
Admin = Annotated[TokenHolder, Depends(Requires(Permission.ADMIN))]

# A DICOM UID (PS3.5 9.1: digits and dots, at most 64 characters). Values that could name a
# file are refused: the ledger services read a server path where the CLI is given one.
UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"
Uid = Annotated[str, Field(pattern=UID_PATTERN, max_length=64,
                           description="A Study, Series or SOP Instance UID.")]
Index = Annotated[int, Field(ge=0, description="An entry index.")]
Target = Index | Uid


def _base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")  # pydantic reports ValueError, not TypeError
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("is not base64 (RFC 4648, padded)") from None


Base64 = Annotated[bytes, PlainValidator(_base64),
                   WithJsonSchema({"type": "string", "contentEncoding": "base64"})]


class Body(BaseModel):
    """A request body: unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")


class Written(BaseModel):
    """A write's acknowledgement: the entry is durable, integrated and sealed, and
    ``access_index`` is the ``access.recorded`` entry naming the token it was made for."""

    index: int
    leaf_hash: str
    kind: str
    access_index: int


class StrictJsonRoute(APIRoute):
    """Bodies are read by radledger's strict JSON parser before FastAPI's (RELIABILITY 18):
    duplicate keys, NaN, lone surrogates or integers beyond 2**53 are 400 ``invalid_json``,
    as on ``POST /entries``, never silently read one way or another. Like FastAPI's own
    parsing, this comes before the token is checked."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                jcs.loads(await request.body())  # the body is cached for FastAPI
            return await handler(request)

        return strict


def access(space: Workspace, signer: Signer, holder: TokenHolder, action: str,
           target: str) -> Receipt:
    """Append ``access.recorded``: ``holder`` did ``action`` on ``target`` through the API.
    Requires the write lock (``ApiContext.writing``)."""
    (record,) = space.ledger.append_drafts([access_draft(action, target, holder.name)],
                                           signer)
    return record


def write_for(ctx: ApiContext, holder: TokenHolder,
              service: Callable[[Workspace, Signer], Receipt], via: str = "api"
              ) -> tuple[Receipt, Receipt]:
    """Run ``service`` (a ledger service that appends and returns the entry's receipt) with
    the workspace and the home's actor key, then record the write as done for ``holder``.
    Returns both receipts. Nothing is recorded if the service raises: as in
    ``ledger.delegated``, a crash between the two leaves a write without its record, never a
    record of a write that did not happen."""
    with ctx.writing() as space:
        receipt = service(space, ctx.home.actor_signer)
        (record,) = space.ledger.append_drafts(
            [access_draft("append", f"entry/{receipt.index}", holder.name, via)],
            ctx.home.actor_signer)
    return receipt, record


def written(receipt: Receipt, record: Receipt, kind: str) -> dict[str, Any]:
    """The fields of ``Written`` (response models extend it)."""
    return {"index": receipt.index, "leaf_hash": receipt.leaf_hash.hex(), "kind": kind,
            "access_index": record.index}


def targets(space: Workspace, values: list[int | str]) -> list[str]:
    """Entry indices and UIDs as the ledger services take them (``--about``, ``--input``:
    digits alone are an index there). Raises NotFound for an index beyond the ledger: an
    unknown target is 404, as an unknown UID is (NotRegistered)."""
    size = space.ledger.store.entry_count()
    given = [str(value) for value in values]
    for value in given:
        if value.isdigit() and int(value) >= size:
            raise NotFound(f"no entry {value} (ledger size {size})")
    return given
