"""Derivations (DESIGN section 3): inputs -> outputs through an operation, with the tool,
its version and a hash of its parameters (the recipe).

Outputs are fingerprinted like ingested files: a DICOM output is registered
(``instance.registered``, source ``derivation``, or ``deidentify`` for a de-identification,
whichever tool did it), any other file (a NIfTI mask, a CSV) is
recorded by its SHA-256 and size. The ``derivation.recorded`` entry refers to its inputs and
to its registered outputs, so the history of either side reaches it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from radledger.core.jcs import JSONValue
from radledger.core.kinds import OPERATIONS
from radledger.core.note import Signer
from radledger.core.pseudonym import pseudonym
from radledger.errors import EntryError, InputError, NotRegistered
from radledger.ledger import lookup
from radledger.ledger.drafts import Draft
from radledger.ledger.files import file_sha256
from radledger.ledger.ingest import FileOutcome, Ingester, ingest
from radledger.ledger.service import Receipt
from radledger.ledger.setup import Workspace

_UID_TAGS = {"StudyInstanceUID": "study", "SeriesInstanceUID": "series",
             "SOPInstanceUID": "instance"}


@dataclass(frozen=True)
class Derivation:
    """What was done: operation, tool and version, and its recipe."""

    operation: str
    tool: str
    tool_version: str
    recipe: bytes | None = None  # the parameters file; only its SHA-256 is recorded
    parameters: dict[str, JSONValue] | None = None  # non-identifying, in clear
    profile: str | None = None
    options: tuple[str, ...] = ()


def resolve_inputs(space: Workspace, targets: list[str], *, files: bool = True) -> list[int]:
    """Entry indices for ``--input`` values: an index; a registered file (by its bytes, only
    if ``files``: a server passes False so that no client value is ever read as one of its
    paths); or a real Study/Series/SOP Instance UID (every registration of its instances).

    Raises NotRegistered or InputError (naming an index or a file, never a UID).
    """
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    size = space.ledger.store.entry_count()
    found: list[int] = []
    for target in targets:
        if target.isdigit():
            if int(target) >= size:
                raise InputError(f"--input {target}: no such entry (ledger size {size})")
            found.append(int(target))
        elif files and os.path.isfile(target):
            found.append(_registered_file(space, Path(target)))
        else:
            found.extend(_registered_uid(space, target.strip()))
    return sorted(set(found))


def _registered_file(space: Workspace, path: Path) -> int:
    _, digest, error = file_sha256(path)
    if digest is None:
        raise InputError(error or f"{path}: cannot read")
    wanted = lookup.key(lookup.FILE, digest)
    hits = space.side.lookup([wanted]).get(wanted)
    if not hits:
        raise NotRegistered(f"{path} is not registered (ingest it first)")
    return hits[-1]


def _registered_uid(space: Workspace, uid: str) -> list[int]:
    for keyword, name in _UID_TAGS.items():
        try:
            wanted = lookup.key(lookup.SUBJECT_TAGS[name],
                                pseudonym(space.project_key, keyword, uid))
        except InputError:
            break
        hits = space.side.lookup([wanted]).get(wanted, [])
        instances = [i for i in hits if _kind(space, i) == "instance.registered"]
        if instances:
            return instances
    raise NotRegistered("no registered study, series or instance has that UID")


def _kind(space: Workspace, index: int) -> str | None:
    row = space.ledger.store.entry(index)
    return json.loads(row[1]).get("kind") if row else None


def record_derivation(space: Workspace, signer: Signer, derivation: Derivation,
                      inputs: list[int], outputs: list[Path]) -> tuple[Receipt, list[JSONValue]]:
    """Register the outputs, then append ``derivation.recorded``; returns its receipt and
    the outputs as recorded. Raises InputError if there are no inputs or outputs."""
    if not inputs or not outputs:
        raise InputError("a derivation needs at least one input and one output")
    if derivation.operation not in OPERATIONS:
        raise EntryError(f"unknown operation {derivation.operation!r:.40}; one of "
                         f"{', '.join(OPERATIONS)}")
    registered: dict[str, FileOutcome] = {}
    # a de-identification's outputs are de-identified instances, whichever tool made them
    source = "deidentify" if derivation.operation == "deidentify" else "derivation"
    dicom = Ingester(space, signer, source=source)
    ingest(dicom, outputs, 1, lambda outcome, _size: registered.__setitem__(outcome.path,
                                                                              outcome))
    recorded: list[JSONValue] = []
    refs = list(inputs)
    for path in outputs:
        outcome = registered.get(os.path.abspath(path))
        if outcome is not None and outcome.index is not None:
            recorded.append({"index": outcome.index})
            refs.append(outcome.index)
            continue
        _, digest, error = file_sha256(Path(path))
        if digest is None:
            raise InputError(error or f"{path}: cannot read")
        recorded.append({"file_sha256": digest, "size": os.path.getsize(path)})
    body: dict[str, JSONValue] = {
        "operation": derivation.operation, "inputs": list(inputs), "outputs": recorded,
        "tool": derivation.tool, "tool_version": derivation.tool_version}
    if derivation.recipe is not None:
        body["recipe_sha256"] = hashlib.sha256(derivation.recipe).hexdigest()
    if derivation.parameters:
        body["parameters"] = dict(derivation.parameters)
    if derivation.profile:
        body["profile"] = derivation.profile
    if derivation.options:
        body["options"] = list(derivation.options)
    (receipt,) = space.ledger.append_drafts(
        [Draft("derivation.recorded", body, {}, tuple(sorted(set(refs))))], signer)
    return receipt, recorded
