"""A FHIR view of ledger entries: a Bundle (type ``collection``) of Provenance and AuditEvent
resources, built with the ``fhir.resources`` R4B models so that every resource validates.

FHIR R4B changed no element of Bundle, Provenance or AuditEvent from R4 (4.0.1), so the JSON
is R4's as well; ``fhir.resources`` (pydantic 2) models R4B and R5, not R4 itself.

Each resource has the id ``entry-<index>``, ``meta.source`` the ledger's URI
(``urn:radledger:<origin>``) and the full URL ``urn:uuid:`` + a name-based UUID of
``<ledger URI>/entry/<index>``, so the same entry exported twice is the same resource.
Entries, keys, files and patients are referred to by identifier only: system the ledger's
URI, value ``entry/<index>``, ``actor/<name+keyid>``, ``file/<sha256>`` or
``patient/<pseudonym>``.

====================================  ================================================
kind                                  resource
====================================  ================================================
instance.registered, protocol.regis-  Provenance: target the entry; agent the signer
tered, result.recorded, note.added    (author); refs to a protocol or a consent are its
                                      ``policy``, others entities (role source)
derivation.recorded                   Provenance: target the outputs; entities the inputs
                                      (role source); agents the signer (author) and the
                                      tool (performer, a Device); the recipe hash is its
                                      policy (``ni:///sha-256;...``, RFC 6920)
dataset.released                      Provenance: entities the members (role source);
                                      the consent entries deciding it are its policy
correction.recorded                   Provenance: entity the superseded entry (revision)
access.recorded                       AuditEvent (DCM 110106 Export for an export, else
                                      110103 for an instance, else 110110): action R
consent.granted / consent.withdrawn   AuditEvent DCM 110110 Patient Record, action C / U,
                                      entity the patient (scope, evidence commitment)
erasure.recorded                      AuditEvent DCM 110110, action D: entity the patient
                                      and each erased commitment; the requester an agent
key.* and x-... kinds                 not exported (ledger housekeeping, free lab JSON)
====================================  ================================================

``recorded`` is the entry's claimed time; FHIR keeps microseconds, so a claimed time with
more digits is cut (the PROV view keeps it verbatim).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B.auditevent import (
    AuditEvent,
    AuditEventAgent,
    AuditEventEntity,
    AuditEventEntityDetail,
    AuditEventSource,
)
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.provenance import Provenance, ProvenanceAgent, ProvenanceEntity
from fhir.resources.R4B.reference import Reference

from radledger.ledger.export import (
    TERMS_URI,
    EntryPair,
    body_of,
    entry_target,
    index_list,
    kind_of,
    ledger_uri,
    subject_of,
    text,
)

DCM = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/audit-source-type"
KIND_SYSTEM = TERMS_URI + "kind"
OPERATION_SYSTEM = TERMS_URI + "operation"
ACCESS_SYSTEM = TERMS_URI + "access-action"

PROVENANCE_KINDS = frozenset({
    "instance.registered", "protocol.registered", "derivation.recorded", "result.recorded",
    "note.added", "dataset.released", "correction.recorded"})
AUDIT_KINDS = frozenset({"access.recorded", "consent.granted", "consent.withdrawn",
                         "erasure.recorded"})
_POLICY_KINDS = frozenset({"protocol.registered", "consent.granted", "consent.withdrawn"})
_AUDIT_ACTION = {"access.recorded": "R", "consent.granted": "C", "consent.withdrawn": "U",
                 "erasure.recorded": "D"}
_PATIENT_RECORD = ("110110", "Patient Record")


@dataclass(frozen=True)
class _Ledger:
    origin: str
    system: str
    kinds: Mapping[int, str]

    def ref(self, value: str, display: str | None = None) -> Reference:
        return Reference(identifier=Identifier(system=self.system, value=value),
                         display=display)

    def entry(self, index: int) -> Reference:
        return self.ref(f"entry/{index}")

    def actor(self, actor: str) -> Reference:
        return self.ref(f"actor/{actor}", actor.rpartition("+")[0] or None)

    def uri(self, index: int) -> str:
        return f"{self.system}/entry/{index}"


def _coding(system: str, code: str, display: str | None = None) -> Coding:
    return Coding(system=system, code=code, display=display)


def _ni_sha256(hex_digest: str) -> str:
    """RFC 6920 named-information URI of a SHA-256 digest."""
    raw = bytes.fromhex(hex_digest)
    return "ni:///sha-256;" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@dataclass
class _Parts:
    """What a Provenance gathers from an entry besides its target."""

    agents: list[ProvenanceAgent]
    entities: list[ProvenanceEntity] = field(default_factory=list)
    policy: list[str | None] = field(default_factory=list)
    handled: set[int] = field(default_factory=set)  # refs already placed


def _recorded(entry: Mapping[str, object]) -> datetime | None:
    claimed = text(entry.get("claimed_time"))
    try:
        return datetime.fromisoformat(claimed) if claimed else None
    except ValueError:
        return None


def _provenance(lg: _Ledger, index: int, entry: Mapping[str, object]) -> Provenance:
    kind, body = kind_of(entry), body_of(entry)
    targets = [lg.entry(index)]
    parts = _Parts([ProvenanceAgent(
        type=CodeableConcept(coding=[_coding(PARTICIPANT, "author")]),
        who=lg.actor(text(entry.get("actor")) or "unknown"))])
    activity = CodeableConcept(coding=[_coding(KIND_SYSTEM, kind)])
    if kind == "derivation.recorded":
        activity, outputs = _derivation(lg, body, parts)
        targets = outputs or targets
    elif kind == "dataset.released":
        members = body.get("members")
        for member in members if isinstance(members, list) else []:
            if isinstance(member, dict) and isinstance(member.get("index"), int):
                parts.entities.append(ProvenanceEntity(role="source",
                                                       what=lg.entry(member["index"])))
                parts.handled.add(member["index"])
    elif kind == "correction.recorded":
        old = body.get("supersedes")
        if isinstance(old, int):
            parts.entities.append(ProvenanceEntity(role="revision", what=lg.entry(old)))
            parts.handled.add(old)
    for ref in index_list(entry.get("refs")):
        if ref in parts.handled:
            continue
        if lg.kinds.get(ref) in _POLICY_KINDS:
            parts.policy.append(lg.uri(ref))
        else:
            parts.entities.append(ProvenanceEntity(role="source", what=lg.entry(ref)))
    return Provenance(
        id=f"entry-{index}", meta=Meta(source=lg.system), target=targets,
        recorded=_recorded(entry), activity=activity, agent=parts.agents,
        entity=parts.entities or None, policy=parts.policy or None)


def _derivation(lg: _Ledger, body: Mapping[str, object], parts: _Parts
                ) -> tuple[CodeableConcept, list[Reference]]:
    operation, tool = text(body.get("operation")) or "unknown", text(body.get("tool"))
    version = text(body.get("tool_version"))
    made_by = " ".join(x for x in (tool, version) if x)
    if made_by:
        parts.agents.append(ProvenanceAgent(
            type=CodeableConcept(coding=[_coding(PARTICIPANT, "performer")]),
            who=Reference(type="Device", display=made_by)))
    for i in index_list(body.get("inputs")):
        parts.entities.append(ProvenanceEntity(role="source", what=lg.entry(i)))
        parts.handled.add(i)
    outputs: list[Reference] = []
    listed = body.get("outputs")
    for output in listed if isinstance(listed, list) else []:
        if isinstance(output, dict) and isinstance(output.get("index"), int):
            outputs.append(lg.entry(output["index"]))
            parts.handled.add(output["index"])
        elif isinstance(output, dict) and isinstance(output.get("file_sha256"), str):
            outputs.append(lg.ref(f"file/{output['file_sha256']}"))
    recipe = text(body.get("recipe_sha256"))
    if recipe is not None:
        parts.policy.append(_ni_sha256(recipe))
    details = [f"{operation} by {made_by or 'an unnamed tool'}"]
    profile, options = text(body.get("profile")), _strings(body.get("options"))
    if profile:
        details.append(f"profile {profile}")
    if options:
        details.append("options " + ", ".join(options))
    return CodeableConcept(coding=[_coding(KIND_SYSTEM, "derivation.recorded"),
                                   _coding(OPERATION_SYSTEM, operation)],
                           text="; ".join(details)), outputs


def _strings(value: object) -> list[str]:
    """The strings in a JSON list."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _audit_event(lg: _Ledger, index: int, entry: Mapping[str, object]) -> AuditEvent:
    kind, body = kind_of(entry), body_of(entry)
    actor = text(entry.get("actor")) or "unknown"
    entities: list[AuditEventEntity] = []
    event_type = _coding(DCM, *_PATIENT_RECORD)
    if kind == "access.recorded":
        event_type, entities = _access(lg, body)
        requester = text(body.get("on_behalf_of"))
    else:
        details = [AuditEventEntityDetail(type=name, valueString=value)
                   for name in ("scope", "evidence_commitment", "reason")
                   if (value := text(body.get(name))) is not None]
        details += [AuditEventEntityDetail(type="commitment", valueString=c)
                    for c in _strings(body.get("commitments"))]
        patient = subject_of(entry).get("patient")
        entities.append(AuditEventEntity(
            what=lg.ref(f"patient/{patient}") if patient else None,
            type=_coding(ENTITY_TYPE, "1", "Person"), role=_coding(OBJECT_ROLE, "1", "Patient"),
            detail=details or None))
        requester = text(body.get("requested_by"))
    # the signer asked for it, unless the entry names someone it acted for
    agents = [AuditEventAgent(who=lg.actor(actor), name=actor.rpartition("+")[0] or actor,
                              requestor=requester is None)]
    if requester is not None:
        agents.append(AuditEventAgent(name=requester, requestor=True))
    return AuditEvent(
        id=f"entry-{index}", meta=Meta(source=lg.system), type=event_type,
        subtype=[_coding(KIND_SYSTEM, kind)], action=_AUDIT_ACTION[kind],
        recorded=_recorded(entry), outcome="0", agent=agents,
        source=AuditEventSource(site=lg.origin, observer=lg.ref("ledger", lg.origin),
                                type=[_coding(SOURCE_TYPE, "4", "Application Server")]),
        entity=entities or None)


def _access(lg: _Ledger, body: Mapping[str, object]
            ) -> tuple[Coding, list[AuditEventEntity]]:
    action, target = text(body.get("action")) or "read", text(body.get("target")) or ""
    index = entry_target(target)
    if action == "export":
        event_type = _coding(DCM, "110106", "Export")
    elif index is not None and lg.kinds.get(index) == "instance.registered":
        event_type = _coding(DCM, "110103", "DICOM Instances Accessed")
    else:
        event_type = _coding(DCM, *_PATIENT_RECORD)
    details = [AuditEventEntityDetail(type="action", valueString=action)]
    via = text(body.get("via"))
    if via is not None:
        details.append(AuditEventEntityDetail(type="via", valueString=via))
    entity = AuditEventEntity(
        what=lg.entry(index) if index is not None else None,
        description=None if index is not None else target or None,
        type=_coding(ENTITY_TYPE, "2", "System Object"), detail=details)
    return event_type, [entity]


def to_fhir_bundle(origin: str, entries: Sequence[EntryPair]) -> dict[str, Any]:
    """A FHIR Bundle (type collection, as JSON) of ``entries`` (``(index, parsed entry)``
    pairs from the ledger named ``origin``), in index order: one Provenance per
    registration, derivation, result, note, release and correction, one AuditEvent per
    access, consent and erasure entry. Requires well-formed entries with a claimed time;
    raises pydantic's ValidationError if a resource does not validate."""
    unique = dict(sorted(entries, key=lambda pair: pair[0]))
    system = ledger_uri(origin)
    lg = _Ledger(origin, system, {index: kind_of(entry) for index, entry in unique.items()})
    listed: list[BundleEntry] = []
    for index, entry in unique.items():
        kind = kind_of(entry)
        if kind in PROVENANCE_KINDS:
            resource: Provenance | AuditEvent = _provenance(lg, index, entry)
        elif kind in AUDIT_KINDS:
            resource = _audit_event(lg, index, entry)
        else:
            continue
        name = uuid.uuid5(uuid.NAMESPACE_URL, lg.uri(index))
        listed.append(BundleEntry(fullUrl=f"urn:uuid:{name}", resource=resource))
    bundle = Bundle(type="collection", entry=listed or None)
    return bundle.model_dump(mode="json")
