"""De-identifying a folder and recording both sides (issue 4).

1. The sources are ingested (idempotent: already registered files add nothing).
2. Each registered source is de-identified by ``radledger.dicom.deidentify`` (PS3.15 Basic
   Profile and the options asked for) into ``DST/<Study>/<Series>/<SOP Instance UID>.dcm``,
   the new UIDs the profile made: no output path is built from anything identifying.
3. The outputs are registered (source ``deidentify``), carrying the sources' pixel hash:
   that is the link a reviewer follows from a released image to the acquired one.
4. One ``derivation.recorded`` per file names the source, the output, the tool and version,
   the profile, the options, their CID 7050 codes and the recipe's hash.

Instances with burned-in annotation are flagged ``burned-in-annotation-review`` in their
registrations; releases refuse them unless told otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from radledger import __version__
from radledger.core.jcs import JSONValue
from radledger.core.note import Signer
from radledger.dicom.deid_profile import SafePrivate
from radledger.dicom.deidentify import Deidentified, deidentify_file
from radledger.errors import InputError
from radledger.ledger import lookup
from radledger.ledger.drafts import Draft
from radledger.ledger.ingest import FileOutcome, Ingester, ingest
from radledger.ledger.setup import Workspace

PROFILE = "basic"


@dataclass(frozen=True)
class DeidOutcome:
    """What happened to one source file."""

    source: str
    status: str  # deidentified | rejected
    output: str | None = None
    source_index: int | None = None
    output_index: int | None = None
    derivation: int | None = None
    flags: tuple[str, ...] = ()
    error: str | None = None


def _output_path(dst: Path, result: Deidentified) -> Path:
    ds = result.dataset
    return dst / str(ds.StudyInstanceUID) / str(ds.SeriesInstanceUID) / \
        f"{ds.SOPInstanceUID}.dcm"


@dataclass(frozen=True)
class DeidJob:
    """De-identify the files under ``src`` into ``dst`` with these profile options."""

    src: Path
    dst: Path
    options: frozenset[str] = frozenset()
    safe_private: frozenset[SafePrivate] = frozenset()  # with retain-safe-private
    # processes fingerprinting the sources (None: one per CPU). A server passes 1: forking
    # a process that serves on many threads copies locks other threads hold
    workers: int | None = None


def deidentify_tree(space: Workspace, signer: Signer, job: DeidJob,
                    on_file: Callable[[DeidOutcome], None]) -> list[DeidOutcome]:
    """De-identify every file under ``job.src`` into ``job.dst`` and record it; returns an
    outcome per source file (also passed to ``on_file``)."""
    src, dst, options = job.src, Path(os.path.abspath(job.dst)), job.options
    if os.path.abspath(dst).startswith(os.path.abspath(src) + os.sep) or \
            os.path.abspath(dst) == os.path.abspath(src):
        raise InputError("the destination must not be the source or inside it")
    sources: list[FileOutcome] = []
    ingest(Ingester(space, signer), [src], job.workers or os.cpu_count() or 1,
           lambda outcome, _size: sources.append(outcome))
    done: list[tuple[str, int, Path, Deidentified]] = []
    outcomes: dict[str, DeidOutcome] = {}
    for source in sources:
        if source.index is None:
            outcomes[source.path] = DeidOutcome(source.path, "rejected", error=source.error)
            continue
        temporary = dst / f".radledger-deid-{os.getpid()}.dcm"
        dst.mkdir(parents=True, exist_ok=True)
        try:
            result = deidentify_file(Path(source.path), temporary, space.project_key, options,
                                     job.safe_private)
        except InputError as exc:
            outcomes[source.path] = DeidOutcome(source.path, "rejected",
                                                source_index=source.index,
                                                error=f"{type(exc).__name__}: {exc}")
            continue
        final = _output_path(dst, result)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, final)
        done.append((source.path, source.index, final, result))
    registered: dict[str, FileOutcome] = {}
    if done:
        ingest(Ingester(space, signer, source="deidentify"), sorted({p for _, _, p, _ in done}),
               1, lambda outcome, _size: registered.__setitem__(outcome.path, outcome))
    drafts, made = [], []
    for _, source_index, output, result in done:
        output_index = registered[str(output)].index
        if output_index is None:
            raise InputError(f"{output}: the de-identified copy could not be registered: "
                             f"{registered[str(output)].error}")
        made.append(output_index)
        if _recorded(space, source_index, output_index) is None:  # not on a re-run
            drafts.append(Draft("derivation.recorded",
                                _body(source_index, output_index, result, job), {},
                                tuple(sorted({source_index, output_index}))))
    space.ledger.append_drafts(drafts, signer)
    for (path, source_index, output, result), output_index in zip(done, made, strict=True):
        outcomes[path] = DeidOutcome(path, "deidentified", str(output), source_index,
                                     output_index, _recorded(space, source_index, output_index),
                                     result.flags)
    ordered = [outcomes[s.path] for s in sources]
    for outcome in ordered:
        on_file(outcome)
    return ordered


def _recorded(space: Workspace, source: int, output: int) -> int | None:
    """The derivation already recording source -> output, if any."""
    with space.side.write():
        lookup.catch_up(space.ledger.store, space.side)
    wanted = lookup.ref_key(output)
    for index in space.side.lookup([wanted]).get(wanted, []):
        row = space.ledger.store.entry(index)
        entry = json.loads(row[1]) if row else {}
        if entry.get("kind") == "derivation.recorded" and \
                source in entry["body"].get("inputs", []):
            return int(index)
    return None


def _body(source: int, output: int, result: Deidentified, job: DeidJob
          ) -> dict[str, JSONValue]:
    parameters: dict[str, JSONValue] = {"method_codes": list(result.method_codes),
                                        "pixels_changed": result.pixels_changed}
    if job.safe_private:
        parameters["safe_private"] = [str(rule) for rule in sorted(job.safe_private)]
    return {
        "operation": "deidentify", "inputs": [source], "outputs": [{"index": output}],
        "tool": "radledger", "tool_version": __version__, "profile": PROFILE,
        "options": list(result.options), "recipe_sha256": result.recipe_sha256,
        "parameters": parameters,
    }
