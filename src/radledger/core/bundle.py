"""Reviewer bundles (DESIGN section 6), format ``radledger-bundle/v1``, and their offline
verification. Pure: standard library and ``cryptography``; the file system reaches it only
through the ``check_file`` callback.

A bundle is one RFC 8259 JSON object::

    {"format": "radledger-bundle/v1", "origin", "ledger_vkey", "checkpoint", "release",
     "entries": [{"index", "entry", "proof"}], "files": [{"name", "index", "file_sha256"}],
     "witnesses": [], "anchors": []}

``entry`` is an entry's canonical bytes as text; ``proof`` its C2SP tlog-proof against
``checkpoint``, the ledger's signed checkpoint (with any cosignatures). Entries are the
release, its members, what they derive from (de-identifications, acquisitions, protocols),
the consent entries that decided it, and every key entry (so signatures can be checked).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from radledger.core import jcs, merkle
from radledger.core.anchor import AnchorReceipt, parse_receipt
from radledger.core.checkpoint import Checkpoint, open_checkpoint
from radledger.core.cosignature import CosignatureVerifier, open_cosignatures, parse_witness_vkey
from radledger.core.entry import Entry
from radledger.core.keys import KEY_KINDS, KeyRing, check_entry
from radledger.core.note import Verifier, parse_vkey
from radledger.core.tlog_proof import parse_tlog_proof
from radledger.errors import BundleError, InputError, RadledgerError

FORMAT = "radledger-bundle/v1"
MAX_BUNDLE_BYTES = 256 << 20
_FIELDS = {"format", "origin", "ledger_vkey", "checkpoint", "release", "entries", "files",
           "witnesses", "anchors"}
_SAFE_NAME = re.compile(r"^(?!/)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9._+\-/]{1,512}$")

# (member file name, its manifest entry) -> None if the file is the one released, else what
# differs ("missing", "file_sha256 differs; pixels changed", ...)
CheckFile = Callable[[str, Mapping[str, jcs.JSONValue]], str | None]


@dataclass
class Report:
    """What was proven (``claims``) and what failed, each naming the part of the bundle."""

    claims: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def ok(self) -> bool:
        """No failure."""
        return not self.failures


def safe_name(name: str) -> bool:
    """A member file name: relative, no ``..`` or ``.`` segments, portable characters."""
    return bool(_SAFE_NAME.match(name)) and "//" not in name


@dataclass(frozen=True)
class BundleEntry:
    """One entry with its proof."""

    index: int
    entry: str
    proof: str


@dataclass(frozen=True)
class BundleFile:
    """One member file: its name under the release folder, its entry, its SHA-256."""

    name: str
    index: int
    file_sha256: str


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle."""

    origin: str
    ledger_vkey: str
    checkpoint: str
    release: int
    entries: tuple[BundleEntry, ...]
    files: tuple[BundleFile, ...]
    witnesses: tuple[str, ...] = ()  # vkeys of the witnesses that cosigned the checkpoint
    anchors: tuple[AnchorReceipt, ...] = ()  # receipts of the checkpoint on public chains

    def to_json(self) -> dict[str, jcs.JSONValue]:
        """The document (``write`` it with ``jcs.canonicalize``)."""
        return {"format": FORMAT, "origin": self.origin, "ledger_vkey": self.ledger_vkey,
                "checkpoint": self.checkpoint, "release": self.release,
                "entries": [{"index": e.index, "entry": e.entry, "proof": e.proof}
                            for e in self.entries],
                "files": [{"name": f.name, "index": f.index, "file_sha256": f.file_sha256}
                          for f in self.files],
                "witnesses": list(self.witnesses),
                "anchors": [dict(a.to_json()) for a in self.anchors]}


def load_bundle(data: bytes) -> Bundle:
    """Parse and shape-check a bundle. Raises BundleError naming what is wrong."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle of {len(data)} bytes is over the {MAX_BUNDLE_BYTES} limit")
    try:
        doc = jcs.loads(data)
    except InputError as exc:
        raise BundleError(f"bundle is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError(f"not a {FORMAT} bundle")
    if set(doc) != _FIELDS:
        raise BundleError(f"bundle fields must be exactly {sorted(_FIELDS)}")
    for name, kind in (("origin", str), ("ledger_vkey", str), ("checkpoint", str),
                       ("release", int), ("entries", list), ("files", list),
                       ("witnesses", list), ("anchors", list)):
        if not isinstance(doc[name], kind):
            raise BundleError(f"bundle field {name!r} has the wrong type")
    entries = [_entry_item(item) for item in doc["entries"]]  # type: ignore[union-attr]
    files = [_file_item(item) for item in doc["files"]]  # type: ignore[union-attr]
    release, witnesses, anchors = doc["release"], doc["witnesses"], doc["anchors"]
    assert isinstance(release, int) and isinstance(witnesses, list)
    assert isinstance(anchors, list)
    if not all(isinstance(w, str) for w in witnesses):
        raise BundleError("witnesses: each must be a witness vkey")
    try:
        receipts = tuple(parse_receipt(a) for a in anchors)
    except InputError as exc:
        raise BundleError(f"anchors: {exc}") from None
    return Bundle(str(doc["origin"]), str(doc["ledger_vkey"]), str(doc["checkpoint"]),
                  release, tuple(entries), tuple(files), tuple(str(w) for w in witnesses),
                  receipts)


def _entry_item(item: jcs.JSONValue) -> BundleEntry:
    if not (isinstance(item, dict) and set(item) == {"index", "entry", "proof"}):
        raise BundleError("entries: each must be {index, entry, proof}")
    index, entry, proof = item["index"], item["entry"], item["proof"]
    if not (isinstance(index, int) and isinstance(entry, str) and isinstance(proof, str)):
        raise BundleError("entries: index must be an integer, entry and proof text")
    return BundleEntry(index, entry, proof)


def _file_item(item: jcs.JSONValue) -> BundleFile:
    if not (isinstance(item, dict) and set(item) == {"name", "index", "file_sha256"}):
        raise BundleError("files: each must be {name, index, file_sha256}")
    name, index, digest = item["name"], item["index"], item["file_sha256"]
    if not (isinstance(name, str) and isinstance(index, int) and isinstance(digest, str)):
        raise BundleError("files: name and file_sha256 must be text, index an integer")
    if not safe_name(name):
        raise BundleError(f"files: unsafe name {name!r:.80} (absolute, '..', or unusual "
                          "characters)")
    return BundleFile(name, index, digest)


def _verify_witnesses(doc: Bundle, pinned: Sequence[CosignatureVerifier],
                      report: Report) -> int:
    """Cosignatures on the checkpoint by the pinned witness keys (or, if none are pinned, by
    the keys the bundle lists, said so); returns how many verified."""
    try:
        verifiers = list(pinned) or [parse_witness_vkey(v) for v in doc.witnesses]
        _, found = open_cosignatures(doc.checkpoint, verifiers)
    except RadledgerError as exc:
        report.failures.append(f"witnesses: {exc}")
        return 0
    names = ", ".join(sorted(c.verifier.name for c in found)) or "none"
    trust = "pinned" if pinned else "listed in the bundle (not pinned)"
    report.claims.append(f"{len(found)} witness(es) cosigned the checkpoint ({trust}): {names}")
    return len(found)


@dataclass
class _Verified:
    checkpoint: Checkpoint
    entries: dict[int, Entry]


def verify_bundle(doc: Bundle, trusted: Verifier | None = None,
                  check_file: CheckFile | None = None, quorum: int = 0,
                  witnesses: Sequence[CosignatureVerifier] = ()) -> Report:
    """Check a bundle (as ``load_bundle`` returned it): checkpoint, every inclusion proof and
    signature, the release's manifest, the chain from each member back to its acquisition,
    consent at release, member files (through ``check_file``), and the witness quorum."""
    report = Report()
    verified = _verify_log(doc, trusted, report)
    if verified is None:
        report.summary = "NOT VERIFIED: " + report.failures[0]
        return report
    _verify_release(doc, verified, report, check_file)
    cosigners = _verify_witnesses(doc, witnesses, report)
    if quorum > cosigners:
        report.failures.append(f"witnesses: {cosigners} of the {quorum} cosignatures required")
    report.summary += f"; {cosigners} witness(es) cosigned"
    foreign = [a for a in doc.anchors if not a.is_for(verified.checkpoint)]
    if foreign:
        report.failures.append(f"anchors: {len(foreign)} receipt(s) for another checkpoint")
    else:
        report.claims.append(f"anchors: {len(doc.anchors)} receipt(s) for this checkpoint, not "
                             "checked against a chain here")
        report.summary += "".join(f"; anchored in block {a.block_number} of chain "
                                  f"{a.chain_id}" for a in doc.anchors[:3])
    if report.failures:
        report.summary = f"NOT VERIFIED: {len(report.failures)} problem(s); first: " + \
            report.failures[0]
    return report


def _verify_log(doc: Bundle, trusted: Verifier | None, report: Report) -> _Verified | None:
    origin, note = doc.origin, doc.checkpoint
    try:
        given = parse_vkey(doc.ledger_vkey)
        verifier = trusted or given
        if trusted is not None and (given.name, given.public_key) != \
                (trusted.name, trusted.public_key):
            report.failures.append("ledger key: the bundle names another key than the one "
                                   "trusted")
        checkpoint = open_checkpoint(note, verifier, origin=origin)
    except RadledgerError as exc:
        report.failures.append(f"checkpoint: {exc}")
        return None
    trust = "the trusted key" if trusted else "the key the bundle names (not pinned)"
    report.claims.append(f"checkpoint of {origin}, tree size {checkpoint.tree_size}, signed "
                         f"by {trust}")
    keyring, entries = KeyRing(), {}
    items = sorted(doc.entries, key=lambda item: item.index)
    for item in items:
        index, data = item.index, item.entry.encode("utf-8")
        try:
            proof = parse_tlog_proof(item.proof)
            if proof.index != index or proof.checkpoint != note:
                raise InputError("its proof is for another index or checkpoint")
            merkle.verify_inclusion(merkle.leaf_hash(data), index, checkpoint.tree_size,
                                    list(proof.proof), checkpoint.root_hash)
        except RadledgerError as exc:
            report.failures.append(f"entry {index} (inclusion proof): {exc}")
            continue
        try:
            entry = check_entry(keyring, index, data)
            if entry.kind in KEY_KINDS:
                keyring.apply(index, entry)
        except RadledgerError as exc:
            report.failures.append(f"entry {index} (entry or signature): {exc}")
            continue
        entries[index] = entry
    if len(entries) == len(items):
        report.claims.append(f"{len(entries)} entries: every inclusion proof and signature "
                             "verified")
    return _Verified(checkpoint, entries)


def _verify_release(doc: Bundle, v: _Verified, report: Report,
                    check_file: CheckFile | None) -> None:
    release = v.entries.get(doc.release)
    if release is None or release.kind != "dataset.released":
        report.failures.append("release: the bundle's release entry is missing or not a "
                               "release")
        return
    body = release.body
    members = body.get("members")
    listed = members if isinstance(members, list) else []
    root = merkle.root([merkle.leaf_hash(jcs.canonicalize(m)) for m in listed]).hex()
    if root != body.get("manifest_root"):
        report.failures.append(f"manifest: root {root} recomputed from the members is not the "
                               f"release's {body.get('manifest_root')}")
    traced, protocols, patients = 0, set(), set()
    for member in listed:
        if not isinstance(member, dict) or not isinstance(member.get("index"), int):
            report.failures.append("manifest: a member without an index")
            continue
        chain = _trace(v.entries, member, report)
        if chain is not None:
            traced += 1
            protocols |= chain[0]
            if chain[1]:
                patients.add(chain[1])
    name = f"{body.get('name')} {body.get('version')}"
    under = f" under protocol {', '.join(sorted(protocols))}" if protocols else ""
    report.claims.append(f"release {name}: {traced} of {len(listed)} images verified back to "
                         f"acquisition{under}")
    _verify_consent(v, release, patients, report)
    _verify_files(doc, listed, report, check_file)
    report.summary = (f"{traced} of {len(listed)} images verified back to acquisition{under}; "
                      f"consent checked for {len(patients)} patient(s)")


def _trace(entries: dict[int, Entry], member: dict[str, jcs.JSONValue], report: Report
           ) -> tuple[set[str], str | None] | None:
    index = int(member["index"])  # type: ignore[arg-type]
    instance = entries.get(index)
    if instance is None or instance.kind != "instance.registered":
        report.failures.append(f"entry {index} (member): missing or not an instance")
        return None
    for field_name in ("file_sha256", "pixel_sha256", "meta_sha256"):
        if instance.body.get(field_name) != member.get(field_name):
            report.failures.append(f"manifest: member {index} {field_name} differs from its "
                                   "entry")
            return None
    derivation = next((e for e in entries.values() if e.kind == "derivation.recorded"
                       and {"index": index} in (e.body.get("outputs") or [])), None)  # type: ignore[operator]
    if derivation is None:
        report.failures.append(f"entry {index} (lineage): no derivation in the bundle made it")
        return None
    inputs = [entries.get(i) for i in derivation.body.get("inputs") or []  # type: ignore[union-attr]
              if isinstance(i, int)]
    source = next((e for e in inputs if e is not None and e.kind == "instance.registered"),
                  None)
    if source is None:
        report.failures.append(f"entry {index} (lineage): its acquisition is not in the bundle")
        return None
    changed = (derivation.body.get("parameters") or {}).get("pixels_changed")  # type: ignore[union-attr]
    if not changed and source.body.get("pixel_sha256") != instance.body.get("pixel_sha256"):
        report.failures.append(f"entry {index} (lineage): pixels differ from the acquisition's "
                               "though no pixel cleaning is recorded")
        return None
    protocols = {str(entries[r].body.get("name")) for r in source.refs
                 if isinstance(r, int) and r in entries
                 and entries[r].kind == "protocol.registered"}
    return protocols, source.subject.get("patient")


def _verify_consent(v: _Verified, release: Entry, patients: set[str], report: Report) -> None:
    consent = release.body.get("consent")
    scope = consent.get("scope") if isinstance(consent, dict) else None
    release_index = next(i for i, e in v.entries.items() if e is release)
    held = 0
    for patient in sorted(patients):
        decisions = sorted((i, e.kind) for i, e in v.entries.items()
                           if i < release_index and e.subject.get("patient") == patient
                           and e.kind in ("consent.granted", "consent.withdrawn")
                           and e.body.get("scope") == scope)
        if decisions and decisions[-1][1] == "consent.granted":
            held += 1
        else:
            report.failures.append(f"consent: no consent in force at release for patient "
                                   f"{patient[:12]}... in scope {scope!r}")
    if held == len(patients):
        report.claims.append(f"consent in force at release (scope {scope!r}) for all {held} "
                             "patient(s) of the members")


def _verify_files(doc: Bundle, members: list[jcs.JSONValue], report: Report,
                  check_file: CheckFile | None) -> None:
    by_index = {m["index"]: m for m in members if isinstance(m, dict)}
    bad = 0
    for item in doc.files:
        member = by_index.get(item.index)
        if member is None or member.get("file_sha256") != item.file_sha256:
            report.failures.append(f"files: {item.name} does not match a member's file_sha256")
            bad += 1
            continue
        if check_file is not None:
            problem = check_file(item.name, member)
            if problem is not None:
                report.failures.append(f"files: {item.name}: {problem}")
                bad += 1
    checked = "rehashed from --data" if check_file is not None else "listed (not rehashed)"
    report.claims.append(f"{len(doc.files) - bad} of {len(doc.files)} member files {checked}")
