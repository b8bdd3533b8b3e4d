"""Plain-language lines for entries: what the timeline, dashboard and entry pages say.

Only wording: every fact shown comes from the entry's own fields, nothing is inferred
beyond what the kind's body holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from radledger.ledger.release import BURNED_IN, DEIDENTIFIED_SOURCES

STAGES = {
    "protocol.registered": "protocol",
    "instance.registered": "acquisition",
    "derivation.recorded": "derivation",
    "note.added": "note",
    "result.recorded": "result",
    "dataset.released": "release",
    "consent.granted": "consent",
    "consent.withdrawn": "consent",
    "access.recorded": "access",
    "erasure.recorded": "erasure",
    "correction.recorded": "correction",
    "key.registered": "key",
    "key.revoked": "key",
}


@dataclass(frozen=True)
class Described:
    """One entry as a page lists it."""

    index: int
    kind: str
    stage: str  # a CSS class and a legend word
    summary: str
    actor: str
    claimed_time: str


def parse(data: bytes) -> dict[str, Any]:
    """An entry's JSON object (stored entries were validated when appended)."""
    entry = json.loads(data)
    return entry if isinstance(entry, dict) else {}


def obj(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def seq(value: object) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def _body(entry: dict[str, Any]) -> dict[str, Any]:
    return obj(entry.get("body"))


def is_deidentified(entry: dict[str, Any]) -> bool:
    """An instance registered by ``deidentify`` (a de-identified copy), as releases decide."""
    source = _body(entry).get("source")
    return entry.get("kind") == "instance.registered" and isinstance(source, dict) \
        and source.get("type") in DEIDENTIFIED_SOURCES


def may_preview(entry: dict[str, Any]) -> bool:
    """Whether the web UI may draw the image: a de-identified copy not held for burned-in
    annotation review (whose pixels may show a name)."""
    flags = _body(entry).get("flags")
    return is_deidentified(entry) and not (isinstance(flags, list) and BURNED_IN in flags)


def stage(entry: dict[str, Any]) -> str:
    """The research stage of an entry: a de-identified copy is "deidentified"."""
    if is_deidentified(entry):
        return "deidentified"
    kind = str(entry.get("kind", ""))
    return STAGES.get(kind, "other")


def _count(value: object, one: str) -> str:
    n = len(seq(value))
    return f"{n} {one}{'' if n == 1 else 's'}"


def summary(entry: dict[str, Any]) -> str:
    """One line saying what the entry records."""
    kind, body = str(entry.get("kind", "")), _body(entry)
    text = _SUMMARIES.get(kind)
    return text(body) if text else kind


def _instance(body: dict[str, Any]) -> str:
    source = obj(body.get("source"))
    where = {"deidentify": "de-identified copy", "folder": "acquired (folder)",
             "scp": "acquired (DICOM C-STORE)", "orthanc": "acquired (Orthanc)",
             "derivation": "derived image"}.get(str(source.get("type")), "registered")
    flags = body.get("flags") or []
    extra = f"; flags: {', '.join(map(str, flags))}" if flags else ""
    return f"{body.get('modality') or 'DICOM'} instance, {where}{extra}"


def _derivation(body: dict[str, Any]) -> str:
    tool_text = f" by {body['tool']} {body.get('tool_version', '')}".rstrip() \
        if body.get("tool") else ""
    if body.get("profile"):
        tool_text += f", {body['profile']} profile"
    return (f"{str(body.get('operation', 'derivation')).capitalize()}{tool_text}: "
            f"{_count(body.get('inputs'), 'input')} → {_count(body.get('outputs'), 'output')}")


def _release(body: dict[str, Any]) -> str:
    return (f"Release {body.get('name')} version {body.get('version')}: "
            f"{_count(body.get('members'), 'member')}")


def _access(body: dict[str, Any]) -> str:
    who = f" for {body['on_behalf_of']}" if body.get("on_behalf_of") else ""
    via = f" via {body['via']}" if body.get("via") else ""
    return f"Access: {body.get('action')} {body.get('target')}{via}{who}"


def _result(body: dict[str, Any]) -> str:
    metrics = obj(body.get("metrics"))
    shown = ", ".join(f"{k}={v}" for k, v in list(metrics.items())[:4])
    return f"Result {body.get('name') or ''}".rstrip() + (f": {shown}" if shown else "")


_SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "protocol.registered": lambda b: f"Protocol {b.get('name')}"
                                     + (f" ({b['modality']})" if b.get("modality") else ""),
    "instance.registered": _instance,
    "derivation.recorded": _derivation,
    "note.added": lambda b: "Research note (its text is kept aside, erasable)",
    "result.recorded": _result,
    "dataset.released": _release,
    "consent.granted": lambda b: f"Consent granted for scope {b.get('scope')}",
    "consent.withdrawn": lambda b: f"Consent withdrawn for scope {b.get('scope')}",
    "access.recorded": _access,
    "erasure.recorded": lambda b: f"Erasure: {_count(b.get('commitments'), 'commitment')} "
                                  f"made unopenable, requested by {b.get('requested_by')}",
    "correction.recorded": lambda b: f"Correction of entry {b.get('supersedes')}: "
                                     f"{b.get('reason')}",
    "key.registered": lambda b: f"Key registered: {b.get('name')} ({b.get('role')})",
    "key.revoked": lambda b: f"Key revoked: {b.get('key')}",
}


def describe(index: int, entry: dict[str, Any]) -> Described:
    """The entry at ``index`` as a list item."""
    return Described(index, str(entry.get("kind", "")), stage(entry), summary(entry),
                     str(entry.get("actor", "")), str(entry.get("claimed_time", "")))
