"""The entry kinds radledger knows, and what their bodies must hold (DESIGN section 3).

Each built-in kind names its required and optional body fields with a type check; other
fields are refused so a typo cannot pass silently. Kinds beginning with ``x-`` (for example
``x-lab.qc-check``) are a lab's own and take any JSON object.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping

from radledger.core.jcs import JSONValue
from radledger.errors import EntryError

Check = Callable[[JSONValue], bool]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEY_NAME = re.compile(r"^[^\s+]{1,200}$")
_ACTOR = re.compile(r"^[^\s+]{1,200}\+[0-9a-f]{8}$")
_LAB_KIND = re.compile(r"^x-[a-z0-9][a-z0-9.\-_]{0,62}$")


MAX_TEXT = 4096
PUBLIC_KEY_SIZE = 32


def _text(v: JSONValue) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_TEXT


def _sha256_hex(v: JSONValue) -> bool:
    return isinstance(v, str) and bool(_HEX64.match(v))


def _index(v: JSONValue) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _obj(v: JSONValue) -> bool:
    return isinstance(v, dict)


def _list(v: JSONValue) -> bool:
    return isinstance(v, list)


def _public_key(v: JSONValue) -> bool:
    if not isinstance(v, str):
        return False
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == PUBLIC_KEY_SIZE and base64.b64encode(raw).decode("ascii") == v


def _one_of(*values: str) -> Check:
    def check(v: JSONValue) -> bool:
        return v in values

    return check


def _matches(pattern: re.Pattern[str]) -> Check:
    def check(v: JSONValue) -> bool:
        return isinstance(v, str) and bool(pattern.match(v))

    return check


KEY_ROLES = ("ledger", "actor", "service")
# image attributes an instance.registered entry may carry in clear: geometry and encoding only,
# nothing that identifies a patient, a visit, a device or a place (DESIGN section 4)
CLEAR_ATTRIBUTES = {
    "Rows": int, "Columns": int, "NumberOfFrames": int, "SamplesPerPixel": int,
    "BitsAllocated": int, "BitsStored": int, "PixelRepresentation": int,
    "PhotometricInterpretation": str,
}
_CODE_STRING = re.compile(r"^[A-Z0-9_ ]{1,16}$")


def clear_attribute_ok(name: str, value: JSONValue) -> bool:
    """True if ``name`` is an allowlisted attribute and ``value`` a well-formed value of it
    (a non-negative integer, or a DICOM code string)."""
    want = CLEAR_ATTRIBUTES.get(name)
    if want is int:
        return _index(value)
    return want is str and isinstance(value, str) and bool(_CODE_STRING.match(value))


def _clear_attributes(v: JSONValue) -> bool:
    return isinstance(v, dict) and all(clear_attribute_ok(k, x) for k, x in v.items())

OPERATIONS = ("deidentify", "convert", "segment", "annotate", "analyse", "register", "infer")

# kind -> (required fields, optional fields); each field -> (check, what it must be)
Fields = Mapping[str, tuple[Check, str]]
KINDS: dict[str, tuple[Fields, Fields]] = {
    "key.registered": (
        {
            "name": (_matches(_KEY_NAME), "a key name without spaces or '+'"),
            "public_key": (_public_key, "base64 of a 32-byte Ed25519 public key"),
            "role": (_one_of(*KEY_ROLES), f"one of {', '.join(KEY_ROLES)}"),
        },
        {"comment": (_text, "text")},
    ),
    "key.revoked": (
        {"key": (_matches(_ACTOR), "the revoked key as name+keyid"),
         "reason": (_text, "text")},
        {},
    ),
    "protocol.registered": (
        {"name": (_text, "text"), "document_sha256": (_sha256_hex, "hex SHA-256")},
        {"modality": (_text, "text"), "parameters": (_obj, "an object"),
         "version": (_text, "text")},
    ),
    "instance.registered": (
        {"file_sha256": (_sha256_hex, "hex SHA-256"), "pixel_sha256": (_sha256_hex, "hex SHA-256"),
         "meta_sha256": (_sha256_hex, "hex SHA-256")},
        {"pixel_hash_kind": (_one_of("decoded", "raw"), "decoded or raw"),
         "sop_class_uid": (_text, "text"), "modality": (_text, "text"),
         "transfer_syntax_uid": (_text, "text"), "source": (_obj, "an object"),
         "flags": (_list, "a list"), "size": (_index, "a byte count"),
         "attributes": (_clear_attributes,
                        f"an object of allowlisted attributes ({', '.join(CLEAR_ATTRIBUTES)})")},
    ),
    "derivation.recorded": (
        {"operation": (_one_of(*OPERATIONS), f"one of {', '.join(OPERATIONS)}"),
         "inputs": (_list, "a list"), "outputs": (_list, "a list"),
         "tool": (_text, "text"), "tool_version": (_text, "text")},
        {"recipe_sha256": (_sha256_hex, "hex SHA-256"), "profile": (_text, "text"),
         "options": (_list, "a list"), "parameters": (_obj, "an object")},
    ),
    "note.added": (
        {"commitment": (_sha256_hex, "hex SHA-256 commitment")},
        {"about": (_list, "a list")},
    ),
    "result.recorded": (
        {"file_sha256": (_sha256_hex, "hex SHA-256")},
        {"metrics": (_obj, "an object"), "derivations": (_list, "a list"),
         "name": (_text, "text")},
    ),
    "dataset.released": (
        {"name": (_text, "text"), "version": (_text, "text"),
         "manifest_root": (_sha256_hex, "hex SHA-256"), "members": (_list, "a list")},
        {"consent": (_obj, "an object"), "description": (_text, "text")},
    ),
    "consent.granted": (
        {"scope": (_text, "text")},
        {"evidence_commitment": (_sha256_hex, "hex SHA-256 commitment")},
    ),
    "consent.withdrawn": (
        {"scope": (_text, "text")},
        {"evidence_commitment": (_sha256_hex, "hex SHA-256 commitment")},
    ),
    "access.recorded": (
        {"action": (_text, "text"), "target": (_text, "text")},
        {"via": (_text, "text"), "on_behalf_of": (_text, "text")},
    ),
    "erasure.recorded": (
        {"commitments": (_list, "a list"), "requested_by": (_text, "text")},
        {"reason": (_text, "text")},
    ),
    "correction.recorded": (
        {"supersedes": (_index, "the index of the entry it supersedes"),
         "reason": (_text, "text")},
        {"body": (_obj, "an object")},
    ),
}


def is_lab_kind(kind: str) -> bool:
    """True for a lab's own kinds, ``x-`` followed by a lowercase name."""
    return bool(_LAB_KIND.match(kind))


def validate_body(kind: str, body: dict[str, JSONValue]) -> None:
    """Check a body against its kind. Raises EntryError naming the kind and field."""
    if is_lab_kind(kind):
        return
    spec = KINDS.get(kind)
    if spec is None:
        raise EntryError(
            f"unknown kind {kind!r:.80}; built-in kinds are {', '.join(sorted(KINDS))}, "
            "and a lab's own kinds start with 'x-' (e.g. x-lab.qc-check)"
        )
    required, optional = spec
    for name in required:
        if name not in body:
            raise EntryError(f"{kind} body is missing {name!r}")
    for name, value in body.items():
        rule = required.get(name) or optional.get(name)
        if rule is None:
            allowed = sorted([*required, *optional])
            raise EntryError(f"{kind} body has unexpected field {name!r:.60}; allowed: {allowed}")
        check, what = rule
        if not check(value):
            raise EntryError(f"{kind} body field {name!r} must be {what}")
