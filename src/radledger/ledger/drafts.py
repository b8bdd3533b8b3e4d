"""Drafts: what a caller wants recorded, before it is signed."""

from __future__ import annotations

from dataclasses import dataclass, field

from radledger.core import jcs
from radledger.core.entry import Statement, validate_statement
from radledger.core.jcs import JSONValue
from radledger.errors import InputError

_LINE_FIELDS = frozenset({"kind", "body", "subject", "refs"})
# validation of a draft's own fields needs a well-formed actor and time; the real ones are
# set when it is signed
_PLACEHOLDER_ACTOR = "draft+00000000"
_PLACEHOLDER_TIME = "2000-01-01T00:00:00Z"


@dataclass(frozen=True)
class Draft:
    """An entry not yet signed: what a caller wants to record."""

    kind: str
    body: dict[str, JSONValue]
    subject: dict[str, str] = field(default_factory=dict)
    refs: tuple[int | str, ...] = ()


def draft_from_json(value: jcs.JSONValue, where: str) -> Draft:
    """Build and validate a Draft from ``{"kind", "body", "subject"?, "refs"?}`` as
    ``jcs.loads`` parsed it (so already canonicalizable), so that a bad request is refused
    before anything is signed or written.

    Raises InputError (or its EntryError / CanonicalJSONError subclasses) naming ``where``.
    """
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object with kind and body")
    unknown = sorted(set(value) - _LINE_FIELDS)
    if unknown:
        raise InputError(f"{where}: unexpected field(s) {unknown}; allowed: "
                         f"{sorted(_LINE_FIELDS)}")
    kind, body = value.get("kind"), value.get("body")
    subject, refs = value.get("subject", {}), value.get("refs", [])
    if not isinstance(kind, str):
        raise InputError(f"{where}: 'kind' must be a string")
    if not isinstance(body, dict):
        raise InputError(f"{where}: 'body' must be a JSON object")
    if not isinstance(subject, dict) or not all(isinstance(v, str) for v in subject.values()):
        raise InputError(f"{where}: 'subject' must be an object of strings")
    if not isinstance(refs, list) or not all(isinstance(r, int | str) for r in refs):
        raise InputError(f"{where}: 'refs' must be a list of indices or leaf hashes")
    draft = Draft(kind, body, {str(k): str(v) for k, v in subject.items()},
                  tuple(r for r in refs if isinstance(r, int | str)))
    try:
        validate_statement(Statement(kind, _PLACEHOLDER_ACTOR, _PLACEHOLDER_TIME,
                                     draft.subject, body, draft.refs))
    except InputError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return draft
