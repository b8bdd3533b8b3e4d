"""A W3C PROV view of ledger entries (PROV-DM, serialized as PROV-JSON).

Every entry becomes one node ``rl:entry/<index>``, where ``rl`` is the ledger's namespace
(``urn:radledger:<origin>/``), carrying ``rlt:index``, ``rlt:kind``, ``rlt:claimed_time`` (the
signed string, verbatim), ``rlt:leaf_hash`` and its subject pseudonyms (``rlt:subject_study``,
...); ``rlt`` is radledger's vocabulary (``urn:radledger:terms:``). An entity is attributed to
its signer, an activity associated with it, the agent ``rl:actor/<name+keyid>``.

=======================  ==============================================================
kind                     node and relations
=======================  ==============================================================
instance.registered      entity rlt:DicomInstance: fingerprints, SOP class, modality,
                         transfer syntax, allowlisted attributes, flags, source type
protocol.registered      entity prov:Plan, rlt:Protocol: document hash, parameters
derivation.recorded      activity rlt:Derivation: ``used`` each input, ``wasGeneratedBy``
                         each output (a file output is entity ``rl:file/<sha256>``),
                         ``wasDerivedFrom`` output -> input through the activity
result.recorded          entity rlt:Result: ``wasDerivedFrom`` the entities it refers to,
                         ``wasInfluencedBy`` the derivations it used
note.added               entity rlt:Note: the commitment only
dataset.released         prov:Collection rlt:Release: ``hadMember`` each member
consent.granted          entity rlt:ConsentGranted / rlt:ConsentWithdrawn,
/ consent.withdrawn      ``wasInfluencedBy`` the patient entity ``rl:patient/<pseudonym>``
access.recorded          activity rlt:Access: ``used`` the entry it names
erasure.recorded         activity rlt:Erasure: ``used`` the patient; each note whose text
                         it destroyed ``wasInvalidatedBy`` it (rlt:OpeningErased)
correction.recorded      entity rlt:Correction: ``wasRevisionOf`` the superseded entry,
                         which is invalidated (``rlt:Superseded``)
key.registered           entity rlt:KeyRegistration; the key's agent gets role and key
key.revoked / x-...      entity rlt:KeyRevocation / rlt:LabEntry (a lab body stays out)
=======================  ==============================================================

Any other reference an entry makes is ``wasInfluencedBy``. A reference to an entry outside
the exported set names it all the same (PROV allows an undeclared identifier).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from prov.identifier import Namespace, QualifiedName
from prov.model import PROV, ProvDocument

from radledger.core.entry import actor_id
from radledger.core.kinds import CLEAR_ATTRIBUTES
from radledger.ledger.export import (
    ACTIVITY_KINDS,
    TERMS_URI,
    EntryPair,
    body_of,
    canonical_text,
    entry_target,
    index_list,
    kind_of,
    leaf_hash,
    ledger_uri,
    note_commitments,
    subject_of,
    text,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._~+/\-]")
_FINGERPRINTS = ("file_sha256", "pixel_sha256", "meta_sha256", "pixel_hash_kind",
                 "sop_class_uid", "modality", "transfer_syntax_uid", "size")

Attrs = list[tuple[QualifiedName, object]]


def _local(value: str) -> str:
    """``value`` with every character outside a plain PROV-N local name percent-encoded,
    so no identifier depends on how a reader unescapes (key names may hold any non-space)."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), value)


class _Builder:
    def __init__(self, origin: str, entries: Sequence[EntryPair]) -> None:
        self.doc = ProvDocument()
        self.rl: Namespace = self.doc.add_namespace("rl", ledger_uri(origin) + "/")
        self.t: Namespace = self.doc.add_namespace("rlt", TERMS_URI)
        self.kinds = {index: kind_of(entry) for index, entry in entries}
        self.leaves = {h: index for index, entry in entries if (h := leaf_hash(entry))}
        self.notes = note_commitments(entries)
        self.declared: set[QualifiedName] = set()

    # names
    def entry(self, index: int) -> QualifiedName:
        return self.rl[f"entry/{index}"]

    def is_activity(self, index: int) -> bool:
        return self.kinds.get(index) in ACTIVITY_KINDS

    def is_entity(self, index: int) -> bool:
        kind = self.kinds.get(index)
        return kind is not None and kind not in ACTIVITY_KINDS

    def agent(self, actor: str, extra: Attrs | None = None) -> QualifiedName:
        name = self.rl["actor/" + _local(actor)]
        if name not in self.declared:
            self.declared.add(name)
            key_name, _, key_id = actor.rpartition("+")
            self.doc.agent(name, [(self.t["key_name"], key_name), (self.t["key_id"], key_id),
                                  *(extra or [])])
        return name

    def patient(self, pseudonym: str) -> QualifiedName:
        name = self.rl["patient/" + _local(pseudonym)]
        if name not in self.declared:
            self.declared.add(name)
            self.doc.entity(name, [(PROV["type"], self.t["Patient"])])
        return name

    def file(self, sha256: str, size: object) -> QualifiedName:
        name = self.rl["file/" + _local(sha256)]
        if name not in self.declared:
            self.declared.add(name)
            attrs: Attrs = [(PROV["type"], self.t["File"]), (self.t["file_sha256"], sha256)]
            if isinstance(size, int):
                attrs.append((self.t["size"], size))
            self.doc.entity(name, attrs)
        return name

    # one entry
    def add(self, index: int, entry: Mapping[str, object]) -> None:
        kind = kind_of(entry)
        node = self.entry(index)
        attrs = self.common(index, entry)
        types, handled = _HANDLERS.get(kind, _lab_entry)(self, node, entry, attrs)
        attrs.extend((PROV["type"], t) for t in types)
        refs, outside = self.refs(entry.get("refs"))
        attrs.extend((self.t["ref_leaf_hash"], h) for h in outside)
        actor = text(entry.get("actor"))
        if kind in ACTIVITY_KINDS:
            self.doc.activity(node, other_attributes=attrs)
            if actor is not None:
                self.doc.association(node, self.agent(actor))
        else:
            self.doc.entity(node, attrs)
            if actor is not None:
                self.doc.attribution(node, self.agent(actor))
        for ref in refs:
            if ref not in handled:
                self.doc.influence(node, self.entry(ref))

    def common(self, index: int, entry: Mapping[str, object]) -> Attrs:
        attrs: Attrs = [(self.t["index"], index), (self.t["kind"], kind_of(entry))]
        claimed = text(entry.get("claimed_time"))
        if claimed is not None:
            attrs.append((self.t["claimed_time"], claimed))
        digest = leaf_hash(entry)
        if digest is not None:
            attrs.append((self.t["leaf_hash"], digest))
        attrs.extend((self.t["subject_" + _local(k)], v)
                     for k, v in sorted(subject_of(entry).items()))
        return attrs

    def refs(self, refs: object) -> tuple[list[int], list[str]]:
        """The indices an entry refers to (a leaf hash of an exported entry resolved to its
        index), and the leaf hashes of entries outside the export."""
        indices: list[int] = []
        outside: list[str] = []
        for ref in refs if isinstance(refs, list) else []:
            if isinstance(ref, str):
                if ref in self.leaves:
                    indices.append(self.leaves[ref])
                else:
                    outside.append(ref)
            elif isinstance(ref, int) and not isinstance(ref, bool):
                indices.append(ref)
        return indices, outside

    def copy(self, attrs: Attrs, body: Mapping[str, object], fields: Sequence[str]) -> None:
        for field in fields:
            value = body.get(field)
            if isinstance(value, str | int) and not isinstance(value, bool):
                attrs.append((self.t[field], value))
            elif isinstance(value, dict):
                attrs.append((self.t[field], canonical_text(value)))


Handler = Callable[[_Builder, QualifiedName, Mapping[str, object], Attrs],
                   tuple[list[QualifiedName], set[int]]]


def _instance(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
              ) -> tuple[list[QualifiedName], set[int]]:
    body = body_of(entry)
    b.copy(attrs, body, _FINGERPRINTS)
    source = body.get("source")
    if isinstance(source, dict) and isinstance(source.get("type"), str):
        attrs.append((b.t["source_type"], source["type"]))
    flags = body.get("flags")
    attrs.extend((b.t["flag"], f) for f in (flags if isinstance(flags, list) else [])
                 if isinstance(f, str))
    clear = body.get("attributes")
    if isinstance(clear, dict):
        attrs.extend((b.t[name], value) for name, value in sorted(clear.items())
                     if name in CLEAR_ATTRIBUTES and isinstance(value, str | int))
    return [b.t["DicomInstance"]], set()


def _protocol(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
              ) -> tuple[list[QualifiedName], set[int]]:
    b.copy(attrs, body_of(entry), ("name", "document_sha256", "modality", "version",
                                   "parameters"))
    return [PROV["Plan"], b.t["Protocol"]], set()


def _derivation(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
                ) -> tuple[list[QualifiedName], set[int]]:
    body = body_of(entry)
    b.copy(attrs, body, ("operation", "tool", "tool_version", "recipe_sha256", "profile",
                         "parameters"))
    options = body.get("options")
    attrs.extend((b.t["option"], o) for o in (options if isinstance(options, list) else [])
                 if isinstance(o, str))
    inputs = index_list(body.get("inputs"))
    for i in inputs:
        if b.is_activity(i):
            b.doc.communication(node, b.entry(i))
        else:
            b.doc.usage(node, b.entry(i))
    handled = set(inputs)
    outputs = body.get("outputs")
    for output in outputs if isinstance(outputs, list) else []:
        if not isinstance(output, dict):
            continue
        made: QualifiedName
        if isinstance(output.get("index"), int):
            made = b.entry(output["index"])
            handled.add(output["index"])
        elif isinstance(output.get("file_sha256"), str):
            made = b.file(output["file_sha256"], output.get("size"))
        else:
            continue
        b.doc.generation(made, node)
        for i in inputs:
            if not b.is_activity(i):
                b.doc.derivation(made, b.entry(i), node)
    return [b.t["Derivation"]], handled


def _result(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
            ) -> tuple[list[QualifiedName], set[int]]:
    body = body_of(entry)
    b.copy(attrs, body, ("file_sha256", "name", "metrics"))
    handled: set[int] = set()
    for ref in sorted(set(index_list(entry.get("refs"))) | set(index_list(
            body.get("derivations")))):
        if b.is_entity(ref):
            b.doc.derivation(node, b.entry(ref))
        else:
            b.doc.influence(node, b.entry(ref))
        handled.add(ref)
    return [b.t["Result"]], handled


def _note(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
          ) -> tuple[list[QualifiedName], set[int]]:
    b.copy(attrs, body_of(entry), ("commitment",))
    return [b.t["Note"]], set()


def _release(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
             ) -> tuple[list[QualifiedName], set[int]]:
    body = body_of(entry)
    b.copy(attrs, body, ("name", "version", "manifest_root", "description"))
    consent = body.get("consent")
    if isinstance(consent, dict):
        b.copy(attrs, consent, ("scope", "in_force", "checked_at_tree_size"))
        attrs.extend((b.t["excluded_unconsented"], i)
                     for i in index_list(consent.get("excluded_unconsented")))
    handled: set[int] = set()
    members = body.get("members")
    for member in members if isinstance(members, list) else []:
        index = member.get("index") if isinstance(member, dict) else None
        if isinstance(index, int):
            b.doc.membership(node, b.entry(index))
            handled.add(index)
    return [PROV["Collection"], b.t["Release"]], handled


def _consent(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
             ) -> tuple[list[QualifiedName], set[int]]:
    b.copy(attrs, body_of(entry), ("scope", "evidence_commitment"))
    patient = subject_of(entry).get("patient")
    if patient is not None:
        b.doc.influence(node, b.patient(patient))
    granted = kind_of(entry) == "consent.granted"
    return [b.t["ConsentGranted" if granted else "ConsentWithdrawn"]], set()


def _access(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
            ) -> tuple[list[QualifiedName], set[int]]:
    body = body_of(entry)
    b.copy(attrs, body, ("action", "target", "via", "on_behalf_of"))
    target = entry_target(text(body.get("target")) or "")
    if target is not None:
        if b.is_activity(target):
            b.doc.communication(node, b.entry(target))
        else:
            b.doc.usage(node, b.entry(target))
        return [b.t["Access"]], {target}
    return [b.t["Access"]], set()


def _erasure(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
             ) -> tuple[list[QualifiedName], set[int]]:
    body = body_of(entry)
    b.copy(attrs, body, ("requested_by", "reason"))
    patient = subject_of(entry).get("patient")
    if patient is not None:
        b.doc.usage(node, b.patient(patient))
    commitments = body.get("commitments")
    for commitment in commitments if isinstance(commitments, list) else []:
        if not isinstance(commitment, str):
            continue
        attrs.append((b.t["commitment"], commitment))
        note = b.notes.get(commitment)
        if note is not None:  # its text is gone; the entry and its commitment stay
            b.doc.invalidation(b.entry(note), node,
                               other_attributes=[(PROV["type"], b.t["OpeningErased"])])
    return [b.t["Erasure"]], set()


def _correction(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
                ) -> tuple[list[QualifiedName], set[int]]:
    body = body_of(entry)
    b.copy(attrs, body, ("reason", "body"))
    old = body.get("supersedes")
    if not isinstance(old, int) or isinstance(old, bool):
        return [b.t["Correction"]], set()
    if b.is_entity(old):
        b.doc.revision(node, b.entry(old))
        b.doc.invalidation(b.entry(old), other_attributes=[
            (PROV["type"], b.t["Superseded"]), (b.t["superseded_by"], node)])
    else:
        b.doc.influence(node, b.entry(old))
    return [b.t["Correction"]], {old}


def _key(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
         ) -> tuple[list[QualifiedName], set[int]]:
    body = body_of(entry)
    b.copy(attrs, body, ("name", "role", "public_key"))
    name, public, role = text(body.get("name")), text(body.get("public_key")), body.get("role")
    try:
        raw = base64.b64decode(public or "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if name is not None and raw:
        extra: Attrs = [(b.t["role"], str(role)), (b.t["public_key"], cast(str, public)),
                        (b.t["registration"], node)]
        if role in ("ledger", "service"):
            extra.append((PROV["type"], PROV["SoftwareAgent"]))
        b.agent(actor_id(name, raw), extra)
    return [b.t["KeyRegistration"]], set()


def _key_revoked(b: _Builder, node: QualifiedName, entry: Mapping[str, object],
                 attrs: Attrs) -> tuple[list[QualifiedName], set[int]]:
    body = body_of(entry)
    b.copy(attrs, body, ("key", "reason"))
    key = text(body.get("key"))
    if key is not None and "+" in key:
        b.doc.influence(node, b.agent(key))
    return [b.t["KeyRevocation"]], set()


def _lab_entry(b: _Builder, node: QualifiedName, entry: Mapping[str, object], attrs: Attrs
               ) -> tuple[list[QualifiedName], set[int]]:
    return [b.t["LabEntry"]], set()


_HANDLERS: dict[str, Handler] = {
    "instance.registered": _instance, "protocol.registered": _protocol,
    "derivation.recorded": _derivation, "result.recorded": _result, "note.added": _note,
    "dataset.released": _release, "consent.granted": _consent,
    "consent.withdrawn": _consent, "access.recorded": _access, "erasure.recorded": _erasure,
    "correction.recorded": _correction, "key.registered": _key, "key.revoked": _key_revoked,
}


def to_prov(origin: str, entries: Sequence[EntryPair]) -> ProvDocument:
    """The PROV document of ``entries`` (``(index, parsed entry)`` pairs, any order, from the
    ledger named ``origin``). Entries are added in index order; an index given twice is
    added once. Requires well-formed entries (as the ledger holds them); a field of the
    wrong type is left out rather than raising."""
    unique = dict(sorted(entries, key=lambda pair: pair[0]))
    builder = _Builder(origin, list(unique.items()))
    for index, entry in unique.items():
        builder.add(index, entry)
    return builder.doc


def prov_json(origin: str, entries: Sequence[EntryPair], indent: int | None = 2) -> str:
    """``to_prov`` serialized as PROV-JSON."""
    serialized = to_prov(origin, entries).serialize(format="json", indent=indent)
    assert serialized is not None  # no destination given: the text is returned
    return serialized
