"""Provenance exports (issue 4): what the PROV and FHIR views share.

An export is a pure function of a ledger's origin and some of its entries, given as
``(index, entry)`` pairs, ``entry`` being the parsed canonical JSON of the entry (``v``,
``kind``, ``actor``, ``claimed_time``, ``subject``, ``body``, ``refs``, ``sig``): no storage,
no clock. ``parse_rows`` turns a history (``history.history``) into such pairs,
``ledger_entries`` reads a whole ledger. The views are in ``export_prov`` (W3C PROV) and
``export_fhir`` (FHIR R4 Provenance and AuditEvent).

Nothing leaves that the entries do not hold in clear: hashes, commitments, pseudonyms,
allowlisted image attributes and codes. Left out on purpose: signatures (the leaf hash binds
an exported entry to the ledger's proofs), an instance's ``source.path_key`` (a keyed
pseudonym of a local path, useful to no one outside) and the bodies of a lab's own ``x-``
kinds (free JSON nobody checked).

Every exported entry is named ``entry/<index>`` in the ledger's namespace
``urn:radledger:<origin>``; a signing key ``actor/<name+keyid>``; a file known only by its
hash ``file/<sha256>``; a patient ``patient/<pseudonym>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import cast
from urllib.parse import quote

from radledger.core import jcs, merkle
from radledger.errors import CanonicalJSONError, InputError
from radledger.storage.base import LedgerStore

Entry = Mapping[str, object]
TERMS_URI = "urn:radledger:terms:"  # radledger's own vocabulary: kinds, operations, attributes
EntryPair = tuple[int, Entry]

# entries that record something done (PROV activities); every other kind records a thing
ACTIVITY_KINDS = frozenset({"derivation.recorded", "access.recorded", "erasure.recorded"})
# what an access.recorded target names when it is an entry: "<kind>/<index>"
_ENTRY_TARGET = re.compile(r"^[a-z][a-z0-9.\-_]*/(\d{1,18})$")
_CHUNK = 5000


def ledger_uri(origin: str) -> str:
    """The URI naming a ledger: ``urn:radledger:`` and the origin, percent-encoded where it
    holds characters a URI may not (an origin is any line of text)."""
    return "urn:radledger:" + quote(origin, safe="/:@.-_~!$&'()*+,;=")


def parse_rows(rows: Iterable[tuple[int, bytes]]) -> list[EntryPair]:
    """``(index, data)`` rows, as ``history`` returns them, parsed for export.

    Raises InputError naming the index of a row that is not a JSON object.
    """
    parsed: list[EntryPair] = []
    for index, data in rows:
        try:
            entry = json.loads(data)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            raise InputError(f"entry {index} is not a JSON object")
        parsed.append((index, entry))
    return parsed


def ledger_entries(store: LedgerStore, start: int = 0, end: int | None = None
                   ) -> list[EntryPair]:
    """Every entry with ``start <= index < end`` (``end`` defaults to the ledger size)."""
    stop = store.entry_count() if end is None else min(end, store.entry_count())
    pairs: list[EntryPair] = []
    for first in range(start, stop, _CHUNK):
        rows = store.entries(first, min(first + _CHUNK, stop))
        pairs.extend(parse_rows((index, data) for index, _, _, data in rows))
    return pairs


def leaf_hash(entry: Entry) -> str | None:
    """The RFC 6962 leaf hash (hex) of the entry's canonical bytes, which is the hash the
    ledger's inclusion proofs are about; None if the mapping cannot be canonicalized."""
    try:
        return merkle.leaf_hash(jcs.canonicalize(cast(jcs.JSONValue, dict(entry)))).hex()
    except CanonicalJSONError:
        return None


def kind_of(entry: Entry) -> str:
    kind = entry.get("kind")
    return kind if isinstance(kind, str) else ""


def body_of(entry: Entry) -> Mapping[str, object]:
    body = entry.get("body")
    return cast(Mapping[str, object], body) if isinstance(body, dict) else {}


def subject_of(entry: Entry) -> dict[str, str]:
    subject = entry.get("subject")
    if not isinstance(subject, dict):
        return {}
    return {k: v for k, v in subject.items() if isinstance(k, str) and isinstance(v, str)}


def text(value: object) -> str | None:
    """``value`` if it is a non-empty string."""
    return value if isinstance(value, str) and value else None


def index_list(value: object) -> list[int]:
    """The entry indices in a JSON list (anything else in it is skipped)."""
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool) and v >= 0]


def entry_target(target: str) -> int | None:
    """The index an ``access.recorded`` target names (``note.added/12`` -> 12), if any."""
    match = _ENTRY_TARGET.match(target)
    return int(match.group(1)) if match else None


def note_commitments(entries: Sequence[EntryPair]) -> dict[str, int]:
    """{commitment: index} of the notes among ``entries``: a note is its commitment, so an
    erasure that destroys the opening ends the note. (Consent evidence is not the consent
    decision: destroying its opening leaves the decision standing.)"""
    held: dict[str, int] = {}
    for index, entry in entries:
        commitment = text(body_of(entry).get("commitment"))
        if kind_of(entry) == "note.added" and commitment is not None:
            held[commitment] = index
    return held


def canonical_text(value: object) -> str:
    """A JSON value (parameters, metrics, a corrected body) as one RFC 8785 string, so that a
    view keeps it exact without mapping its free-form keys."""
    try:
        return jcs.canonicalize(cast(jcs.JSONValue, value)).decode("utf-8")
    except CanonicalJSONError:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
