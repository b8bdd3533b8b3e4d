"""The read path for monitors and mirrors, C2SP tlog-tiles: ``/checkpoint``, ``/tile/...``.

Public unless the app was created with ``public_log=False`` (then a reader token is needed).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from radledger.api.auth import Context, LogReader
from radledger.api.errors import error_schema
from radledger.core.tlog_tiles import parse_tile_path
from radledger.ledger.tiles import read_entry_bundle, read_tile
from radledger.ledger.witnessing import checkpoint_with_cosignatures

router = APIRouter(tags=["log"], responses={"default": error_schema()})

CHECKPOINT_CACHE = "no-cache"  # mutable: tlog-tiles asks for no caching beyond seconds
FULL_TILE_CACHE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=60"  # may be replaced by the full tile and deleted
OCTETS = "application/octet-stream"




@router.get("/checkpoint", response_class=PlainTextResponse,
            summary="The latest signed checkpoint with its witness cosignatures")
async def get_checkpoint(ctx: Context, _: LogReader) -> PlainTextResponse:
    """The C2SP checkpoint (a signed note), ledger signature first, then one line per
    witness cosignature."""
    note = await ctx.reads.read(checkpoint_with_cosignatures)
    return PlainTextResponse(note, headers={"Cache-Control": CHECKPOINT_CACHE})


@router.get("/tile/{path:path}", response_class=Response,
            responses={200: {"content": {OCTETS: {}}}},
            summary="A Merkle tile <L>/<N>[.p/<W>] or entry bundle entries/<N>[.p/<W>]")
async def get_tile(path: str, ctx: Context, _: LogReader) -> Response:
    """Per C2SP tlog-tiles: a tile holds up to 256 RFC 6962 node hashes at tree level 8L;
    an entry bundle, the entries of a level-0 tile, each behind a big-endian uint16 length.
    Full tiles never change and are cacheable forever."""
    ref = parse_tile_path(path)
    key = (ref.level, ref.index) if ref.width is None else None  # full tiles never change
    body = ctx.tiles.get(key) if key is not None else None
    if body is None:
        body = await ctx.reads.read(
            lambda store: read_entry_bundle(store, ref) if ref.level is None
            else read_tile(store, ref))
        if key is not None:
            ctx.tiles.put(key, body)
    cache = FULL_TILE_CACHE if ref.width is None else PARTIAL_TILE_CACHE
    return Response(body, media_type=OCTETS, headers={"Cache-Control": cache})
