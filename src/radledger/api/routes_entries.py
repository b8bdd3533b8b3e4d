"""Entries and proofs: ``GET /entries/{index}``, ``GET /proof/inclusion/{index}``,
``POST /entries``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from radledger.api.auth import Context, Reader, Writer
from radledger.api.errors import error_schema
from radledger.core import jcs
from radledger.core.keys import KEY_KINDS
from radledger.errors import EntryError, InputError
from radledger.ledger.drafts import Draft, draft_from_json
from radledger.ledger.reads import entry_json, inclusion_json

router = APIRouter(tags=["entries"], responses={"default": error_schema()})
Index = Annotated[int, Path(ge=0, description="The entry's index.")]


class DraftIn(BaseModel):
    """What a writer asks to record (documented here; parsed strictly by radledger)."""

    kind: str
    body: dict[str, Any]
    subject: dict[str, str] = {}
    refs: list[int | str] = []


class Appended(BaseModel):
    """The acknowledgement: the entry is durable, integrated and sealed."""

    index: int
    leaf_hash: str
    access_index: int


def _draft(value: jcs.JSONValue) -> Draft:
    """A well-formed JSON document that is not a valid draft is 422, not 400."""
    try:
        draft = draft_from_json(value, "request body")
    except EntryError:
        raise
    except InputError as exc:
        raise EntryError(str(exc)) from None
    if draft.kind in KEY_KINDS:
        raise EntryError(f"{draft.kind} entries are made with `radledger key`, not the API")
    return draft


@router.get("/entries/{index}", summary="One entry with its leaf hash and block")
async def get_entry(index: Index, ctx: Context, _: Reader) -> dict[str, Any]:
    """``{"index", "leaf_hash", "entry", "block"}``, as ``radledger show --json``."""
    return await ctx.reads.read(lambda store: entry_json(store, index))


@router.get("/proof/inclusion/{index}", summary="An RFC 9162 inclusion proof")
async def get_inclusion(index: Index, ctx: Context, _: Reader,
                  tree_size: Annotated[int | None, Query(
                      ge=1, description="Tree size (default: the latest sealed size).")] = None
                  ) -> dict[str, Any]:
    """``{"index", "tree_size", "leaf_hash", "proof", "root"}``, hashes hex."""
    return await ctx.reads.read(lambda store: inclusion_json(store, index, tree_size))


@router.post("/entries", status_code=201, response_model=Appended,
             summary="Append one entry, signed by the service",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": DraftIn.model_json_schema()}}}})
async def post_entry(request: Request, ctx: Context, holder: Writer) -> JSONResponse:
    """Body ``{"kind", "body", "subject"?, "refs"?}`` (as a line of ``radledger append -``).
    The entry is signed with the ledger home's actor key, then ``access.recorded`` names the
    token it was made for. Key entries are made with ``radledger key``, not here."""
    draft = _draft(jcs.loads(await request.body()))
    receipt, record = await run_in_threadpool(ctx.append, draft, holder)
    out = Appended(index=receipt.index, leaf_hash=receipt.leaf_hash.hex(),
                   access_index=record.index)
    return JSONResponse(out.model_dump(), status_code=201,
                        headers={"Location": f"/entries/{receipt.index}"})
