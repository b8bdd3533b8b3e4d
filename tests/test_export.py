"""Provenance exports (issue 4): a whole trail, made with the real services, as W3C PROV and
as a FHIR Bundle; both read back and validate, every step is in them, no PHI is."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.provenance import Provenance
from prov.constants import PROV_ATTR_INFLUENCEE, PROV_ATTR_INFLUENCER
from prov.model import (
    PROV_ATTR_ACTIVITY,
    PROV_ATTR_AGENT,
    PROV_ATTR_COLLECTION,
    PROV_ATTR_ENTITY,
    PROV_ATTR_GENERATED_ENTITY,
    PROV_ATTR_USED_ENTITY,
    ProvActivity,
    ProvAssociation,
    ProvAttribution,
    ProvDerivation,
    ProvDocument,
    ProvElement,
    ProvGeneration,
    ProvInfluence,
    ProvInvalidation,
    ProvMembership,
    ProvRecord,
    ProvUsage,
)
from pydicom import dcmread

from radledger.dicom.synthetic import Acquisition, canary_patient, write_study
from radledger.ledger import release, trail
from radledger.ledger.derive import Derivation, record_derivation
from radledger.ledger.export import EntryPair, ledger_entries, ledger_uri, parse_rows
from radledger.ledger.export_fhir import to_fhir_bundle
from radledger.ledger.export_prov import prov_json, to_prov
from radledger.ledger.history import history
from radledger.ledger.home import LedgerHome
from radledger.ledger.ingest import Ingester, ingest
from radledger.ledger.setup import Workspace, init_ledger, open_workspace

CANARY = "CANARY-EXPORT-z8"
NOTE = b"contrast timing off; CANARY-NOTE-EXPORT-k3"
ORIGIN = "example.org/export"
SCOPE = "trial-42"
PROVENANCE_KINDS = {"instance.registered", "protocol.registered", "derivation.recorded",
                    "result.recorded", "note.added", "dataset.released",
                    "correction.recorded"}
AUDIT_KINDS = {"access.recorded", "consent.granted", "consent.withdrawn", "erasure.recorded"}


@dataclass
class Trail:
    """A ledger with one of every step, and the indices of each."""

    space: Workspace
    study_uid: str
    protocol: int
    originals: list[int]
    copies: list[int]
    deidentifications: list[int]
    segmentation: int
    mask_sha256: str
    result: int
    note: int
    consent: int
    released: int
    access: int
    correction: int
    erasure: int
    withdrawn: int


def _field(output: object, name: str) -> object:
    """One field of an output as record_derivation returns it."""
    assert isinstance(output, dict)
    return output[name]


def _ingest(home: LedgerHome, space: Workspace, folder: Path, protocol: int) -> list[int]:
    indices: list[int] = []
    ingest(Ingester(space, home.actor_signer, protocol), [folder], 1,
           lambda outcome, _size: indices.append(outcome.index if outcome.index is not None
                                                 else -1))
    return sorted(indices)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Trail:
    """Every kind of step, in the order a study goes through them."""
    with warnings.catch_warnings():
        # pydicom may warn while the files are made; that is not what is tested here
        warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
        return _build(tmp_path_factory.mktemp("export"))


def _build(root: Path) -> Trail:
    home, ledger = init_ledger(root / "home", ORIGIN, "alice")
    space = open_workspace(home, ledger)
    signer = home.actor_signer
    folder = root / "study"
    patient = canary_patient(CANARY)
    write_study(folder, patient, Acquisition(slices=2, rows=16, columns=16))
    study_uid = str(dcmread(folder / "slice-0001.dcm").StudyInstanceUID)
    protocol = trail.register_protocol(space, signer, trail.Protocol(
        "brain-mr-v1", b"%PDF protocol", "MR", {"field_strength_T": 3}, "1.0")).index
    originals = _ingest(home, space, folder, protocol)
    # de-identified by an 'external tool': identifying text replaced, new instance UIDs
    out = root / "deid"
    out.mkdir()
    copies: list[int] = []
    deidentifications: list[int] = []
    for index, path in zip(originals, sorted(folder.iterdir()), strict=True):
        ds = dcmread(path)
        ds.PatientName, ds.PatientID, ds.PatientAddress = "ANON", "ANON-1", "X"
        ds.InstitutionName, ds.ReferringPhysicianName, ds.ImageComments = "X", "X", "X"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{index}1"
        ds.save_as(out / path.name)
        receipt, recorded = record_derivation(space, signer, Derivation(
            "deidentify", "external-tool", "1.0", profile="basic",
            options=("retain-uids",)), [index], [out / path.name])
        copies.append(int(_field(recorded[0], "index")))
        deidentifications.append(receipt.index)
    mask = root / "mask.nii"
    mask.write_bytes(b"\x5c\x01\x00\x00 not really NIfTI")
    segmented, recorded = record_derivation(space, signer, Derivation(
        "segment", "nnU-Net", "2.5", b'{"fold": 0}', {"threshold": 0.5}), copies, [mask])
    result = trail.record_result(space, signer, trail.about(space, [str(segmented.index)]),
                                 trail.Result(b"volumes.csv", "volumes", {"dice": 0.91}))
    note = trail.add_note(space, signer, trail.about(space, [study_uid]), NOTE)
    consent = trail.record_consent(space, signer, trail.Consent(
        patient.patient_id, SCOPE, True, f"signed by {CANARY}".encode()))
    released = release.create_release(space, signer, release.ReleasePlan(
        "trial-42", "1.0", copies, SCOPE))
    access = trail.record_access(space, signer, "read", f"note.added/{note.index}")
    correction = trail.correct(space, signer, result.index, "wrong metric",
                               {"metrics": {"dice": 0.89}})
    erasure, _ = trail.erase_patient(space, signer, patient.patient_id, "request", "alice")
    withdrawn = trail.record_consent(space, signer, trail.Consent(
        patient.patient_id, SCOPE, False))
    return Trail(space, study_uid, protocol, originals, copies, deidentifications,
                 segmented.index, str(_field(recorded[0], "file_sha256")),
                 result.index, note.index, consent.index, released.index, access.index,
                 correction.index, erasure.index, withdrawn.index)


@pytest.fixture(scope="module")
def entries(built: Trail) -> list[EntryPair]:
    return ledger_entries(built.space.ledger.store)


def _name(index: int) -> str:
    return f"rl:entry/{index}"


def _records(doc: ProvDocument, cls: type[ProvRecord]) -> list[ProvRecord]:
    return [r for r in doc.get_records(cls) if isinstance(r, cls)]


def _pairs(doc: ProvDocument, cls: type[ProvRecord], first: object, second: object
           ) -> set[tuple[str, str]]:
    """(first, second) formal attributes of every relation of one type, as text."""
    found = set()
    for record in _records(doc, cls):
        attrs = dict(record.formal_attributes)
        found.add((str(attrs[first]), str(attrs[second])))
    return found


def test_prov_round_trips_and_holds_every_entry(built: Trail, entries: list[EntryPair]
                                               ) -> None:
    doc = to_prov(ORIGIN, entries)
    text = prov_json(ORIGIN, entries)
    assert ProvDocument.deserialize(content=text, format="json") == doc
    assert json.loads(text)["prefix"]["rl"] == ledger_uri(ORIGIN) + "/"
    by_kind: Counter[str] = Counter()
    leaves = {i: leaf.hex() for i, _, leaf, _ in built.space.ledger.store.entries(
        0, len(entries))}
    nodes = {str(r.identifier): r for r in _records(doc, ProvElement)}
    for index, entry in entries:
        node = nodes[_name(index)]
        assert node.get_attribute("rlt:index") == {index}
        assert node.get_attribute("rlt:leaf_hash") == {leaves[index]}  # the proofs' hash
        assert node.get_attribute("rlt:claimed_time") == {entry["claimed_time"]}
        by_kind[next(iter(node.get_attribute("rlt:kind")))] += 1
    assert by_kind == Counter(entry["kind"] for _, entry in entries)
    activities = {str(r.identifier) for r in _records(doc, ProvActivity)}
    assert {_name(i) for i in [built.segmentation, built.access, built.erasure,
                               *built.deidentifications]} <= activities
    # every entry is attributed to (or, done, associated with) the key that signed it
    actors = {f"rl:actor/{entry['actor']}" for _, entry in entries}
    signed = _pairs(doc, ProvAttribution, PROV_ATTR_ENTITY, PROV_ATTR_AGENT) | _pairs(
        doc, ProvAssociation, PROV_ATTR_ACTIVITY, PROV_ATTR_AGENT)
    assert {node for node, _ in signed} == {_name(i) for i, _ in entries}
    assert {agent for _, agent in signed} == actors
    assert all(agent in nodes for agent in actors)


def test_prov_links_each_step(built: Trail, entries: list[EntryPair]) -> None:
    doc = to_prov(ORIGIN, entries)
    used = _pairs(doc, ProvUsage, PROV_ATTR_ACTIVITY, PROV_ATTR_ENTITY)
    generated = _pairs(doc, ProvGeneration, PROV_ATTR_ENTITY, PROV_ATTR_ACTIVITY)
    derived = _pairs(doc, ProvDerivation, PROV_ATTR_GENERATED_ENTITY, PROV_ATTR_USED_ENTITY)
    segmentation, mask = _name(built.segmentation), f"rl:file/{built.mask_sha256}"
    assert {e for a, e in used if a == segmentation} == {_name(i) for i in built.copies}
    assert (mask, segmentation) in generated
    assert {(mask, _name(i)) for i in built.copies} <= derived
    for original, copy, step in zip(built.originals, built.copies, built.deidentifications,
                                    strict=True):
        assert (_name(step), _name(original)) in used
        assert (_name(copy), _name(step)) in generated
        assert (_name(copy), _name(original)) in derived
    # the result came from the derivation; the correction revises the result
    influences = _pairs(doc, ProvInfluence, PROV_ATTR_INFLUENCEE, PROV_ATTR_INFLUENCER)
    assert (_name(built.result), segmentation) in influences
    revisions = [r for r in _records(doc, ProvDerivation)
                 if "prov:Revision" in {str(t) for t in r.get_asserted_types()}]
    assert {(str(dict(r.formal_attributes)[PROV_ATTR_GENERATED_ENTITY]),
             str(dict(r.formal_attributes)[PROV_ATTR_USED_ENTITY])) for r in revisions} == {
        (_name(built.correction), _name(built.result))}
    members = _pairs(doc, ProvMembership, PROV_ATTR_COLLECTION, PROV_ATTR_ENTITY)
    assert members == {(_name(built.released), _name(i)) for i in built.copies}
    assert (_name(built.released), _name(built.consent)) in influences  # consent decided it
    assert (_name(built.access), _name(built.note)) in used  # the note that was read
    assert all((_name(i), _name(built.protocol)) in influences for i in built.originals)
    # consent and erasure are about the patient's pseudonym, never the patient
    patient = next(e for _, e in entries if e["kind"] == "consent.granted")["subject"][
        "patient"]
    assert (_name(built.consent), f"rl:patient/{patient}") in influences
    assert (_name(built.withdrawn), f"rl:patient/{patient}") in influences
    assert (_name(built.erasure), f"rl:patient/{patient}") in used
    invalidated = _pairs(doc, ProvInvalidation, PROV_ATTR_ENTITY, PROV_ATTR_ACTIVITY)
    assert (_name(built.note), _name(built.erasure)) in invalidated  # its text is gone
    assert (_name(built.consent), _name(built.erasure)) not in invalidated  # evidence only
    assert (_name(built.result), "None") in invalidated  # superseded by the correction


def test_fhir_bundle_validates_and_holds_every_step(built: Trail, entries: list[EntryPair]
                                                   ) -> None:
    bundle = to_fhir_bundle(ORIGIN, entries)
    parsed = Bundle.model_validate(bundle)
    assert parsed.model_dump(mode="json") == bundle
    assert json.loads(json.dumps(bundle)) == bundle  # plain JSON
    resources = {r.id: r for r in (e.resource for e in parsed.entry or [])}
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(bundle["entry"])
    kinds = {i: entry["kind"] for i, entry in entries}
    assert {i for i, k in kinds.items() if k in PROVENANCE_KINDS} == {
        int(rid.removeprefix("entry-")) for rid, r in resources.items()
        if isinstance(r, Provenance)}
    assert {i for i, k in kinds.items() if k in AUDIT_KINDS} == {
        int(rid.removeprefix("entry-")) for rid, r in resources.items()
        if isinstance(r, AuditEvent)}
    system = ledger_uri(ORIGIN)

    def values(refs: list[object]) -> set[str]:
        found = set()
        for ref in refs:
            identifier = ref.identifier  # type: ignore[attr-defined]
            assert identifier.system == system
            found.add(identifier.value)
        return found

    segmentation = resources[f"entry-{built.segmentation}"]
    assert isinstance(segmentation, Provenance)
    assert values(segmentation.target) == {f"file/{built.mask_sha256}"}
    assert {e.role for e in segmentation.entity or []} == {"source"}
    assert values([e.what for e in segmentation.entity or []]) == {
        f"entry/{i}" for i in built.copies}
    assert {a.who.display for a in segmentation.agent} >= {"nnU-Net 2.5"}
    assert any(p.startswith("ni:///sha-256;") for p in segmentation.policy or [])
    released = resources[f"entry-{built.released}"]
    assert isinstance(released, Provenance)
    assert values([e.what for e in released.entity or []]) == {
        f"entry/{i}" for i in built.copies}
    assert f"{system}/entry/{built.consent}" in (released.policy or [])
    correction = resources[f"entry-{built.correction}"]
    assert isinstance(correction, Provenance)
    assert [(e.role, e.what.identifier.value) for e in correction.entity or []] == [
        ("revision", f"entry/{built.result}")]
    erasure = resources[f"entry-{built.erasure}"]
    assert isinstance(erasure, AuditEvent) and erasure.action == "D"
    details = {d.type for e in erasure.entity or [] for d in e.detail or []}
    assert {"commitment", "reason"} <= details
    assert [a.name for a in erasure.agent if a.requestor] == ["alice"]
    access = resources[f"entry-{built.access}"]
    assert isinstance(access, AuditEvent) and access.action == "R"
    assert values([e.what for e in access.entity or []]) == {f"entry/{built.note}"}
    assert {resources[f"entry-{i}"].action for i in (built.consent, built.withdrawn)} == {
        "C", "U"}


def test_no_phi_leaves(built: Trail, entries: list[EntryPair]) -> None:
    outputs = [prov_json(ORIGIN, entries), json.dumps(to_fhir_bundle(ORIGIN, entries)),
               to_prov(ORIGIN, entries).get_provn()]
    for output in outputs:
        assert CANARY not in output
        assert "CANARY-NOTE" not in output  # a note leaves as its commitment only
        assert built.study_uid not in output  # pseudonyms only
    assert "path_key" not in outputs[0]


def test_a_history_exports_with_references_beyond_it(built: Trail) -> None:
    rows, cut = history(built.space, built.study_uid)
    assert not cut
    subset = parse_rows(rows)
    indices = {i for i, _ in subset}
    assert {built.segmentation, built.released, built.note, built.consent} <= indices
    # without the protocol and the first de-identification, what refers to them still does
    trimmed = [(i, e) for i, e in subset
               if i not in (built.protocol, built.deidentifications[0])]
    doc = to_prov(ORIGIN, trimmed)
    assert ProvDocument.deserialize(content=prov_json(ORIGIN, trimmed), format="json") == doc
    nodes = {str(r.identifier) for r in _records(doc, ProvElement)}
    assert _name(built.protocol) not in nodes
    influences = _pairs(doc, ProvInfluence, PROV_ATTR_INFLUENCEE, PROV_ATTR_INFLUENCER)
    assert (_name(built.originals[0]), _name(built.protocol)) in influences
    bundle = Bundle.model_validate(to_fhir_bundle(ORIGIN, trimmed))
    ids = {e.resource.id for e in bundle.entry or []}  # type: ignore[union-attr]
    assert f"entry-{built.deidentifications[0]}" not in ids
    assert f"entry-{built.deidentifications[1]}" in ids


def _entry(kind: str, body: dict[str, object], refs: list[object] | None = None,
           actor: str = "bob<é>/x+0a1b2c3d", subject: dict[str, str] | None = None
           ) -> dict[str, object]:
    return {"v": 1, "kind": kind, "actor": actor, "claimed_time": "2026-01-31T12:00:00.5Z",
            "subject": subject or {}, "body": body, "refs": refs or [], "sig": "AA=="}


@pytest.mark.filterwarnings("error")
def test_unusual_entries_export_without_warnings() -> None:
    """Under filterwarnings=error: a key name PROV-N cannot write, an access to an activity,
    a lab kind, a leaf-hash ref beyond the export, and a derivation of a derivation."""
    entries: list[EntryPair] = [
        (3, _entry("derivation.recorded", {
            "operation": "analyse", "inputs": [1], "outputs": [{"file_sha256": "ab" * 32,
                                                                "size": 5_000_000_000}],
            "tool": "t", "tool_version": "1"})),
        (4, _entry("derivation.recorded", {
            "operation": "analyse", "inputs": [3], "outputs": [{"index": 9}],
            "tool": "t", "tool_version": "1"}, refs=[3, 9])),
        (5, _entry("access.recorded", {"action": "export", "target": "derivation.recorded/3",
                                       "on_behalf_of": "carol"})),
        (6, _entry("x-lab.qc-check", {"secret": "CANARY"}, refs=["cd" * 32, 3])),
        (7, _entry("correction.recorded", {"supersedes": 3, "reason": "typo"}, refs=[3])),
        (8, _entry("key.revoked", {"key": "bob<é>/x+0a1b2c3d", "reason": "lost"})),
    ]
    doc = to_prov("lab <one>", entries)
    assert ProvDocument.deserialize(content=prov_json("lab <one>", entries),
                                    format="json") == doc
    provn = doc.get_provn()
    assert "CANARY" not in provn and "rlt:LabEntry" in provn
    assert "rl:actor/bob%3C%C3%A9%3E/x+0a1b2c3d" in provn
    bundle = to_fhir_bundle("lab <one>", entries)
    parsed = Bundle.model_validate(bundle)
    kinds = [type(e.resource).__name__ for e in parsed.entry or []]
    assert kinds == ["Provenance", "Provenance", "AuditEvent", "Provenance"]
    export = parsed.entry[2].resource  # type: ignore[index]
    assert export.type.code == "110106"
    assert [a.requestor for a in export.agent] == [False, True]
    assert bundle["entry"][0]["resource"]["recorded"] == "2026-01-31T12:00:00.500000Z"
