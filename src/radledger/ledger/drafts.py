"""Drafts: what a caller wants recorded, before it is signed."""

from __future__ import annotations

from dataclasses import dataclass, field

from radledger.core.jcs import JSONValue


@dataclass(frozen=True)
class Draft:
    """An entry not yet signed: what a caller wants to record."""

    kind: str
    body: dict[str, JSONValue]
    subject: dict[str, str] = field(default_factory=dict)
    refs: tuple[int | str, ...] = ()
