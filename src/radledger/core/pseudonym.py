"""Keyed pseudonyms for identifiers (DESIGN section 1).

A pseudonym is HMAC-SHA256(project key, namespace || 0x00 || identifier), hex. The namespace
(the DICOM keyword: ``PatientID``, ``StudyInstanceUID``, ...; ``FilePath`` for where a file
was found, since folder names often carry patient names) keeps equal strings in different
roles apart; the 0x00 separator keeps (namespace, identifier) pairs unambiguous. The project key
stays outside the database, so someone holding only the ledger cannot test candidate patient
IDs against it.
"""

from __future__ import annotations

import hashlib
import hmac

from radledger.errors import InputError

NAMESPACES = frozenset({"PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                        "FilePath"})
KEY_SIZE = 32
MAX_IDENTIFIER = 4096


def pseudonym(project_key: bytes, namespace: str, identifier: str) -> str:
    """The hex pseudonym of ``identifier`` in ``namespace``.

    Requires a 32-byte key. Raises InputError for an unknown namespace or an empty, oversized
    or NUL-containing identifier.
    """
    if len(project_key) != KEY_SIZE:
        raise InputError(f"project key must be {KEY_SIZE} bytes, got {len(project_key)}")
    if namespace not in NAMESPACES:
        raise InputError(f"unknown pseudonym namespace {namespace!r:.40}; "
                         f"one of {sorted(NAMESPACES)}")
    if not identifier or len(identifier) > MAX_IDENTIFIER or "\0" in identifier:
        raise InputError(f"{namespace} must be 1-{MAX_IDENTIFIER} characters without NUL")
    message = namespace.encode("ascii") + b"\0" + identifier.encode("utf-8")
    return hmac.new(project_key, message, hashlib.sha256).hexdigest()
