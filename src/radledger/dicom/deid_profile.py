"""The recipe of a de-identification: which PS3.15 Annex E action applies to each attribute
for the options chosen (PS3.15 E.1.1 and E.3), and the CID 7050 codes that name them.

How the table is read:

- An option's column replaces the Basic Profile action of the rows where it has a code. Two
  chosen options disagree only on device dates (Retain Device Identity says K, Retain
  Longitudinal Temporal Information with Modified Dates says C): C wins, since a calibration
  date kept as is beside shifted dates would reveal the shift.
- A code offering alternatives (Z/D, X/D, X/Z/D, X/Z, X/Z/U*) chooses by the attribute's Type
  in the IOD, which radledger does not look up: it takes the alternative that is valid for
  every Type (D for a Type 1 attribute is valid for Type 2 and 3 too; Z where no D is offered;
  for X/Z/U*, the sequence kept with its UIDs replaced).
- C ("clean") is carried out by what the option cleans. Modified Dates: DA and DT values move
  by the patient's shift, TM and the UTC offset stay (a whole-day shift does not change them).
  Clean Descriptors, and the C cells of Retain Patient Characteristics and Retain Device
  Identity: free text (AE, CS, LO, LT, PN, SH, ST, UC, UT) is replaced by ``CLEANED`` (radledger
  has no text scrubber, and removal would break IODs where the attribute is Type 1 or 2); coded
  sequences are kept and walked. A C that cannot be carried out for the value's VR (a binary
  timestamp) falls back to the Basic Profile action.
- Attributes the table does not name are kept, and sequences among them are walked, since the
  table applies at every nesting level.

Options implemented: retain-uids, retain-device-identity, retain-institution-identity,
retain-patient-characteristics, retain-longitudinal-full-dates,
retain-longitudinal-modified-dates, clean-descriptors, and retain-safe-private with the safe
private attributes named by rules (``SafePrivate``; without it every private attribute is
removed). Refused (InputError): clean-structured-content and clean-graphics (they need a
content-aware cleaner radledger does not have).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from types import MappingProxyType

from radledger.core import jcs
from radledger.dicom import deid_table
from radledger.errors import InputError

# bump when the engine's behaviour changes for the same table and options: it is in the
# recipe hash, so two derivations with one hash were made the same way
ENGINE = "radledger-deid/1"

# CID 7050 "De-identification Method" (PS3.16), coding scheme DCM
BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
OPTION_CODES: dict[str, tuple[str, str]] = {
    "retain-safe-private": ("113111", "Retain Safe Private Option"),
    "retain-uids": ("113110", "Retain UIDs Option"),
    "retain-device-identity": ("113109", "Retain Device Identity Option"),
    "retain-institution-identity": ("113112", "Retain Institution Identity Option"),
    "retain-patient-characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain-longitudinal-full-dates": (
        "113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain-longitudinal-modified-dates": (
        "113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "clean-descriptors": ("113105", "Clean Descriptors Option"),
    "clean-structured-content": ("113104", "Clean Structured Content Option"),
    "clean-graphics": ("113103", "Clean Graphics Option"),
}
NOT_IMPLEMENTED = {
    "clean-structured-content": "no cleaner for SR content items",
    "clean-graphics": "no cleaner for graphics, curves and overlays",
}
SUPPORTED = frozenset(OPTION_CODES) - frozenset(NOT_IMPLEMENTED)
MODIFIED_DATES = "retain-longitudinal-modified-dates"
FULL_DATES = "retain-longitudinal-full-dates"
# the alternative taken where a code offers several (see the module docstring)
CHOICE = MappingProxyType({"Z/D": "D", "X/D": "D", "X/Z/D": "D", "X/Z": "Z", "X/Z/U*": "U"})
_WILDCARD_50 = "50xxxxxx"
_WILDCARD_60 = {0x3000: "60xx3000", 0x4000: "60xx4000"}
_CURVE_GROUPS = 0x5000  # (50xx,eeee), xx even: retired curves
_OVERLAY_GROUPS = 0x6000  # (60xx,eeee), xx even: overlays
_PRIVATE = "private"
SAFE_PRIVATE = "retain-safe-private"
# private creator elements are (gggg,0010)-(gggg,00FF); creator (gggg,00bb) reserves the block
# (gggg,bb00)-(gggg,bbFF) (PS3.5 section 7.8.1)
FIRST_CREATOR, LAST_CREATOR = 0x0010, 0x00FF
_SAFE_RULE = re.compile(r"^(?P<creator>[^:\\]{1,64}):(?P<group>[0-9A-Fa-f]{4}),xx"
                        r"(?P<offset>[0-9A-Fa-f]{2})$")


@dataclass(frozen=True, order=True)
class SafePrivate:
    """A named private attribute kept by the Retain Safe Private option: its private creator,
    its (odd) group and its element offset within the creator's block, as in PS3.15 Table
    E.3.10-1 (for example ``GEMS_PARM_01:0043,xx27``)."""

    creator: str
    group: int
    offset: int

    def __str__(self) -> str:
        return f"{self.creator}:{self.group:04X},xx{self.offset:02X}"


def parse_safe_private(rule: str) -> SafePrivate:
    """``CREATOR:GGGG,xxEE`` as a SafePrivate. Raises InputError naming the rule."""
    found = _SAFE_RULE.match(rule.strip())
    if found is None or not int(found["group"], 16) & 1:
        raise InputError(f"safe-private rule {rule!r:.80} must look like CREATOR:GGGG,xxEE "
                         "with an odd (private) group, e.g. GEMS_PARM_01:0043,xx27")
    return SafePrivate(found["creator"].strip(), int(found["group"], 16),
                       int(found["offset"], 16))


@dataclass(frozen=True)
class Action:
    """The action for one attribute: ``code`` is one of D, Z, X, K, C, U. ``fallback`` is the
    Basic Profile action (resolved), applied where a C cannot be carried out for the value's
    VR. ``dates`` is true when the C comes from the Modified Dates option (shift the date)
    rather than from a descriptor, patient or device option (replace the text)."""

    code: str
    fallback: str
    dates: bool = False


@dataclass(frozen=True)
class Recipe:
    """The resolved table for a set of options. Build with ``recipe_for``."""

    options: tuple[str, ...]  # sorted
    tags: MappingProxyType[int, Action]
    patterns: MappingProxyType[str, Action]  # the repeating-group rows and "private"
    sha256: str
    safe_private: frozenset[SafePrivate] = frozenset()

    def keeps_private(self, creator: str | None, group: int, element: int) -> bool:
        """True if the private attribute (group, element) under ``creator`` is a named safe
        one, or is the creator element of a block holding one."""
        if not self.safe_private or creator is None:
            return False
        if element <= LAST_CREATOR:  # the creator element itself
            return any(r.creator == creator and r.group == group for r in self.safe_private)
        return SafePrivate(creator, group, element & 0xFF) in self.safe_private

    @property
    def shifts_dates(self) -> bool:
        return MODIFIED_DATES in self.options

    @property
    def method_codes(self) -> tuple[tuple[str, str], ...]:
        """CID 7050 (code value, meaning): the Basic Profile, then each option."""
        return (BASIC_PROFILE,) + tuple(OPTION_CODES[name] for name in self.options)

    def action_for(self, tag: int) -> Action | None:
        """The action for the attribute ``tag`` (group << 16 | element), or None if the table
        does not name it. Every odd group (private) is the "private attributes" row."""
        group, element = tag >> 16, tag & 0xFFFF
        if group & 1:
            return self.patterns[_PRIVATE]
        action = self.tags.get(tag)
        if action is not None:
            return action
        if group & 0xFF00 == _CURVE_GROUPS:
            return self.patterns[_WILDCARD_50]
        if group & 0xFF00 == _OVERLAY_GROUPS and element in _WILDCARD_60:
            return self.patterns[_WILDCARD_60[element]]
        return None


def recipe_for(options: frozenset[str],
               safe_private: frozenset[SafePrivate] = frozenset()) -> Recipe:
    """The recipe for the Basic Profile with ``options`` (names as in OPTION_CODES) and, with
    Retain Safe Private, the private attributes named safe.

    Raises InputError for an unknown or unimplemented option, for both longitudinal temporal
    options at once (one keeps dates, the other shifts them), or for Retain Safe Private
    without rules (or rules without it).
    """
    if (SAFE_PRIVATE in options) != bool(safe_private):
        raise InputError(f"{SAFE_PRIVATE} needs at least one safe-private rule, and rules "
                         f"need {SAFE_PRIVATE}")
    unknown = sorted(set(options) - set(OPTION_CODES))
    if unknown:
        raise InputError(f"unknown de-identification option(s) {unknown}; "
                         f"known: {sorted(SUPPORTED)}")
    refused = sorted(set(options) & set(NOT_IMPLEMENTED))
    if refused:
        reasons = "; ".join(f"{name}: {NOT_IMPLEMENTED[name]}" for name in refused)
        raise InputError(f"option(s) not implemented by radledger ({reasons})")
    if {MODIFIED_DATES, FULL_DATES} <= options:
        raise InputError(f"{MODIFIED_DATES} and {FULL_DATES} exclude each other")
    chosen = tuple(sorted(options))
    columns = [deid_table.OPTION_COLUMNS.index(name) for name in chosen]
    tags: dict[int, Action] = {}
    patterns: dict[str, Action] = {}
    for tag, basic, codes, _keyword, _name in deid_table.ROWS:
        action = _resolve(basic, codes, columns)
        if tag[0] in "0123456789ABCDEF" and "x" not in tag:
            tags[int(tag, 16)] = action
        else:
            patterns[tag] = action
    return Recipe(chosen, MappingProxyType(tags), MappingProxyType(patterns),
                  recipe_sha256(chosen, safe_private), frozenset(safe_private))


def _resolve(basic: str, codes: str, columns: list[int]) -> Action:
    fallback = CHOICE.get(basic, basic)
    given = {deid_table.OPTION_COLUMNS[i]: codes[i] for i in columns if codes[i] != "."}
    if not given:
        return Action(fallback, fallback)
    if "C" in given.values():
        cleaners = [name for name, code in given.items() if code == "C"]
        return Action("C", fallback, dates=cleaners == [MODIFIED_DATES])
    if set(given.values()) == {"K"}:
        return Action("K", fallback)
    raise ValueError(f"table code(s) {given} not understood")  # a new edition's table


def recipe_sha256(options: tuple[str, ...],
                  safe_private: frozenset[SafePrivate] = frozenset()) -> str:
    """SHA-256 of the canonical description (RFC 8785) of the engine, table and options:
    the same recipe has the same hash on every machine."""
    description: dict[str, jcs.JSONValue] = {
        "engine": ENGINE,
        "table": {"standard": "DICOM PS3.15 Table E.1-1", "edition": deid_table.EDITION,
                  "source_sha256": deid_table.SOURCE_SHA256},
        "profile": BASIC_PROFILE[0],
        "options": [{"name": name, "code": OPTION_CODES[name][0]} for name in options],
        "choices": dict(CHOICE),
    }
    if safe_private:  # absent otherwise, so recipes without rules keep their hash
        description["safe_private"] = [str(rule) for rule in sorted(safe_private)]
    return hashlib.sha256(jcs.canonicalize(description)).hexdigest()
