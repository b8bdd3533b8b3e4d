"""The research trail over HTTP (DESIGN section 3), as the CLI has it: history,
protocols, notes, results, derivations, corrections, consent and erasure.

Each handler parses, calls the ledger service the CLI calls (``ledger.trail``,
``ledger.derive``, ``ledger.history``) inside ``ApiContext.writing()``, and renders; every
write is followed by ``access.recorded`` naming the token (``api.writes``). Reading a note's
text or a patient's consent is a read of identified data: READ_PHI, recorded the same way.
History is not: a real UID is pseudonymised before lookup and never echoed, and the entries
returned hold only pseudonyms, hashes and allowlisted attributes, what ``GET /entries``
serves to any reader (the CLI records no access for ``history`` either).

No identified value (a PatientID, a real UID) ever travels in a URL: paths and query
strings are written to access logs, the server's and every proxy's (RELIABILITY 27). Such
values come in JSON bodies (``POST /history/query``, ``POST /consent/query``); a path holds
only indices, names and pseudonyms. Nor is a client's value ever read as a server file path
(``files=False`` on every lookup), whatever files sit in the server's working directory.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field, JsonValue

from radledger.api.auth import Context, Reader, Writer
from radledger.api.context import ApiContext
from radledger.api.errors import error_schema
from radledger.api.writes import (
    Admin,
    Base64,
    Body,
    PhiReader,
    StrictJsonRoute,
    Target,
    Written,
    access,
    targets,
    write_for,
    written,
)
from radledger.core.jcs import JSONValue
from radledger.core.note import Signer
from radledger.errors import NotFound
from radledger.ledger import trail
from radledger.ledger.derive import Derivation, record_derivation, resolve_inputs
from radledger.ledger.history import history
from radledger.ledger.reads import entry_json
from radledger.ledger.service import Receipt
from radledger.ledger.setup import Workspace
from radledger.ledger.tokens import TokenHolder
from radledger.storage.base import LedgerStore

router = APIRouter(tags=["research trail"], route_class=StrictJsonRoute,
                   responses={"default": error_schema()})

Parameters = dict[str, JsonValue]
EntryIndex = Annotated[int, Path(ge=0, description="The entry's index.")]
HistoryTarget = Annotated[str, Field(
    pattern=r"^(?:[0-9]+(?:\.[0-9]+)*|[0-9a-f]{64})$", max_length=64,
    description="A Study, Series or SOP Instance UID (pseudonymised by the server before "
                "lookup), or a 64-hex pseudonym. Never a server file path: files are looked "
                "up with `radledger history PATH` on the server.")]
# what a URL may carry: a pseudonym is not identifying, and anything else is refused (422,
# the value not echoed) so that a UID sent by mistake goes no further than the access log
Pseudonym = Annotated[str, Path(
    pattern=r"^[0-9a-f]{64}$", min_length=64, max_length=64,
    description="A 64-hex pseudonym, as entries' subjects hold them. Real UIDs go in the "
                "body of POST /history/query, never in a URL.")]


def _kind(store: LedgerStore, index: int) -> str | None:
    row = store.entry(index)
    kind = json.loads(row[1]).get("kind") if row else None
    return kind if isinstance(kind, str) else None


class EntryOut(BaseModel):
    """An entry with its leaf hash and block, as ``GET /entries/{index}``."""

    index: int
    leaf_hash: str
    entry: dict[str, Any]
    block: int | None


# -- history ----------------------------------------------------------------------------------
class HistoryEntry(BaseModel):
    """One entry of a history."""

    index: int
    entry: dict[str, Any]


class History(BaseModel):
    """Every entry about the target, oldest first, as ``radledger history --json``."""

    entries: list[HistoryEntry]
    truncated: bool


class HistoryQuery(Body):
    """What to trace; in the body, since a real UID must stay out of URLs and their logs."""

    target: HistoryTarget


def _history(ctx: ApiContext, target: str) -> History:
    with ctx.writing() as space:  # the lookup index in the side store is brought up to date
        entries, cut = history(space, target, files=False)
    return History(entries=[HistoryEntry(index=i, entry=json.loads(data))
                            for i, data in entries], truncated=cut)


@router.post("/history/query", summary="Every entry about a study, series or instance")
def post_history_query(body: HistoryQuery, ctx: Context, _: Reader) -> History:
    """The chain both ways from the target: what refers to it (new versions, derivations,
    notes, results, corrections, releases), what it refers to (protocol, a derivation's
    inputs and outputs), and its patients' consent and erasure entries. 404 if nothing in
    the ledger is about it. A read: nothing is appended."""
    return _history(ctx, body.target)


@router.get("/history/{pseudonym}", summary="Every entry about a pseudonymous subject")
def get_history(pseudonym: Pseudonym, ctx: Context, _: Reader) -> History:
    """As ``POST /history/query`` for a 64-hex pseudonym (a subject key of an entry); any
    other value is 422, unread and not echoed."""
    return _history(ctx, pseudonym)


# -- protocols --------------------------------------------------------------------------------
class ProtocolIn(Body):
    """A scanning protocol or analysis plan to pre-register."""

    name: str
    document: Base64 = Field(description="The document, base64; only its SHA-256 is recorded.")
    modality: str | None = None
    parameters: Parameters = Field(
        default_factory=dict, description="Non-identifying parameters, recorded in clear.")
    version: str | None = None


@router.post("/protocols", status_code=201, summary="Pre-register a protocol")
def post_protocol(body: ProtocolIn, ctx: Context, holder: Writer,
                  response: Response) -> Written:
    """``protocol.registered``, as ``radledger protocol register``."""
    protocol = trail.Protocol(body.name, body.document, body.modality, body.parameters,
                              body.version)
    receipt, record = write_for(ctx, holder, lambda space, signer: trail.register_protocol(
        space, signer, protocol))
    response.headers["Location"] = f"/protocols/{quote(body.name, safe='')}"
    return Written(**written(receipt, record, "protocol.registered"))


@router.get("/protocols/{name:path}", summary="The latest protocol registered by a name")
def get_protocol(name: str, ctx: Context, _: Reader) -> EntryOut:
    """The latest ``protocol.registered`` entry called ``name``; 404 if there is none."""
    with ctx.writing() as space:
        return EntryOut(**entry_json(space.ledger.store, trail.protocol_index(space, name)))


# -- notes and results ------------------------------------------------------------------------
About = Annotated[list[Target], Field(min_length=1, description=(
    "Entry indices, or registered Study/Series/SOP Instance UIDs (pseudonymised by the "
    "server; the patient of what they name joins the subject, so erasure reaches it)."))]


class NoteIn(Body):
    """A research note about entries or DICOM objects."""

    about: About
    text: str = Field(description="Kept in the side store (erasable); the ledger holds a "
                                  "salted commitment.")


class NoteOut(BaseModel):
    """A note's text, checked against its commitment, or null once erased."""

    index: int
    erased: bool
    text: str | None
    access_index: int | None = Field(description="The access.recorded entry of this read "
                                                 "(null: erased, nothing was read).")


@router.post("/notes", status_code=201, summary="Add a research note")
def post_note(body: NoteIn, ctx: Context, holder: Writer, response: Response) -> Written:
    """``note.added``, as ``radledger note add``."""
    def add(space: Workspace, signer: Signer) -> Receipt:
        return trail.add_note(space, signer, trail.about(space, targets(space, body.about)),
                              body.text.encode("utf-8"))

    receipt, record = write_for(ctx, holder, add)
    response.headers["Location"] = f"/notes/{receipt.index}"
    return Written(**written(receipt, record, "note.added"))


@router.get("/notes/{index}", summary="A note's text (a recorded read of identified data)")
def get_note(index: EntryIndex, ctx: Context, holder: PhiReader) -> NoteOut:
    """As ``radledger note show``: the text after checking it opens the ledger's commitment
    (409 if the side store was altered), then ``access.recorded`` naming the token. 404 if
    the entry is not a note."""
    with ctx.writing() as space:
        if _kind(space.ledger.store, index) != "note.added":
            raise NotFound(f"no note at entry {index}")
        text = trail.read_note(space, index)
        record = None if text is None else access(
            space, ctx.home.actor_signer, holder, "read", f"note.added/{index}")
    return NoteOut(index=index, erased=text is None,
                   text=None if text is None else text.decode("utf-8", "replace"),
                   access_index=None if record is None else record.index)


class ResultIn(Body):
    """An analysis result file with its metrics."""

    about: About
    file: Base64 = Field(description="The result file, base64; only its SHA-256 is recorded.")
    name: str | None = None
    metrics: Parameters = Field(default_factory=dict)


@router.post("/results", status_code=201, summary="Record an analysis result")
def post_result(body: ResultIn, ctx: Context, holder: Writer) -> Written:
    """``result.recorded``, as ``radledger result record``."""
    result = trail.Result(body.file, body.name, body.metrics)

    def record(space: Workspace, signer: Signer) -> Receipt:
        return trail.record_result(space, signer, trail.about(space, targets(space, body.about)),
                                   result)

    return Written(**written(*write_for(ctx, holder, record), "result.recorded"))


# -- derivations and corrections --------------------------------------------------------------
class DerivationIn(Body):
    """A processing step: inputs -> outputs through an operation and a tool."""

    operation: str = Field(description="segment, register, convert, annotate, analyse, "
                                       "infer or deidentify.")
    inputs: list[Target] = Field(min_length=1, description="Entry indices or registered "
                                 "Study/Series/SOP Instance UIDs.")
    outputs: list[Base64] = Field(min_length=1, description=(
        "Each output file, base64: DICOM is registered (instance.registered), anything else "
        "recorded by its SHA-256 and size."))
    tool: str
    tool_version: str
    recipe: Base64 | None = Field(None, description="The parameters or recipe file, base64; "
                                                    "only its SHA-256 is recorded.")
    parameters: Parameters = Field(default_factory=dict)


class DerivationWritten(Written):
    """The derivation and its outputs as recorded."""

    outputs: list[dict[str, Any]]


@router.post("/derivations", status_code=201, summary="Record a processing step")
def post_derivation(body: DerivationIn, ctx: Context, holder: Writer) -> DerivationWritten:
    """``derivation.recorded``, as ``radledger derive``. The outputs are written to a
    private temporary folder (named by position, never by the client) for the service to
    fingerprint, and deleted afterwards."""
    derivation = Derivation(body.operation, body.tool, body.tool_version, body.recipe,
                            body.parameters)
    outputs: list[JSONValue] = []

    def derive(space: Workspace, signer: Signer) -> Receipt:
        inputs = resolve_inputs(space, targets(space, body.inputs), files=False)
        with tempfile.TemporaryDirectory(prefix="radledger-api-") as folder:
            paths = [FilePath(folder) / f"output-{n:04d}" for n in range(len(body.outputs))]
            for path, data in zip(paths, body.outputs, strict=True):
                path.write_bytes(data)
            receipt, recorded = record_derivation(space, signer, derivation, inputs, paths)
        outputs.extend(recorded)
        return receipt

    receipt, record = write_for(ctx, holder, derive)
    return DerivationWritten(**written(receipt, record, "derivation.recorded"),
                             outputs=[o for o in outputs if isinstance(o, dict)])


class CorrectionIn(Body):
    """What to supersede, why, and (optionally) the corrected body."""

    index: int = Field(ge=0, description="The entry to supersede (it stays untouched).")
    reason: str
    body: Parameters | None = None


@router.post("/corrections", status_code=201, summary="Supersede an entry")
def post_correction(body: CorrectionIn, ctx: Context, holder: Writer) -> Written:
    """``correction.recorded``, as ``radledger correct``; 404 for an unknown entry."""
    corrected = None if body.body is None else body.body

    def correct(space: Workspace, signer: Signer) -> Receipt:
        targets(space, [body.index])
        return trail.correct(space, signer, body.index, body.reason, corrected)

    return Written(**written(*write_for(ctx, holder, correct), "correction.recorded"))


# -- consent and erasure ----------------------------------------------------------------------
class ConsentIn(Body):
    """A consent decision; the PatientID is pseudonymised at once, never stored or echoed."""

    patient: str = Field(min_length=1, description="The PatientID.")
    scope: str | None = Field(None, description="The project the consent covers (default: "
                                                "the ledger's origin).")
    evidence: Base64 | None = Field(None, description="The signed form or record, base64: "
                                                      "committed, never stored.")


class ConsentWritten(Written):
    """The consent entry and its scope."""

    scope: str


class ConsentQuery(Body):
    """Whose consent to read; in the body, since a PatientID must stay out of URLs."""

    patient: str = Field(min_length=1, description="The PatientID (pseudonymised by the "
                                                   "server, never echoed).")
    scope: str | None = Field(None, description="The scope (default: the ledger's origin).")


class ConsentOut(BaseModel):
    """Whether consent is in force for a scope, and which entry decides it (null: never
    recorded, so not in force)."""

    in_force: bool
    index: int | None
    scope: str
    access_index: int


def _consent(body: ConsentIn, granted: bool, ctx: ApiContext, holder: TokenHolder
             ) -> ConsentWritten:
    change = trail.Consent(body.patient, body.scope or ctx.home.origin, granted, body.evidence)
    kind = "consent.granted" if granted else "consent.withdrawn"
    receipt, record = write_for(ctx, holder, lambda space, signer: trail.record_consent(
        space, signer, change))
    return ConsentWritten(**written(receipt, record, kind), scope=change.scope)


@router.post("/consent/grant", status_code=201, summary="Record a patient's consent")
def post_consent_grant(body: ConsentIn, ctx: Context, holder: Writer) -> ConsentWritten:
    """``consent.granted``, as ``radledger consent grant``."""
    return _consent(body, True, ctx, holder)


@router.post("/consent/withdraw", status_code=201, summary="Record a consent withdrawal")
def post_consent_withdraw(body: ConsentIn, ctx: Context, holder: Writer) -> ConsentWritten:
    """``consent.withdrawn``, as ``radledger consent withdraw``; later releases refuse the
    patient's data for that scope."""
    return _consent(body, False, ctx, holder)


@router.post("/consent/query", summary="A patient's consent (a recorded read)")
def post_consent_query(body: ConsentQuery, ctx: Context, holder: PhiReader) -> ConsentOut:
    """As ``radledger consent show``; the PatientID is identified data, so the read is
    recorded (``access.recorded``, target ``consent/<patient pseudonym>``)."""
    scope = body.scope or ctx.home.origin
    with ctx.writing() as space:
        key = trail.patient_key(space, body.patient)
        in_force, index = trail.consent_in_force(space, key, scope)
        record = access(space, ctx.home.actor_signer, holder, "read", f"consent/{key}")
    return ConsentOut(in_force=in_force, index=index, scope=scope, access_index=record.index)


class ErasureIn(Body):
    """Whose committed data to destroy, and the request being honoured."""

    patient: str = Field(min_length=1, description="The PatientID.")
    reason: str


class Erased(Written):
    """The erasure entry and the commitments that can no longer be opened."""

    commitments: list[str]


@router.post("/erasure", status_code=201, summary="Erase a patient's committed data")
def post_erasure(body: ErasureIn, ctx: Context, holder: Admin) -> Erased:
    """As ``radledger erase --patient``: note texts and evidence salts about the patient are
    destroyed and ``erasure.recorded`` lists their commitments (``requested_by``: the
    token's name); every entry and proof stays valid. Admin tokens only: the data protection
    officer holds one."""
    erased: list[str] = []

    def erase(space: Workspace, signer: Signer) -> Receipt:
        receipt, commitments = trail.erase_patient(space, signer, body.patient, body.reason,
                                                   holder.name)
        erased.extend(commitments)
        return receipt

    receipt, record = write_for(ctx, holder, erase)
    return Erased(**written(receipt, record, "erasure.recorded"), commitments=erased)
