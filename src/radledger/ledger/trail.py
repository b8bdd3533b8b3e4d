"""The research trail (DESIGN section 3): protocols, notes, results, corrections, consent and
erasure, as entries; what must stay erasable goes to the side store as commitment openings.

Each function takes the workspace and the signer, builds a draft, and appends it. A value
that is committed rather than recorded (a note's text, consent evidence) has its opening
written to the side store before the entry is appended: a crash in between leaves an
opening nothing refers to, never an entry that cannot be opened.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass

from radledger.core.commitment import SALT_SIZE, commit, opens
from radledger.core.jcs import JSONValue
from radledger.core.note import Signer
from radledger.core.pseudonym import pseudonym
from radledger.errors import EntryError, InputError, NotRegistered, TamperError
from radledger.ledger import lookup
from radledger.ledger.drafts import Draft
from radledger.ledger.service import Receipt
from radledger.ledger.setup import Workspace

_UID_NAMESPACES = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID",
                   "instance": "SOPInstanceUID"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class About:
    """What an entry is about: pseudonymous subject keys and referenced entries."""

    subject: dict[str, str]
    refs: tuple[int, ...]


def about(space: Workspace, targets: list[str]) -> About:
    """Resolve ``--about`` values: an entry index, or a real Study/Series/SOP Instance UID
    (pseudonymised, and looked up to learn which it is). The patient of what is named joins
    the subject, so that erasing the patient reaches this entry's commitments too.

    Raises NotRegistered for a UID no entry is about, InputError for an index beyond the
    ledger.
    """
    subject: dict[str, str] = {}
    refs: list[int] = []
    named: list[int] = []  # entries whose subject says which patient this is about
    size = space.ledger.store.entry_count()
    for target in targets:
        if target.isdigit():
            if int(target) >= size:
                raise InputError(f"--about {target}: no such entry (ledger size {size})")
            refs.append(int(target))
            named.append(int(target))
            continue
        name, key, first = _registered_uid(space, target.strip())
        subject[name] = key
        named.append(first)
    for index in named:
        patient = _subject(space, index).get("patient")
        if patient and "patient" not in subject:
            subject["patient"] = patient
    return About(subject, tuple(refs))


def _registered_uid(space: Workspace, uid: str) -> tuple[str, str, int]:
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    for name, namespace in _UID_NAMESPACES.items():
        try:
            key = pseudonym(space.project_key, namespace, uid)
        except InputError:
            break
        wanted = lookup.key(lookup.SUBJECT_TAGS[name], key)
        hits = space.side.lookup([wanted]).get(wanted)
        if hits:
            return name, key, hits[0]
    raise NotRegistered("no registered study, series or instance has that UID")


def _subject(space: Workspace, index: int) -> dict[str, str]:
    row = space.ledger.store.entry(index)
    subject = json.loads(row[1]).get("subject", {}) if row else {}
    return subject if isinstance(subject, dict) else {}


def _append(space: Workspace, signer: Signer, draft: Draft) -> Receipt:
    (receipt,) = space.ledger.append_drafts([draft], signer)
    return receipt


def _keep_opening(space: Workspace, value: bytes, keep_value: bool,
                  patient: str | None) -> str:
    salt = secrets.token_bytes(SALT_SIZE)
    commitment = commit(salt, value)
    with space.side.write():
        space.side.add_opening(commitment, salt, value if keep_value else None, patient)
    return commitment


@dataclass(frozen=True)
class Protocol:
    """A scanning protocol or analysis plan to pre-register."""

    name: str
    document: bytes
    modality: str | None = None
    parameters: dict[str, JSONValue] | None = None  # in clear: non-identifying ones only
    version: str | None = None


def register_protocol(space: Workspace, signer: Signer, protocol: Protocol) -> Receipt:
    """Pre-register a protocol: its document's hash, name, modality and parameters."""
    body: dict[str, JSONValue] = {
        "name": protocol.name, "document_sha256": hashlib.sha256(protocol.document).hexdigest()}
    if protocol.modality:
        body["modality"] = protocol.modality
    if protocol.parameters:
        body["parameters"] = dict(protocol.parameters)
    if protocol.version:
        body["version"] = protocol.version
    return _append(space, signer, Draft("protocol.registered", body))


def protocol_index(space: Workspace, name: str) -> int:
    """The index of the latest protocol registered as ``name``. Raises NotRegistered."""
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    wanted = lookup.name_key("protocol.registered", name)
    hits = space.side.lookup([wanted]).get(wanted)
    if not hits:
        raise NotRegistered(f"no protocol is registered as {name!r:.100}")
    return hits[-1]


def add_note(space: Workspace, signer: Signer, target: About, text: bytes) -> Receipt:
    """A research note: the ledger holds a salted commitment to ``text``; the text itself
    goes to the side store, from which erasure can remove it."""
    if not text.strip():
        raise InputError("a note needs some text")
    patient = target.subject.get("patient")
    commitment = _keep_opening(space, text, keep_value=True, patient=patient)
    body: dict[str, JSONValue] = {"commitment": commitment}
    return _append(space, signer, Draft("note.added", body, dict(target.subject), target.refs))


def read_note(space: Workspace, index: int) -> bytes | None:
    """The text of the note at ``index``, or None once erased. Raises InputError if the
    entry is not a note, TamperError if the side store's text does not open the commitment."""
    row = space.ledger.store.entry(index)
    if row is None:
        raise InputError(f"no entry {index}")
    entry = json.loads(row[1])
    if entry.get("kind") != "note.added":
        raise InputError(f"entry {index} is a {entry.get('kind')}, not a note")
    commitment = entry["body"]["commitment"]
    opening = space.side.opening(commitment)
    if opening is None:
        return None
    salt, text = opening
    if text is None:
        return None
    if not opens(commitment, salt, text):
        raise TamperError("the side store's note text does not open the ledger's commitment",
                          index=index, expected=commitment,
                          computed=hashlib.sha256(salt + text).hexdigest())
    return text


@dataclass(frozen=True)
class Result:
    """An analysis result file with its metrics."""

    data: bytes
    name: str | None = None
    metrics: dict[str, JSONValue] | None = None


def record_access(space: Workspace, signer: Signer, action: str, target: str,
                  via: str = "cli") -> Receipt:
    """``access.recorded``: who (the signer) read or exported what, through which door."""
    return _append(space, signer, Draft("access.recorded",
                                        {"action": action, "target": target, "via": via}))


def record_result(space: Workspace, signer: Signer, target: About, result: Result
                  ) -> Receipt:
    """An analysis result: its file's hash, its metrics, and what it is about."""
    body: dict[str, JSONValue] = {"file_sha256": hashlib.sha256(result.data).hexdigest()}
    if result.name:
        body["name"] = result.name
    if result.metrics:
        body["metrics"] = dict(result.metrics)
    derivations = [r for r in target.refs if _kind(space, r) == "derivation.recorded"]
    if derivations:
        body["derivations"] = list(derivations)
    return _append(space, signer, Draft("result.recorded", body, dict(target.subject),
                                        target.refs))


def correct(space: Workspace, signer: Signer, index: int, reason: str,
            body: dict[str, JSONValue] | None) -> Receipt:
    """Supersede the entry at ``index`` with a reason (and, if given, the corrected body);
    both entries stay."""
    if space.ledger.store.entry(index) is None:
        raise InputError(f"no entry {index} to correct")
    fields: dict[str, JSONValue] = {"supersedes": index, "reason": reason}
    if body is not None:
        fields["body"] = body
    return _append(space, signer, Draft("correction.recorded", fields, {}, (index,)))


def patient_key(space: Workspace, patient_id: str) -> str:
    """The pseudonym of a PatientID (the clear ID goes no further than this)."""
    return pseudonym(space.project_key, "PatientID", patient_id.strip())


@dataclass(frozen=True)
class Consent:
    """A consent decision: the patient's real ID is pseudonymised at once."""

    patient_id: str
    scope: str
    granted: bool
    evidence: bytes | None = None  # committed, never stored


def record_consent(space: Workspace, signer: Signer, consent: Consent) -> Receipt:
    """``consent.granted`` or ``consent.withdrawn`` for a patient and scope; the evidence
    document is committed (its salt in the side store), never stored."""
    patient = patient_key(space, consent.patient_id)
    body: dict[str, JSONValue] = {"scope": check_scope(consent.scope)}
    if consent.evidence is not None:
        body["evidence_commitment"] = _keep_opening(space, consent.evidence, keep_value=False,
                                                    patient=patient)
    kind = "consent.granted" if consent.granted else "consent.withdrawn"
    return _append(space, signer, Draft(kind, body, {"patient": patient}))


def consent_in_force(space: Workspace, patient: str, scope: str) -> tuple[bool, int | None]:
    """Whether the patient (a pseudonym) has consent in force for ``scope``, and the index of
    the entry that decides it (None: never recorded, so no consent)."""
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    wanted = lookup.key(lookup.SUBJECT_TAGS["patient"], patient)
    decided: tuple[bool, int | None] = (False, None)
    for index in space.side.lookup([wanted]).get(wanted, []):
        row = space.ledger.store.entry(index)
        entry = json.loads(row[1]) if row else {}
        if entry.get("kind") in ("consent.granted", "consent.withdrawn") and \
                entry["body"].get("scope") == scope:
            decided = (entry["kind"] == "consent.granted", index)
    return decided


def erase_patient(space: Workspace, signer: Signer, patient_id: str, reason: str,
                  requested_by: str) -> tuple[Receipt, list[str]]:
    """Crypto-shredding: destroy the openings (salts, note texts) of every commitment about
    the patient and the recorded paths of the patient's files (folder names can identify),
    then record which commitments, in ``erasure.recorded``. Entries are never touched, so
    ``verify`` and every proof keep passing; the commitments can no longer be opened."""
    patient = patient_key(space, patient_id)
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
        wanted = lookup.key(lookup.SUBJECT_TAGS["patient"], patient)
        about = space.side.lookup([wanted]).get(wanted, [])
        erased = space.side.erase_patient(patient)
        space.side.forget_files(about)  # where the patient's files were found
    space.side.purge()
    body: dict[str, JSONValue] = {"commitments": list(erased), "requested_by": requested_by,
                                  "reason": reason}
    return _append(space, signer, Draft("erasure.recorded", body, {"patient": patient})), erased


def _kind(space: Workspace, index: int) -> str | None:
    row = space.ledger.store.entry(index)
    return json.loads(row[1]).get("kind") if row else None


MAX_SCOPE = 200


def check_scope(scope: str) -> str:
    """A consent scope: 1-200 printable characters. Raises EntryError."""
    if not (0 < len(scope) <= MAX_SCOPE and scope.isprintable()):
        raise EntryError("a consent scope must be 1-200 printable characters")
    return scope
