"""Pages for the data protection officer (consent, erasure) and for admins (tokens).

A PatientID typed here is pseudonymised at once by the trail services and never shown back,
stored or logged; looking up a patient's consent is a recorded read of identified data.
A new token is shown once, on the page that created it, and never again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import Response

from radledger.api.auth import Context
from radledger.api.context import ApiContext
from radledger.core.note import Signer
from radledger.errors import InputError
from radledger.ledger import trail
from radledger.ledger.service import Receipt
from radledger.ledger.setup import Workspace
from radledger.ledger.tokens import (
    ROLES,
    Permission,
    create_token,
    list_tokens,
    open_tokens,
    revoke_token,
)
from radledger.web.access import record, write_for
from radledger.web.render import PREFIX, WebRoute, page, redirect
from radledger.web.session import Needs, WebUser

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ConsentUser = Annotated[WebUser, Depends(Needs(Permission.APPEND, Permission.READ_PHI))]
Writer = Annotated[WebUser, Depends(Needs(Permission.APPEND))]
PhiReader = Annotated[WebUser, Depends(Needs(Permission.READ_PHI))]
Admin = Annotated[WebUser, Depends(Needs(Permission.ADMIN))]
PatientId = Annotated[str, Form(min_length=1, max_length=200)]
Text = Annotated[str, Form(max_length=200)]
MAX_EVIDENCE = 512 << 10  # the request itself is capped by the app's body limit


# -- consent ----------------------------------------------------------------------------------
def _consent_page(request: Request, ctx: ApiContext, user: WebUser, status: int = 200,
                  **values: Any) -> HTMLResponse:
    values.setdefault("done", None)
    values.setdefault("checked", None)
    values.setdefault("problem", None)
    return page(request, user, "consent.html", title="Consent", origin=ctx.home.origin,
                status=status, **values)


@router.get(f"{PREFIX}/consent")
def consent_page(request: Request, ctx: Context, user: ConsentUser) -> HTMLResponse:
    """Record a decision (writers), look a patient's consent up (PHI readers)."""
    return _consent_page(request, ctx, user)


class ConsentForm(BaseModel):
    """A consent decision; the evidence file, if any, is read from the same form."""

    patient: str = Field(min_length=1, max_length=200)
    decision: str = Field(pattern="^(grant|withdraw)$")
    scope: str = Field(default="", max_length=200)


@router.post(f"{PREFIX}/consent")
async def consent_record(request: Request, ctx: Context, user: Writer,
                         form: Annotated[ConsentForm, Form()]) -> HTMLResponse:
    """``consent.granted`` or ``consent.withdrawn``, as ``radledger consent``; evidence is
    committed, never stored."""
    evidence = (await request.form()).get("evidence")
    document = await evidence.read(MAX_EVIDENCE + 1) \
        if isinstance(evidence, StarletteUpload) and evidence.filename else None
    if document is not None and len(document) > MAX_EVIDENCE:
        return _consent_page(request, ctx, user, 413, problem="the evidence document is over "
                             f"{MAX_EVIDENCE >> 10} KiB; commit a smaller scan")
    change = trail.Consent(form.patient, form.scope.strip() or ctx.home.origin,
                           form.decision == "grant", document)
    receipt, access = await run_in_threadpool(write_for, ctx, user, lambda space, signer:
                                              trail.record_consent(space, signer, change))
    kind = "consent.granted" if change.granted else "consent.withdrawn"
    return _consent_page(request, ctx, user, done=(kind, receipt.index, access.index,
                                                   change.scope))


@router.post(f"{PREFIX}/consent/check")
def consent_check(request: Request, ctx: Context, user: PhiReader, patient: PatientId,
                  scope: Text = "") -> HTMLResponse:
    """Whether the patient's consent is in force for a scope; a recorded read."""
    scope = scope.strip() or ctx.home.origin
    with ctx.writing() as space:
        key = trail.patient_key(space, patient)
        in_force, index = trail.consent_in_force(space, key, scope)
        access = record(space, ctx.home.actor_signer, user, "read", f"consent/{key}")
    return _consent_page(request, ctx, user, checked=(in_force, index, scope, access.index))


# -- erasure ----------------------------------------------------------------------------------
@router.get(f"{PREFIX}/erasure")
def erasure_page(request: Request, ctx: Context, user: Admin) -> HTMLResponse:
    """The erasure form."""
    return page(request, user, "erasure.html", title="Erasure", done=None, problem=None)


class ErasureForm(BaseModel):
    """Whose committed data to destroy, why, and the confirmation."""

    patient: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)
    confirm: bool = False


@router.post(f"{PREFIX}/erasure")
async def erase(request: Request, ctx: Context, user: Admin,
                form: Annotated[ErasureForm, Form()]) -> HTMLResponse:
    """As ``radledger erase --patient``: the patient's note texts, evidence salts and file
    paths are destroyed; ``erasure.recorded`` names the token as requester."""
    if not form.confirm:
        return page(request, user, "erasure.html", title="Erasure", done=None, status=422,
                    problem="Tick the box to confirm: erasure cannot be undone.")
    erased: list[str] = []

    def service(space: Workspace, signer: Signer) -> Receipt:
        receipt, commitments = trail.erase_patient(space, signer, form.patient, form.reason,
                                                   user.name)
        erased.extend(commitments)
        return receipt

    receipt, access = await run_in_threadpool(write_for, ctx, user, service)
    return page(request, user, "erasure.html", title="Erasure", problem=None,
                done=(receipt.index, len(erased), access.index))


# -- tokens -----------------------------------------------------------------------------------
def _tokens_page(request: Request, ctx: ApiContext, user: WebUser, status: int = 200,
                 **values: Any) -> HTMLResponse:
    """The list, with ``created`` (name, role, token: shown this once) or ``problem``."""
    store = open_tokens(ctx.home)
    try:
        rows = list_tokens(store)
    finally:
        store.close()
    values.setdefault("created", None)
    values.setdefault("problem", None)
    return page(request, user, "tokens.html", title="Tokens", rows=rows, roles=ROLES,
                status=status, **values)


@router.get(f"{PREFIX}/tokens")
def tokens_page(request: Request, ctx: Context, user: Admin) -> HTMLResponse:
    """Every token ever created (never the token itself), and the form to make one."""
    return _tokens_page(request, ctx, user)


@router.post(f"{PREFIX}/tokens")
def token_create(request: Request, ctx: Context, user: Admin,
                 name: Annotated[str, Form(max_length=64)],
                 role: Annotated[str, Form(max_length=32)]) -> HTMLResponse:
    """Create a token and show it this once."""
    store = open_tokens(ctx.home)
    try:
        token = create_token(store, name.strip(), role)
    except InputError as exc:
        return _tokens_page(request, ctx, user, 422, problem=str(exc))
    finally:
        store.close()
    return _tokens_page(request, ctx, user, created=(name.strip(), role, token))


@router.post(f"{PREFIX}/tokens/revoke")
def token_revoke(request: Request, ctx: Context, user: Admin,
                 name: Annotated[str, Form(max_length=64)]) -> Response:
    """Revoke the token in force named ``name`` (its sessions end at their next click)."""
    store = open_tokens(ctx.home)
    try:
        revoke_token(store, name)
    finally:
        store.close()
    return redirect(f"{PREFIX}/tokens")
