"""Keys, witnesses, public anchors and de-identification over HTTP: the ledger-side
services of ``radledger key list``, ``witness list|sync``, ``anchor list|push|verify`` and
``deidentify``, calling the ledger functions those commands call.

Key creation and revocation stay CLI-only: keys live in files on the server. Witness sync and
anchor pushes append nothing to the ledger (they store cosignatures and receipts beside it),
so they are not followed by ``access.recorded``: a record would be a new checkpoint that is
neither cosigned nor anchored, and a push after it would pay for another transaction. A
de-identification reads identified source files and appends, so it is recorded, once per
request, naming the token.

An RPC URL travels in the body (a provider's URL often holds an API key, and request URLs
are logged); the server connects to it, which is why only admin (push) and auditor (verify)
tokens may name one. Sources of a de-identification are named by entry indices or UIDs,
never by a server path; their files are found through the side store's recorded paths, and
no path of a source is ever echoed (folder names may identify a patient).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from radledger.api.auth import Context, Reader, Writer
from radledger.api.context import ApiContext
from radledger.api.errors import error_schema
from radledger.api.roles import Auditor
from radledger.api.writes import Admin, Body, StrictJsonRoute, Target, targets
from radledger.dicom.deid_profile import SafePrivate, parse_safe_private, recipe_for
from radledger.errors import AnchorKeyError, InputError
from radledger.ledger import anchor, keyadmin, witnessing
from radledger.ledger.deid import PROFILE, DeidJob, DeidOutcome, deidentify_tree
from radledger.ledger.delegated import access_draft
from radledger.ledger.derive import resolve_inputs
from radledger.ledger.files import file_sha256
from radledger.ledger.service import Ledger
from radledger.ledger.setup import Workspace
from radledger.ledger.tokens import TokenHolder
from radledger.storage.cosignatures import last_cosigned

router = APIRouter(tags=["administration"], responses={"default": error_schema()})
# routes with a JSON body read it strictly; the others (a POST with no body) cannot
_with_body = APIRouter(route_class=StrictJsonRoute)
DEIDENTIFIED = "deidentified"  # the copies' folder in the ledger home
MAX_SYNC_TIMEOUT_S = 30.0


# -- keys -------------------------------------------------------------------------------------
def _keys(ctx: ApiContext) -> list[dict[str, Any]]:
    with ctx.reads.store() as store:  # a ledger of its own: the writer's key ring stays put
        keys = keyadmin.list_keys(Ledger(store, ctx.home.origin, ctx.home.ledger_signer))
    return [{"actor": k.actor, "role": k.role, "registered_at": k.registered_at,
             "revoked_at": k.revoked_at} for k in keys]


@router.get("/keys", summary="Every registered signing key")
def get_keys(ctx: Context, _: Reader) -> list[dict[str, Any]]:
    """As ``radledger key list --json``: ``[{"actor", "role", "registered_at",
    "revoked_at"}]``, in registration order. Keys are added and revoked on the server with
    ``radledger key add|revoke`` (they are files in the ledger home), never over HTTP."""
    return _keys(ctx)


# -- witnesses --------------------------------------------------------------------------------
@router.get("/witnesses", summary="The configured witnesses and the quorum state")
def get_witnesses(ctx: Context, _: Reader) -> dict[str, Any]:
    """As ``radledger witness list --json``: ``{"witnesses": [{"name", "url", "vkey",
    "last_cosigned_size", "cosigned_latest"}], "quorum", "cosigned_latest", "witnessed"}``."""
    configured = witnessing.load_witnesses(ctx.home.path)
    with ctx.reads.store() as store:
        signed = set(witnessing.cosigners(store, configured.witnesses))
        rows = []
        for w in configured.witnesses:
            last = last_cosigned(store, w.vkey)
            rows.append({"name": w.name, "url": w.url, "vkey": w.vkey,
                         "last_cosigned_size": last.tree_size if last else None,
                         "cosigned_latest": w.vkey in signed})
    return {"witnesses": rows, "quorum": configured.required, "cosigned_latest": len(signed),
            "witnessed": len(signed) >= configured.required}


@router.post("/witnesses/sync", summary="Send the latest checkpoint to every witness")
def post_witnesses_sync(
        ctx: Context, _: Admin,
        timeout: Annotated[float, Query(gt=0, le=MAX_SYNC_TIMEOUT_S, description=(
            "Seconds to wait for each witness."))] = witnessing.TIMEOUT_S,
) -> dict[str, Any]:
    """As ``radledger witness sync --json``: ``{"outcomes": [{"witness", "tree_size",
    "status", "detail", "http_status"}], "cosigned_latest", "quorum", "witnessed"}``, each
    status ``cosigned``, ``refused`` (the evidence is stored), ``unreachable`` or ``error``.
    Over a connection of its own, never holding the writer while witnesses answer."""
    configured = witnessing.load_witnesses(ctx.home.path)
    with ctx.reads.store() as store:
        outcomes = witnessing.sync_witnesses(store, configured.witnesses, timeout=timeout)
        count = len(witnessing.cosigners(store, configured.witnesses))
    return {"outcomes": [{"witness": o.witness, "tree_size": o.tree_size, "status": o.status,
                          "detail": o.detail, "http_status": o.http_status} for o in outcomes],
            "cosigned_latest": count, "quorum": configured.required,
            "witnessed": count >= configured.required}


# -- anchors ----------------------------------------------------------------------------------
Rpc = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2000, description=(
    "The chain's JSON-RPC URL. In the body, never a URL: it may hold an API key; errors "
    "name its host only."))]


class PushIn(Body):
    """Where to anchor the latest checkpoint."""

    rpc: Rpc
    contract: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$",
                          description="The RadledgerAnchor contract's address.")


class VerifyIn(Body):
    """The chain to re-check the receipts against."""

    rpc: Rpc


@router.get("/anchors", summary="Every anchor receipt kept in the home")
def get_anchors(ctx: Context, _: Reader) -> list[dict[str, Any]]:
    """As ``radledger anchor list --json``: the receipts, oldest first."""
    return anchor.anchor_receipts(ctx.home)


@_with_body.post("/anchors/push", summary="Anchor the latest checkpoint on a chain")
def post_anchors_push(body: PushIn, ctx: Context, _: Admin) -> dict[str, Any]:
    """As ``radledger anchor push --json`` with the home's anchor key (``keys/anchor.key``,
    made on the server by ``radledger anchor key``): ``{"sent", "receipt"}``. A checkpoint
    already anchored through the contract is not sent again (``"sent": false``). 502
    ``chain_unreachable`` if the node does not answer, 422 ``not_anchor_contract`` for an
    address without the contract, 502 ``anchor_error`` if the chain refuses (an unfunded
    key), 500 ``anchor_key`` if the home has no usable key."""
    path = anchor.anchor_key_path(ctx.home)
    if not path.exists():
        raise AnchorKeyError("the ledger home has no anchor key; make one on the server with "
                             "`radledger anchor key`")
    account = anchor.read_key(path)
    chain = anchor.connect(body.rpc)
    with ctx.reads.store() as store:
        receipt, sent = anchor.anchor_checkpoint(
            ctx.home, Ledger(store, ctx.home.origin, ctx.home.ledger_signer), chain,
            body.contract, account)
    return {"sent": sent, "receipt": receipt.to_json()}


@_with_body.post("/anchors/verify", summary="Re-check every anchor receipt against a chain")
def post_anchors_verify(body: VerifyIn, ctx: Context, _: Auditor) -> dict[str, Any]:
    """As ``radledger anchor verify --json``: ``{"ok", "checked", "failures"}``; a receipt
    the chain contradicts is ``"ok": false`` naming the field. 502 ``chain_unreachable`` if
    the node does not answer; 502 ``anchor_error`` if it serves another chain."""
    receipts = anchor.anchor_receipts(ctx.home)
    chain = anchor.connect(body.rpc)
    checks = [anchor.verify_anchor(r, chain) for r in receipts]
    return {"ok": all(c.ok for c in checks), "checked": len(checks),
            "failures": [f for c in checks for f in c.failures]}


# -- de-identification ------------------------------------------------------------------------
class DeidentifyIn(Body):
    """What to de-identify, and how (the options of ``radledger deidentify``)."""

    sources: list[Target] = Field(min_length=1, max_length=1000, description=(
        "Entry indices of instance.registered entries, or registered Study/Series/SOP "
        "Instance UIDs (every instance they name). Never a server path."))
    profile: str = Field(PROFILE, description="The PS3.15 profile: basic.")
    options: list[str] = Field(default_factory=list, description=(
        "Profile options: retain-longitudinal-modified-dates, retain-patient-"
        "characteristics, retain-device-identity, clean-descriptors, retain-safe-private, "
        "..."))
    safe_private: list[str] = Field(default_factory=list, description=(
        "With retain-safe-private: private attributes to keep, CREATOR:GGGG,xxEE."))


class InstanceOut(BaseModel):
    """What happened to one source instance."""

    source_index: int
    status: str = Field(description="deidentified or rejected.")
    reason: str | None = Field(default=None, description=(
        "Why rejected: not_an_instance, no_file (the server holds no file for it), "
        "source_missing, source_changed (its bytes differ from the registration), "
        "not_deidentifiable."))
    error: str | None = None
    output_index: int | None = None
    derivation: int | None = None
    path: str | None = Field(default=None, description="The copy, relative to the ledger home: "
                                               "deidentified/<study>/<series>/<instance>.dcm, "
                                               "the new UIDs.")
    flags: list[str] = Field(default_factory=list)


class Deidentified(BaseModel):
    """Per-instance outcomes, counts, and the access record of the request."""

    instances: list[InstanceOut]
    deidentified: int
    rejected: int
    flagged: int
    access_index: int


def _registered(space: Workspace, index: int) -> dict[str, Any] | None:
    row = space.ledger.store.entry(index)
    entry = json.loads(row[1]) if row else {}
    return entry.get("body") if entry.get("kind") == "instance.registered" else None


def _rejected(index: int, reason: str, error: str) -> InstanceOut:
    return InstanceOut(source_index=index, status="rejected", reason=reason, error=error)


def _source(space: Workspace, index: int, paths: dict[int, str]) -> InstanceOut | Path:
    """The file of a registered instance, unchanged since it was registered, or why not."""
    body = _registered(space, index)
    if body is None:
        return _rejected(index, "not_an_instance", f"entry {index} is no instance.registered")
    path = paths.get(index)
    if path is None:
        return _rejected(index, "no_file", f"the server holds no file of entry {index}")
    _, digest, _ = file_sha256(Path(path))  # its error names the path: not echoed
    if digest is None:
        return _rejected(index, "source_missing",
                         f"the file of entry {index} is gone or unreadable")
    if digest != body.get("file_sha256"):
        return _rejected(index, "source_changed", f"the file of entry {index} differs from "
                                                  "its registration")
    return Path(path)


def _outcome(index: int, path: Path, done: DeidOutcome, home: Path) -> InstanceOut:
    if done.status != "deidentified" or done.output is None:
        # the service's message starts with the source's path: replaced, never echoed
        error = (done.error or "rejected").replace(str(path), f"entry {index}")
        return _rejected(index, "not_deidentifiable", error)
    return InstanceOut(source_index=done.source_index if done.source_index is not None
                       else index, status="deidentified", output_index=done.output_index,
                       derivation=done.derivation,
                       path=Path(done.output).relative_to(home).as_posix(),
                       flags=list(done.flags))


def _deidentify(ctx: ApiContext, body: DeidentifyIn, holder: TokenHolder,
                rules: frozenset[SafePrivate]) -> Deidentified:
    home = ctx.home.path
    out: list[InstanceOut] = []
    with ctx.writing() as space:
        size = space.ledger.store.entry_count()
        indices = resolve_inputs(space, targets(space, body.sources), files=False)
        paths = space.side.paths_of(indices)
        for index in indices:
            found = _source(space, index, paths)
            if isinstance(found, InstanceOut):
                out.append(found)
                continue
            job = DeidJob(found, home / DEIDENTIFIED, frozenset(body.options), rules,
                          workers=1)
            (done,) = deidentify_tree(space, ctx.home.actor_signer, job, lambda _: None)
            out.append(_outcome(index, found, done, home))
        new = tuple(range(size, space.ledger.store.entry_count()))
        (record,) = space.ledger.append_drafts([access_draft(
            "deidentify", f"deidentify:{len(indices)} instances", holder.name, refs=new)],
            ctx.home.actor_signer)
    made = [o for o in out if o.status == "deidentified"]
    return Deidentified(instances=out, deidentified=len(made), rejected=len(out) - len(made),
                        flagged=sum(1 for o in made if o.flags), access_index=record.index)


@_with_body.post("/deidentify", summary="De-identify registered instances into the home")
def post_deidentify(body: DeidentifyIn, ctx: Context, holder: Writer) -> Deidentified:
    """As ``radledger deidentify`` (PS3.15 Annex E, the same options and safe-private
    rules) of registered instances, each read from the file its registration was made from:
    copies under ``<home>/deidentified/<study>/<series>/<instance>.dcm`` (the new UIDs),
    registered (source ``deidentify``, the source's pixel hash) with one
    ``derivation.recorded`` each, as the CLI records them; a re-run records nothing new.
    A source whose file is gone or changed is rejected with its reason, the others go on.
    Then one ``access.recorded`` (action ``deidentify``, ``refs``: every entry appended)
    naming the token. 400 for an unknown profile or option, 404 for an unknown target."""
    if body.profile != PROFILE:
        raise InputError(f"unknown profile {body.profile!r:.40}; radledger implements "
                         f"{PROFILE!r}")
    rules = frozenset(parse_safe_private(rule) for rule in body.safe_private)
    recipe_for(frozenset(body.options), rules)  # a bad option is 400, before any work
    return _deidentify(ctx, body, holder, rules)


router.include_router(_with_body)
