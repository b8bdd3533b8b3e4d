"""The values de-identification writes: dummies valid for each VR, consistent replacement UIDs,
and the per-patient date shift (PS3.15 E.3.6, Modified Dates).

Replacement UIDs are ``2.25.<decimal>`` (PS3.5 B.2) of the first 128 bits of
HMAC-SHA256(project key, "UID" || 0x00 || uid): the same UID becomes the same UID in every
file of a project, so references between instances survive, and nobody without the key can
map them back. The date shift is a whole number of days in [-3650, -365] from
HMAC-SHA256(project key, "DateShift" || 0x00 || PatientID): every date of one patient moves by
the same amount, so intervals are kept; times of day do not change.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re

from pydicom.dataset import Dataset

from radledger.errors import InputError

KEY_SIZE = 32
DUMMY_TEXT = "ANONYMIZED"  # D: "a non-zero length dummy value consistent with the VR"
CLEANED_TEXT = "CLEANED"  # C on free text: radledger has no text scrubber, so it replaces
SHIFT_DAYS = (-3650, -365)
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NUMBER_VRS = frozenset({"FL", "FD", "SL", "SS", "SV", "UL", "US", "UV"})
_DUMMY: dict[str, object] = {
    "AS": "000Y", "DA": "19000101", "DS": "0", "DT": "19000101000000", "IS": "0",
    "TM": "000000", "UR": "urn:uuid:00000000-0000-0000-0000-000000000000", "AT": 0,
}
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?([0-9.]*)([+-]\d{4})?")
_DA = re.compile(r"\d{8}")


def check_key(project_key: bytes) -> None:
    """Raises InputError unless ``project_key`` is a 32-byte project key."""
    if len(project_key) != KEY_SIZE:
        raise InputError(f"project key must be {KEY_SIZE} bytes, got {len(project_key)}")


def is_text(vr: str) -> bool:
    return vr in _TEXT_VRS


def dummy_value(vr: str) -> object:
    """A non-empty value valid for ``vr`` that says nothing (not for UI or SQ: see callers).
    An unknown VR gets binary zeros."""
    if vr in _TEXT_VRS:
        return DUMMY_TEXT
    if vr in _NUMBER_VRS:
        return 0.0 if vr in {"FL", "FD"} else 0
    if vr == "SQ":
        return [Dataset()]  # one empty item: non-zero length, nothing in it
    if vr in _DUMMY:
        return _DUMMY[vr]
    return bytes(8)  # a multiple of every binary VR's unit size


def empty_value(vr: str) -> object:
    """The zero-length value for ``vr``."""
    if vr == "SQ":
        return []
    if vr in _BINARY_VRS:
        return b""
    return None if vr in _NUMBER_VRS or vr == "AT" else ""


def replacement_uid(project_key: bytes, uid: str) -> str:
    """The project's replacement for ``uid`` (trailing NUL/space padding ignored)."""
    message = b"UID\0" + uid.rstrip("\0 ").encode("ascii", "replace")
    digest = hmac.new(project_key, message, hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def date_shift_days(project_key: bytes, patient_id: str) -> int:
    """The whole-day offset, in SHIFT_DAYS, for every date of the patient ``patient_id``."""
    digest = hmac.new(project_key, b"DateShift\0" + patient_id.encode("utf-8"),
                      hashlib.sha256).digest()
    low, high = SHIFT_DAYS
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def shift_date(value: str, days: int) -> str:
    """A DA value (YYYYMMDD) moved by ``days``; "" if it is not a date that can move."""
    text = value.strip()
    if not _DA.fullmatch(text):
        return ""
    moved = _move(int(text[:4]), int(text[4:6]), int(text[6:]), days)
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}" if moved else ""


def shift_datetime(value: str, days: int) -> str:
    """A DT value moved by ``days`` at its own precision (YYYY, YYYYMM or YYYYMMDD, then the
    time and UTC offset unchanged); "" if it is not a date-time that can move."""
    found = _DT.fullmatch(value.strip())
    if not found:
        return ""
    year, month, day, rest, zone = found.groups()
    if day is None and rest:
        return ""  # a time without a full date: malformed
    moved = _move(int(year), int(month or 1), int(day or 1), days)
    if moved is None:
        return ""
    date = f"{moved.year:04d}"
    if month is not None:
        date += f"{moved.month:02d}"
    if day is not None:
        date += f"{moved.day:02d}"
    return date + rest + (zone or "")


def _move(year: int, month: int, day: int, days: int) -> datetime.date | None:
    try:
        moved = datetime.date(year, month, day) + datetime.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return moved if moved.year >= 1 else None
