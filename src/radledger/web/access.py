"""Who did what through the web UI, in the ledger: ``access.recorded`` naming the token.

As for the API (``api.writes``): a write is followed, under the same write lock, by
{action "append", target "entry/<index>", via "web", on_behalf_of <token name>}; a read of
identified data (a note's text, a file's path, a patient's consent) and an export (a bundle
download) by {action "read" or "export", target ...}.
"""

from __future__ import annotations

from collections.abc import Callable

from radledger.api import writes
from radledger.api.context import ApiContext
from radledger.core.note import Signer
from radledger.ledger.delegated import access_draft
from radledger.ledger.service import Receipt
from radledger.ledger.setup import Workspace
from radledger.web.session import WebUser

VIA = "web"


def record(space: Workspace, signer: Signer, user: WebUser, action: str, target: str
           ) -> Receipt:
    """Append ``access.recorded``: ``user`` did ``action`` on ``target`` through the web UI.
    Requires the write lock (``ApiContext.writing``)."""
    (receipt,) = space.ledger.append_drafts([access_draft(action, target, user.name, VIA)],
                                            signer)
    return receipt


def write_for(ctx: ApiContext, user: WebUser,
              service: Callable[[Workspace, Signer], Receipt]) -> tuple[Receipt, Receipt]:
    """Run ``service`` (a ledger service that appends one entry) and record it as done for
    ``user`` through the web UI (api.writes.write_for); both receipts."""
    return writes.write_for(ctx, user.holder, service, VIA)
