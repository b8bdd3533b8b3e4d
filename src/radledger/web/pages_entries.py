"""One entry: its canonical JSON, signature and signer, block, and inclusion proof in the
latest signed checkpoint, with what the browser needs to check that proof itself
(``static/verify.js``). Identified data about it (a note's text, a file's path) is shown only
to a PHI reader who asks, and the read is recorded.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from radledger.api.auth import Context
from radledger.api.context import ApiContext
from radledger.core.keys import RegisteredKey, check_entry
from radledger.errors import NotFound, RadledgerError
from radledger.ledger import proofs, trail
from radledger.ledger.reads import sealed_entry
from radledger.ledger.tokens import Permission
from radledger.ledger.witnessing import checkpoint_with_cosignatures
from radledger.web.access import record
from radledger.web.describe import Described, describe, parse
from radledger.web.releases import home_vkey
from radledger.web.render import PREFIX, WebRoute, page
from radledger.web.session import Needs, WebUser

router = APIRouter(route_class=WebRoute, include_in_schema=False)
Reader = Annotated[WebUser, Depends(Needs(Permission.READ))]
PhiReader = Annotated[WebUser, Depends(Needs(Permission.READ_PHI))]


@dataclass(frozen=True)
class EntryView:
    """What the entry page shows."""

    described: Described
    entry: dict[str, Any]
    canonical: str
    leaf_hash: str
    block: int | None
    tree_size: int
    proof: list[str]
    root: str
    checkpoint: str
    signer: RegisteredKey | None
    signature_ok: bool
    signature_problem: str | None
    size: int

    def browser_data(self, vkey: str) -> dict[str, Any]:
        """What ``verify.js`` recomputes: exact entry bytes, proof, checkpoint, key."""
        return {"index": self.described.index, "tree_size": self.tree_size,
                "leaf_hash": self.leaf_hash, "proof": self.proof, "checkpoint": self.checkpoint,
                "entry_b64": base64.b64encode(self.canonical.encode("utf-8")).decode("ascii"),
                "vkey": vkey}


def entry_view(ctx: ApiContext, index: int) -> EntryView:
    """Read the entry, its proof and checkpoint; check its signature with the ledger's key
    ring. Raises NotFound beyond the sealed tree."""
    with ctx.reads.store() as store:
        leaf, data, block = sealed_entry(store, index)
        proof = proofs.inclusion(store, index)
        note = checkpoint_with_cosignatures(store, proof.tree_size)
    entry = parse(data)
    with ctx.writing() as space:
        keyring = space.ledger.keyring()
    problem = None
    try:
        check_entry(keyring, index, data)
    except RadledgerError as exc:
        problem = str(exc)
    return EntryView(describe(index, entry), entry, data.decode("utf-8"), leaf.hex(),
                     block.height if block else None, proof.tree_size,
                     [h.hex() for h in proof.proof], proof.root.hex(), note,
                     keyring.keys.get(str(entry.get("actor"))), problem is None, problem,
                     proof.tree_size)


def _render(request: Request, ctx: ApiContext, user: WebUser, view: EntryView,
            revealed: tuple[str, str] | None = None) -> HTMLResponse:
    vkey = home_vkey(ctx)
    pretty = json.dumps(view.entry, indent=2, sort_keys=True, ensure_ascii=False)
    kind = view.described.kind
    phi = "note.added" if kind == "note.added" else \
        ("instance.registered" if kind == "instance.registered" else None)
    return page(request, user, "entry.html", title=f"Entry {view.described.index}",
                view=view, pretty=pretty, vkey=vkey, data=view.browser_data(vkey),
                phi_kind=phi, revealed=revealed)


@router.get(f"{PREFIX}/entries/{{index}}")
async def entry_page(request: Request, ctx: Context, user: Reader, index: int
                     ) -> HTMLResponse:
    """The entry page."""
    view = await run_in_threadpool(entry_view, ctx, index)
    return _render(request, ctx, user, view)


@router.post(f"{PREFIX}/entries/{{index}}/reveal")
async def reveal(request: Request, ctx: Context, user: PhiReader, index: int) -> HTMLResponse:
    """A note's text or a registered file's path: identified data, shown to a PHI reader
    and recorded as read (``access.recorded``) before it is shown."""
    view = await run_in_threadpool(entry_view, ctx, index)

    def read() -> tuple[str, str]:
        with ctx.writing() as space:
            if view.described.kind == "note.added":
                text = trail.read_note(space, index)
                if text is None:
                    return "Note text", "(erased: the text can no longer be read)"
                record(space, ctx.home.actor_signer, user, "read", f"note.added/{index}")
                return "Note text", text.decode("utf-8", "replace")
            if view.described.kind == "instance.registered":
                path = space.side.paths_of([index]).get(index)
                if path is None:
                    return "File path", "(not known to this server, or erased)"
                record(space, ctx.home.actor_signer, user, "read", f"path/{index}")
                return "File path", path
        raise NotFound(f"entry {index} holds no identified data to show")

    revealed = await run_in_threadpool(read)
    return _render(request, ctx, user, view, revealed)
