"""The history of a study, series, instance or file: every entry about it, oldest first.

A real UID is pseudonymised with the project key before lookup (the ledger never sees it);
a 64-hex pseudonym is looked up as given; a file is read to find its SOP Instance UID, its
content hash and its path. Entries that refer to a found entry (a new version, a
correction, a derivation) belong to the history too, transitively.

Only the CLI looks a target up as a file (``files=True``, the default). A server passes
``files=False``: a string from a client must never make it read a path of its own, whatever
files happen to sit in its working directory.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from radledger.core.pseudonym import pseudonym
from radledger.dicom.instance import SUBJECT_KEYWORDS
from radledger.errors import InputError, NotRegistered
from radledger.ledger import lookup
from radledger.ledger.files import describe, file_sha256
from radledger.ledger.setup import Workspace

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_ENTRIES = 100_000  # a history longer than this is cut, and says so


def target_keys(target: str, project_key: bytes, *, files: bool = True) -> list[bytes]:
    """The lookup keys for a UID, a pseudonym, or (only if ``files``) a file path. Raises
    InputError for a value that is none of them (never echoing it)."""
    path = Path(target)
    # False, not an error, for a name too long to be a path
    if files and os.path.isfile(target):
        keys = [lookup.key(lookup.PATH, pseudonym(project_key, "FilePath",
                                                  str(path.resolve())))]
        _, digest, _ = file_sha256(path)
        if digest is not None:
            keys.append(lookup.key(lookup.FILE, digest))
        _, instance, _, _ = describe(path, project_key)
        if instance is not None and "instance" in instance.subject:
            keys.append(lookup.key(lookup.SUBJECT_TAGS["instance"], instance.subject["instance"]))
        return keys
    value = target.strip()
    if _HEX64.match(value):
        return [lookup.key(tag, value) for tag in (*lookup.SUBJECT_TAGS.values(),
                                                   lookup.FILE, lookup.PIXEL)]
    try:
        return [lookup.key(lookup.SUBJECT_TAGS[name], pseudonym(project_key, keyword, value))
                for name, keyword in SUBJECT_KEYWORDS.items()]
    except InputError:
        raise InputError("give a Study, Series or SOP Instance UID, a pseudonym (64 hex "
                         "digits) or the path of a file") from None


_FOLLOW_REFS = ("instance.registered", "derivation.recorded")
_PATIENT_KINDS = ("consent.granted", "consent.withdrawn", "erasure.recorded")


def history(space: Workspace, target: str, *, files: bool = True
            ) -> tuple[list[tuple[int, bytes]], bool]:
    """The entries about ``target`` as (index, data), oldest first, and whether the list
    was cut at MAX_ENTRIES. ``target`` is read as a file path only if ``files`` (and such a
    file exists). Raises NotRegistered if there are none.

    From the entries naming the target it follows the chain both ways: entries that refer
    to a found one (new versions, derivations, results, notes, corrections, releases); what
    a found instance or derivation refers to (its protocol, its previous version, a
    derivation's inputs and outputs); and the consent and erasure entries of the patients
    of found instances.
    """
    ledger, side, project_key = space.ledger, space.side, space.project_key
    with side.write():
        lookup.catch_up(ledger.store, side)
    found: dict[int, dict[str, object]] = {}
    patients: set[str] = set()
    keys, pointed = target_keys(target, project_key, files=files), set[int]()
    while (keys or pointed) and len(found) < MAX_ENTRIES:
        new = pointed | {i for hits in side.lookup(keys).values() for i in hits}
        keys, pointed = [], set()
        for index in sorted(new - set(found)):
            entry = _parsed(ledger.store.entry(index))
            found[index] = entry
            kind = entry.get("kind")
            if kind != "protocol.registered":  # its referrers are every acquisition under it
                keys.append(lookup.ref_key(index))
            if kind in _FOLLOW_REFS:
                pointed |= {r for r in _list(entry.get("refs")) if isinstance(r, int)}
            subject = entry.get("subject")
            if kind == "instance.registered" and isinstance(subject, dict) and \
                    isinstance(subject.get("patient"), str):
                patients.add(subject["patient"])
    for patient in sorted(patients):  # consent and erasure: only those, not everything
        wanted = lookup.key(lookup.SUBJECT_TAGS["patient"], patient)
        for index in side.lookup([wanted]).get(wanted, []):
            if index not in found:
                entry = _parsed(ledger.store.entry(index))
                if entry.get("kind") in _PATIENT_KINDS:
                    found[index] = entry
    if not found:
        # not echoed: what was typed may be an identifier
        raise NotRegistered("no entry in this ledger is about that UID, pseudonym or file")
    indices = sorted(found)[:MAX_ENTRIES]
    entries = []
    for index in indices:
        row = ledger.store.entry(index)
        if row is not None:
            entries.append((index, row[1]))
    return entries, len(found) > MAX_ENTRIES


def _parsed(row: tuple[bytes, bytes] | None) -> dict[str, object]:
    entry = json.loads(row[1]) if row else {}
    return entry if isinstance(entry, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
