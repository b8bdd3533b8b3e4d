"""Releases (DESIGN section 3): a named, versioned dataset, its manifest and the consent
state at the moment of release, in one ``dataset.released`` entry.

Members are instance registrations. A de-identified member (registered by ``deidentify``)
belongs to the patient of the instance it was derived from, found through the
``derivation.recorded`` entry that produced it. Before anything is appended, every member is
checked: consent in force for the release's scope, de-identified (unless an internal release
allows identified data), and not held for burned-in annotation review (unless the release
says it includes them). The manifest root is the RFC 6962 Merkle root over the members, each
leaf the RFC 8785 form of ``{"index", "file_sha256", "pixel_sha256", "meta_sha256"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from radledger.core import jcs, merkle
from radledger.core.jcs import JSONValue
from radledger.core.note import Signer
from radledger.errors import InputError, NothingToRelease, ReleaseExists, ReleaseRefused
from radledger.ledger import lookup
from radledger.ledger.drafts import Draft
from radledger.ledger.service import Receipt
from radledger.ledger.setup import Workspace
from radledger.ledger.trail import consent_in_force

BURNED_IN = "burned-in-annotation-review"
DEIDENTIFIED_SOURCES = ("deidentify",)


@dataclass(frozen=True)
class ReleasePlan:
    """What to release and under which rules."""

    name: str
    version: str
    members: list[int]
    scope: str
    exclude_unconsented: bool = False
    allow_identified: bool = False
    include_burned_in: bool = False
    description: str | None = None


@dataclass
class _Member:
    index: int
    body: dict[str, JSONValue]
    patient: str | None
    identified: bool
    consent: tuple[bool, int | None] = (False, None)
    problems: list[str] = field(default_factory=list)


def _entry(space: Workspace, index: int) -> dict[str, JSONValue]:
    row = space.ledger.store.entry(index)
    if row is None:
        raise InputError(f"no entry {index}")
    entry = json.loads(row[1])
    return entry if isinstance(entry, dict) else {}


def _source_patient(space: Workspace, index: int) -> str | None:
    """The patient of the instance a de-identified member was derived from."""
    wanted = lookup.ref_key(index)
    for referrer in space.side.lookup([wanted]).get(wanted, []):
        entry = _entry(space, referrer)
        body = entry.get("body")
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if entry.get("kind") == "derivation.recorded" and isinstance(inputs, list):
            for source in inputs:
                if not isinstance(source, int):
                    continue
                subject = _entry(space, source).get("subject")
                if isinstance(subject, dict) and isinstance(subject.get("patient"), str):
                    return str(subject["patient"])
    return None


def _member(space: Workspace, index: int) -> _Member:
    entry = _entry(space, index)
    if entry.get("kind") != "instance.registered":
        raise InputError(f"entry {index} is a {entry.get('kind')}, not an instance")
    body = entry["body"]
    assert isinstance(body, dict)
    source = body.get("source")
    identified = not (isinstance(source, dict) and source.get("type") in DEIDENTIFIED_SOURCES)
    subject = entry.get("subject")
    patient = subject.get("patient") if isinstance(subject, dict) and identified else None
    if not identified:
        patient = _source_patient(space, index)
    return _Member(index, body, str(patient) if patient else None, identified)


def check_members(space: Workspace, plan: ReleasePlan) -> list[_Member]:
    """Each member with its consent state and what, if anything, forbids releasing it."""
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    members = [_member(space, i) for i in sorted(set(plan.members))]
    for m in members:
        if m.patient is None:
            m.problems.append("its patient is unknown (no PatientID, or no derivation link)")
        else:
            m.consent = consent_in_force(space, m.patient, plan.scope)
            if not m.consent[0]:
                m.problems.append(f"no consent in force for scope {plan.scope!r}")
        if m.identified and not plan.allow_identified:
            m.problems.append("identified (not de-identified) data")
        flags = m.body.get("flags")
        if isinstance(flags, list) and BURNED_IN in flags and not plan.include_burned_in:
            m.problems.append("held for burned-in annotation review")
    return members


def manifest_entry(m: _Member) -> dict[str, JSONValue]:
    """One member as the manifest lists it."""
    return {"index": m.index, "file_sha256": m.body["file_sha256"],
            "pixel_sha256": m.body["pixel_sha256"], "meta_sha256": m.body["meta_sha256"]}


def manifest_root(members: list[dict[str, JSONValue]]) -> str:
    """RFC 6962 root over the members' RFC 8785 forms, in the order given."""
    return merkle.root([merkle.leaf_hash(jcs.canonicalize(m)) for m in members]).hex()


def create_release(space: Workspace, signer: Signer, plan: ReleasePlan) -> Receipt:
    """Check every member, then append ``dataset.released``. Raises ReleaseRefused listing
    the members that may not go (by entry index) and why, ReleaseExists for a name and
    version released already, NothingToRelease if no member is left once the unconsented
    are excluded; nothing is appended then. InputError for a plan without members."""
    if not plan.members:
        raise InputError("a release needs at least one member")
    _refuse_existing(space, plan)
    members = check_members(space, plan)
    unconsented = [m for m in members if m.problems and
                   all(p.startswith(("no consent", "its patient")) for p in m.problems)]
    blocking = {m.index: "; ".join(m.problems) for m in members if m.problems
                and not (plan.exclude_unconsented and m in unconsented)}
    if blocking:
        raise ReleaseRefused(
            f"{len(blocking)} of {len(members)} members cannot be released: " + ", ".join(
                f"entry {i} ({why})" for i, why in list(blocking.items())[:20]), blocking)
    released = [m for m in members if not m.problems]
    if not released:
        raise NothingToRelease(f"no member is left to release ({len(unconsented)} of "
                               f"{len(members)} excluded without consent)")
    listed = [manifest_entry(m) for m in released]
    consent: dict[str, JSONValue] = {
        "scope": plan.scope, "checked_at_tree_size": space.ledger.store.entry_count(),
        "in_force": len(released),
        "excluded_unconsented": [m.index for m in unconsented]}
    body: dict[str, JSONValue] = {"name": plan.name, "version": plan.version,
                                  "manifest_root": manifest_root(listed),
                                  "members": list(listed), "consent": consent}
    if plan.description:
        body["description"] = plan.description
    deciding = {m.consent[1] for m in released if m.consent[1] is not None}
    refs = tuple(sorted({m.index for m in released} | {i for i in deciding if i is not None}))
    (receipt,) = space.ledger.append_drafts([Draft("dataset.released", body, {}, refs)],
                                            signer)
    return receipt


def _refuse_existing(space: Workspace, plan: ReleasePlan) -> None:
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    wanted = lookup.name_key("dataset.released", plan.name)
    for index in space.side.lookup([wanted]).get(wanted, []):
        body = _entry(space, index).get("body")
        if isinstance(body, dict) and body.get("version") == plan.version:
            raise ReleaseExists(f"release {plan.name!r:.100} version {plan.version!r:.40} "
                                f"exists already (entry {index}); give a new version", index)


def deidentified_instances(space: Workspace) -> list[int]:
    """Every instance registered by ``deidentify`` (``release create --all``)."""
    store = space.ledger.store
    found = []
    for start in range(0, store.entry_count(), 5000):
        for index, kind, _, data in store.entries(start, start + 5000):
            if kind == "instance.registered":
                source = json.loads(data)["body"].get("source")
                if isinstance(source, dict) and source.get("type") in DEIDENTIFIED_SOURCES:
                    found.append(index)
    return found


def prefer_deidentified(space: Workspace, indices: list[int]) -> list[int]:
    """Replace each identified instance by its de-identified copies, where ``deidentify``
    made some (so ``--study`` may name the original study); others stay as they are."""
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    chosen: set[int] = set()
    for index in indices:
        copies: list[int] = []
        wanted = lookup.ref_key(index)
        for referrer in space.side.lookup([wanted]).get(wanted, []):
            entry = _entry(space, referrer)
            body = entry.get("body")
            if entry.get("kind") != "derivation.recorded" or not isinstance(body, dict):
                continue
            inputs, outputs = body.get("inputs"), body.get("outputs")
            if (body.get("operation") == "deidentify" and isinstance(inputs, list)
                    and index in inputs and isinstance(outputs, list)):
                for output in outputs:
                    made = output.get("index") if isinstance(output, dict) else None
                    if isinstance(made, int):
                        copies.append(made)
        chosen.update(copies or [index])
    return sorted(chosen)
