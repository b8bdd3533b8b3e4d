"""Writes made through a service on behalf of a token holder (the HTTP API).

The service signs with its own actor key; who asked is recorded by an ``access.recorded``
entry naming the token (``on_behalf_of``) and the door (``via``), appended right after the
write. The two are separate appends: the record needs the index the write was given. A crash
between them leaves a write without its record, never a record of a write that did not
happen; callers serialise writes through one lock, so no other write of this process falls
between the two.
"""

from __future__ import annotations

from radledger.core.note import Signer
from radledger.ledger.drafts import Draft
from radledger.ledger.service import Ledger, Receipt


def access_draft(action: str, target: str, on_behalf_of: str, via: str = "api",
                 refs: tuple[int, ...] = ()) -> Draft:
    """``access.recorded`` {action, target, via, on_behalf_of}: the token holder
    ``on_behalf_of`` did ``action`` on ``target`` through the door ``via`` (api, web)."""
    return Draft("access.recorded", {"action": action, "target": target, "via": via,
                                     "on_behalf_of": on_behalf_of}, refs=refs)


def append_on_behalf(ledger: Ledger, signer: Signer, draft: Draft, on_behalf_of: str,
                     via: str = "api") -> tuple[Receipt, Receipt]:
    """Append ``draft`` signed by ``signer``, then ``access.recorded`` {action "append",
    target "entry/<index>", via, on_behalf_of}. Returns both receipts.

    Raises what ``Ledger.append_drafts`` raises (InputError subclasses for a bad draft,
    StorageError); nothing is recorded when the write fails.
    """
    (receipt,) = ledger.append_drafts([draft], signer)
    (record,) = ledger.append_drafts(
        [access_draft("append", f"entry/{receipt.index}", on_behalf_of, via)], signer)
    return receipt, record
