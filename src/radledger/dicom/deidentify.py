"""De-identification of DICOM instances by the Basic Application Level Confidentiality
Profile of PS3.15 Annex E and some of its options (issue 4).

What happens to an instance, in order:

1. every attribute the table names gets its action (``deid_profile`` says how the table and
   options are read; ``deid_values`` what is written), at every nesting level; attributes the
   table does not name are kept, sequences among them walked; group lengths are dropped;
2. with Modified Dates, every remaining DA and DT value (named by the table or not) moves by
   the patient's date shift, so every interval of one patient is kept;
3. PatientID and PatientName become the first 16 hex digits of the project pseudonym of the
   PatientID (``radledger.core.pseudonym``), so one patient's files stay linked;
4. Patient Identity Removed (0012,0062) YES, De-identification Method (0012,0063),
   De-identification Method Code Sequence (0012,0064) with the CID 7050 codes applied, and
   Longitudinal Temporal Information Modified (0028,0303) are set (PS3.15 E.1.1);
5. a written file gets a new file meta group (nothing of the source's kept but the SOP Class,
   the replaced SOP Instance UID and the transfer syntax) and a zeroed preamble.

Pixel data is never touched: the output's ``pixel_sha256`` is checked equal to the source's
before the file is given its final name. Burned-in text is not cleaned; such instances are
flagged ``burned-in-annotation-review`` for a person to look at (RELIABILITY 31).
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset

from radledger.core.pseudonym import pseudonym
from radledger.dicom import deid_table
from radledger.dicom.deid_profile import (
    ENGINE,
    FIRST_CREATOR,
    FULL_DATES,
    LAST_CREATOR,
    Action,
    Recipe,
    SafePrivate,
    recipe_for,
)
from radledger.dicom.deid_values import (
    CLEANED_TEXT,
    check_key,
    date_shift_days,
    dummy_value,
    empty_value,
    is_text,
    replacement_uid,
    shift_date,
    shift_datetime,
)
from radledger.dicom.fingerprint import Fingerprint, fingerprint_dataset, fingerprint_file
from radledger.errors import DicomError, InputError
from radledger.storage.files import place

BURNED_IN_REVIEW = "burned-in-annotation-review"
# modalities whose images often carry text in the pixels (measurements, names, labels)
BURNED_IN_MODALITIES = frozenset({"US", "IVUS", "ES", "XC", "OP", "GM", "SM", "OT", "DOC"})
# Secondary Capture (…1.7, …1.7.1-4), ultrasound (…1.6.x, retired …1.3.1), visible light
# (…1.77.1.x: endoscopy, microscopy, photography, video)
BURNED_IN_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.6.",
                         "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.77.1.")
PSEUDONYM_DIGITS = 16
MAX_DEPTH = 64
_PREAMBLE = bytes(128)
_DATE_VRS = ("DA", "DT")


@dataclass(frozen=True)
class Deidentified:
    """The outcome of one de-identification.

    ``actions`` counts the table's actions applied (D, Z, X, K, C, U; private attributes are
    X; dates shifted outside the table's rows count as C). ``pixels_changed`` is always False:
    radledger does not clean pixels. ``source`` and ``output`` are the fingerprints of the
    files, when files were read and written.
    """

    dataset: Dataset
    path: Path | None
    options: tuple[str, ...]
    method_codes: tuple[str, ...]
    recipe_sha256: str
    flags: tuple[str, ...]
    pixels_changed: bool
    actions: Mapping[str, int]
    source: Fingerprint | None = field(default=None)
    output: Fingerprint | None = field(default=None)


def deidentify_dataset(ds: Dataset, project_key: bytes, options: frozenset[str],
                       safe_private: frozenset[SafePrivate] = frozenset()) -> Deidentified:
    """A de-identified copy of ``ds`` (``ds`` itself is left as it was).

    Requires a 32-byte project key. Raises InputError for a bad key or options, DicomError for
    a dataset that cannot be de-identified as asked (no PatientID to shift dates by, sequences
    nested deeper than MAX_DEPTH).
    """
    check_key(project_key)
    recipe = recipe_for(frozenset(options), safe_private)
    return _deidentify(_copy(ds), project_key, recipe)


def _copy(ds: Dataset) -> Dataset:
    """A deep copy of the elements and file meta: not of the buffer a FileDataset was read
    from (deep-copying a closed one warns)."""
    out = Dataset()
    for element in ds:
        out.add(copy.deepcopy(element))
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        out.file_meta = copy.deepcopy(meta)
    return out


def deidentify_file(src: Path, dst: Path, project_key: bytes, options: frozenset[str],
                    safe_private: frozenset[SafePrivate] = frozenset()) -> Deidentified:
    """De-identify the file ``src`` into ``dst``.

    The copy is written to a temporary file in ``dst``'s folder, fsynced, checked (its pixel
    fingerprint must equal the source's), then renamed: ``dst`` is never a partial file. An
    existing ``dst`` is replaced, unless it is ``src``.

    Raises InputError for a bad key or options, or ``dst`` being ``src``; DicomError if
    ``src`` is not DICOM radledger can read safely, cannot be de-identified as asked, or the
    written pixels differ; OSError if ``dst`` cannot be written.
    """
    check_key(project_key)
    recipe = recipe_for(frozenset(options), safe_private)
    if _same_file(src, dst):
        raise InputError(f"{dst}: refusing to overwrite the source with its de-identified copy")
    source, ds = fingerprint_dataset(src)
    try:
        result = _deidentify(ds, project_key, recipe)
    except DicomError as exc:
        raise DicomError(f"{src}: {exc}") from None
    meta = result.dataset.file_meta
    missing = [k for k in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID")
               if not meta.get(k)]
    if missing:
        raise DicomError(f"{src}: no {' or '.join(missing)} (nor SOP Class/Instance UID in "
                         "the data set): a DICOM file cannot be written without them")
    output = _write(result.dataset, dst, source)
    return replace(result, path=dst, source=source, output=output)


def burned_in_flags(ds: Dataset) -> tuple[str, ...]:
    """``(BURNED_IN_REVIEW,)`` if Burned In Annotation (0028,0301) is YES, or is not NO for a
    modality or SOP class known to carry burned-in text; else ``()``."""
    burned_in = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned_in == "YES":
        return (BURNED_IN_REVIEW,)
    if burned_in == "NO":
        return ()
    modality = str(ds.get("Modality", "") or "").strip().upper()
    meta = getattr(ds, "file_meta", None)
    sop_class = str(ds.get("SOPClassUID", "")
                    or (meta.get("MediaStorageSOPClassUID", "") if meta is not None else ""))
    if modality in BURNED_IN_MODALITIES or sop_class.startswith(BURNED_IN_SOP_CLASSES):
        return (BURNED_IN_REVIEW,)
    return ()


def _deidentify(ds: Dataset, project_key: bytes, recipe: Recipe) -> Deidentified:
    patient_id = str(ds.get("PatientID", "") or "").strip()
    shift = None
    if recipe.shifts_dates:
        if not patient_id:
            raise DicomError("no PatientID: dates cannot be shifted consistently per patient; "
                             "use the basic profile or retain-longitudinal-full-dates")
        shift = date_shift_days(project_key, patient_id)
    flags = burned_in_flags(ds)
    walker = _Walker(project_key, recipe, shift)
    walker.walk(ds, 0)
    _mark(ds, project_key, recipe, patient_id)
    old_meta = getattr(ds, "file_meta", None)
    if old_meta is not None:
        ds.file_meta = _file_meta(ds, old_meta, project_key, recipe)
        ds.preamble = _PREAMBLE  # read by pydicom's writer
    return Deidentified(
        dataset=ds, path=None, options=recipe.options,
        method_codes=tuple(code for code, _ in recipe.method_codes),
        recipe_sha256=recipe.sha256, flags=flags, pixels_changed=False,
        actions=MappingProxyType(dict(sorted(walker.counts.items()))),
    )


class _Walker:
    """Applies a recipe to a dataset in place, recursively."""

    def __init__(self, project_key: bytes, recipe: Recipe, shift: int | None) -> None:
        self.key = project_key
        self.recipe = recipe
        self.shift = shift
        self.counts: Counter[str] = Counter()

    def walk(self, ds: Dataset, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise DicomError(f"sequences nested more than {MAX_DEPTH} deep; refused")
        creators = {(t.group, t.element): str(ds[t].value) for t in list(ds.keys())
                    if t.group & 1 and FIRST_CREATOR <= t.element <= LAST_CREATOR}
        for tag in list(ds.keys()):
            element = ds[tag]
            if tag.element == 0:
                del ds[tag]  # a group length: wrong once attributes are removed
                continue
            if tag.group & 1:  # private: kept if named safe, else removed (the option's C)
                creator = creators.get((tag.group, tag.element if tag.element <= LAST_CREATOR
                                        else tag.element >> 8))
                if self.recipe.keeps_private(creator, tag.group, tag.element):
                    self.counts["K"] += 1
                else:
                    self.counts["X"] += 1
                    del ds[tag]
                continue
            action = self.recipe.action_for(int(tag))
            if action is None:
                self._unlisted(element, depth)
                continue
            self.counts[action.code] += 1
            self._apply(ds, element, action, depth)

    def _items(self, element: DataElement, depth: int) -> None:
        for item in element.value or ():
            self.walk(item, depth + 1)

    def _unlisted(self, element: DataElement, depth: int) -> None:
        if element.VR == "SQ":
            self._items(element, depth)
        elif self.shift is not None and element.VR in _DATE_VRS and element.value:
            self._shift(element)
            self.counts["C"] += 1

    def _apply(self, ds: Dataset, element: DataElement, action: Action, depth: int) -> None:
        code, vr = action.code, element.VR
        if code == "C":
            self._clean(ds, element, action, depth)
        elif code == "X":
            del ds[element.tag]
        elif code == "Z":
            element.value = empty_value(vr)
        elif code == "D":
            element.value = self._uids(element) if vr == "UI" else dummy_value(vr)
        elif code == "K":
            if vr == "SQ":
                self._items(element, depth)
        elif code == "U":
            if vr == "UI":
                element.value = self._uids(element)
            elif vr == "SQ":
                self._items(element, depth)  # U*: the sequence kept, the UIDs in it replaced
            else:
                del ds[element.tag]  # not a UID after all: nothing to replace consistently
        else:
            raise ValueError(f"unknown action {code!r}")

    def _clean(self, ds: Dataset, element: DataElement, action: Action, depth: int) -> None:
        vr = element.VR
        if action.dates:
            if vr in _DATE_VRS and self.shift is not None:
                self._shift(element)
                return
            if vr in ("TM", "SH"):
                return  # times of day and the UTC offset do not move with a whole-day shift
        elif vr == "SQ":
            self._items(element, depth)  # coded descriptors: the codes stay, the table applies
            return
        elif is_text(vr):
            element.value = CLEANED_TEXT if element.value not in (None, "") else ""
            return
        # a C radledger cannot carry out for this VR: the Basic Profile's action instead
        self._apply(ds, element, Action(action.fallback, action.fallback), depth)

    def _uids(self, element: DataElement) -> str | list[str]:
        values = [str(v) for v in _values(element.value) if str(v)]
        mapped = [replacement_uid(self.key, v) for v in values]
        return mapped[0] if len(mapped) == 1 else mapped or ""

    def _shift(self, element: DataElement) -> None:
        assert self.shift is not None
        move = shift_date if element.VR == "DA" else shift_datetime
        moved = [move(str(v), self.shift) for v in _values(element.value)]
        element.value = moved[0] if len(moved) == 1 else moved


def _values(value: object) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return list(value)  # a MultiValue
    return [value]


def _mark(ds: Dataset, project_key: bytes, recipe: Recipe, patient_id: str) -> None:
    if patient_id:
        try:
            value = pseudonym(project_key, "PatientID", patient_id)[:PSEUDONYM_DIGITS].upper()
        except InputError:
            raise DicomError("PatientID is not a usable identifier") from None
    else:
        value = ""
    ds.PatientID = value
    ds.PatientName = value
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = [
        f"{ENGINE} DICOM PS3.15 {deid_table.EDITION} Table E.1-1",
        *(meaning for _, meaning in recipe.method_codes),
    ]
    items = []
    for value_, meaning in recipe.method_codes:
        item = Dataset()
        item.CodeValue = value_
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = items
    ds.LongitudinalTemporalInformationModified = (
        "MODIFIED" if recipe.shifts_dates
        else "UNMODIFIED" if FULL_DATES in recipe.options else "REMOVED")


def _file_meta(ds: Dataset, old: FileMetaDataset, project_key: bytes, recipe: Recipe
               ) -> FileMetaDataset:
    meta = FileMetaDataset()
    sop_class = ds.get("SOPClassUID") or old.get("MediaStorageSOPClassUID")
    if sop_class:
        meta.MediaStorageSOPClassUID = sop_class
    instance = ds.get("SOPInstanceUID")  # already replaced (or kept) by the table
    if not instance and old.get("MediaStorageSOPInstanceUID"):
        action = recipe.action_for(0x00020003)
        instance = str(old.MediaStorageSOPInstanceUID)
        if action is None or action.code != "K":
            instance = replacement_uid(project_key, instance)
    if instance:
        meta.MediaStorageSOPInstanceUID = instance
    if old.get("TransferSyntaxUID"):
        meta.TransferSyntaxUID = old.TransferSyntaxUID
    return meta


def _same_file(src: Path, dst: Path) -> bool:
    if src.resolve() == dst.resolve():
        return True
    try:
        return dst.exists() and os.path.samefile(src, dst)
    except OSError:
        return False


def _write(ds: Dataset, dst: Path, source: Fingerprint) -> Fingerprint:
    folder = dst.parent
    fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=folder)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                ds.save_as(f, enforce_file_format=True)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # the message may quote a header value: only the kind of failure is shown
                raise DicomError(f"{dst}: pydicom cannot write the de-identified dataset "
                                 f"({type(exc).__name__})") from None
            f.flush()
            os.fsync(f.fileno())
        output = fingerprint_file(tmp)
        if output.pixel_sha256 != source.pixel_sha256:
            raise DicomError(f"{dst}: the de-identified pixels differ from the source's "
                             f"(expected {source.pixel_sha256}, computed "
                             f"{output.pixel_sha256}); not written")
        place(tmp, dst, folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return replace(output, path=str(dst))
