"""Dataset releases over HTTP: ``POST /releases/check`` (a dry run), ``POST /releases``,
``GET /releases/{index}``.

Both POSTs choose members as ``radledger release create`` does (``study``, ``members`` or
``all``; identified instances replaced by their de-identified copies) and run
``ledger.release.create_release``. The dry run gives it a ledger whose append validates and
signs the entry, then hands it back instead of storing it: its verdict is the one a
``POST /releases`` would get at that moment, and it appends nothing (not even an access
record: it reads only what a reader may read).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Self, cast

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field, model_validator

from radledger.api.auth import Context, Reader, Writer
from radledger.api.errors import error_schema
from radledger.api.routes_trail import EntryOut
from radledger.api.writes import (
    Body,
    StrictJsonRoute,
    Target,
    Uid,
    Written,
    targets,
    write_for,
    written,
)
from radledger.core.note import Signer
from radledger.errors import InputError, NotFound, ReleaseRefused
from radledger.ledger import release
from radledger.ledger.derive import resolve_inputs
from radledger.ledger.drafts import Draft
from radledger.ledger.reads import entry_json
from radledger.ledger.service import Ledger, Receipt, rfc3339
from radledger.ledger.setup import Workspace
from radledger.ledger.signing import sign_drafts

router = APIRouter(tags=["releases"], route_class=StrictJsonRoute,
                   responses={"default": error_schema()})


class ReleaseIn(Body):
    """A named, versioned release and the rules it is made under. Members: exactly one of
    ``study``, ``members``, ``all``."""

    name: str
    version: str
    study: list[Uid] = Field(default_factory=list, description=(
        "Study/Series/SOP Instance UIDs, original or de-identified (`--study`)."))
    members: list[Target] = Field(default_factory=list, description=(
        "Entry indices or UIDs (what `--from-file` lists)."))
    all: bool = Field(False, description="Every de-identified instance in the ledger.")
    scope: str | None = Field(None, description="The consent scope (default: the ledger's "
                                                "origin).")
    exclude_unconsented: bool = Field(False, description=(
        "Leave out (and list) members without consent instead of refusing."))
    allow_identified: bool = Field(False, description="An internal release: identified "
                                                      "instances allowed.")
    include_burned_in: bool = Field(False, description=(
        "Include members held for burned-in annotation review (recorded)."))
    description: str | None = None

    @model_validator(mode="after")
    def _one_way_to_choose(self) -> Self:
        if sum((bool(self.study), bool(self.members), self.all)) != 1:
            raise ValueError("choose the members with exactly one of study, members, all")
        return self


def _plan(space: Workspace, asked: ReleaseIn, origin: str) -> release.ReleasePlan:
    """The members and rules, as ``release create`` resolves them. Raises NotRegistered or
    NotFound for an unknown member."""
    if asked.all:
        members = release.deidentified_instances(space)
    else:
        chosen = targets(space, [*asked.study, *asked.members])
        members = release.prefer_deidentified(space, resolve_inputs(space, chosen,
                                                                    files=False))
    return release.ReleasePlan(asked.name, asked.version, members, asked.scope or origin,
                               asked.exclude_unconsented, asked.allow_identified,
                               asked.include_burned_in, asked.description)


# -- the dry run ------------------------------------------------------------------------------
class _Planned(Exception):
    """Not an error: how the dry run's append hands back what it would have stored."""

    def __init__(self, drafts: Sequence[Draft]) -> None:
        super().__init__("planned")
        self.drafts = list(drafts)


class _DryRunLedger:
    """Stands in for the Ledger in ``create_release``: the store to read, and an append
    that checks and signs the drafts as a real one does, then raises them instead of storing
    them. It has nothing else, so a service that came to use more would fail loudly rather
    than append."""

    def __init__(self, ledger: Ledger) -> None:
        self.store = ledger.store
        self._clock = ledger.clock

    def append_drafts(self, drafts: Sequence[Draft], signer: Signer) -> list[Receipt]:
        sign_drafts(drafts, signer, rfc3339(self._clock()))  # raises what an append would
        raise _Planned(drafts)


class MemberCheck(BaseModel):
    """One member: its consent state and what, if anything, forbids releasing it."""

    index: int
    identified: bool
    consent_in_force: bool
    consent_index: int | None
    problems: list[str]


class Refusal(BaseModel):
    """A member that would stop the release, and why."""

    index: int
    reason: str


class ReleaseCheck(BaseModel):
    """What ``POST /releases`` would do now."""

    would_release: bool
    message: str | None = Field(description="Why not, as POST /releases would answer.")
    refused: list[Refusal]
    members: list[MemberCheck]
    release: dict[str, Any] | None = Field(description=(
        "The dataset.released body that would be appended (null if refused)."))


def check_release(space: Workspace, signer: Signer, plan: release.ReleasePlan
                  ) -> ReleaseCheck:
    """The verdict of ``create_release`` on ``plan``, nothing appended. Raises InputError
    for a member that is not an instance registration (as a release would)."""
    members = [MemberCheck(index=m.index, identified=m.identified,
                           consent_in_force=m.consent[0], consent_index=m.consent[1],
                           problems=m.problems)
               for m in release.check_members(space, plan)]
    dry = Workspace(cast(Ledger, _DryRunLedger(space.ledger)), space.side, space.project_key)
    try:
        release.create_release(dry, signer, plan)
    except _Planned as planned:
        return ReleaseCheck(would_release=True, message=None, refused=[], members=members,
                            release=dict(planned.drafts[0].body))
    except ReleaseRefused as refused:
        return ReleaseCheck(would_release=False, message=str(refused), members=members,
                            refused=[Refusal(index=i, reason=why)
                                     for i, why in sorted(refused.members.items())],
                            release=None)
    except InputError as other:  # ReleaseExists, NothingToRelease, an invalid entry
        return ReleaseCheck(would_release=False, message=str(other), refused=[],
                            members=members, release=None)
    raise AssertionError("create_release returned without appending")


@router.post("/releases/check", summary="Which members a release would refuse, and why")
def post_release_check(body: ReleaseIn, ctx: Context, _: Reader) -> ReleaseCheck:
    """A dry run of ``POST /releases`` with the same body: consent missing, identified data,
    burned-in flags, a release that exists already. Appends nothing."""
    with ctx.writing() as space:  # the side store's lookup index is brought up to date
        return check_release(space, ctx.home.actor_signer, _plan(space, body, ctx.home.origin))


# -- creating and reading ---------------------------------------------------------------------
class Released(Written):
    """The release entry: its manifest and the consent state it was checked against."""

    members: int
    manifest_root: str
    consent: dict[str, Any]


@router.post("/releases", status_code=201, summary="Release a dataset")
def post_release(body: ReleaseIn, ctx: Context, holder: Writer, response: Response
                 ) -> Released:
    """``dataset.released``, as ``radledger release create``; 409 ``release_refused``
    naming each member that may not go and why, 409 ``release_exists`` for a name and
    version released already, 409 ``nothing_to_release`` if every member was excluded
    (nothing is appended then)."""
    made: dict[str, Any] = {}

    def create(space: Workspace, signer: Signer) -> Receipt:
        receipt = release.create_release(space, signer, _plan(space, body, ctx.home.origin))
        row = space.ledger.store.entry(receipt.index)
        assert row is not None  # just appended
        made.update(json.loads(row[1])["body"])
        return receipt

    receipt, record = write_for(ctx, holder, create)
    response.headers["Location"] = f"/releases/{receipt.index}"
    return Released(**written(receipt, record, "dataset.released"),
                    members=len(made["members"]), manifest_root=made["manifest_root"],
                    consent=made["consent"])


@router.get("/releases/{index}", summary="A release entry")
def get_release(index: Annotated[int, Path(ge=0, description="The release's entry index.")],
                ctx: Context, _: Reader) -> EntryOut:
    """The ``dataset.released`` entry at ``index``; 404 if it is not a release."""
    with ctx.reads.store() as store:
        found = entry_json(store, index)
    if found["entry"].get("kind") != "dataset.released":
        raise NotFound(f"no release at entry {index}")
    return EntryOut(**found)
