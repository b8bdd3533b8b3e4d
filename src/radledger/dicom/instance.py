"""A DICOM instance as the ledger records it: fingerprints, pseudonymous keys and the few
attributes allowed in clear (DESIGN section 4).

Identifiers are pseudonymised here, in the process that parsed the file, so the clear
PatientID and UIDs never travel further than this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from radledger.core.kinds import CLEAR_ATTRIBUTES, clear_attribute_ok
from radledger.core.pseudonym import pseudonym
from radledger.dicom.deidentify import burned_in_flags
from radledger.dicom.fingerprint import FileBytes, Fingerprint, fingerprint_dataset, read_file
from radledger.dicom.terms import PHOTOMETRIC_INTERPRETATIONS
from radledger.errors import DicomError, InputError

# subject key -> the DICOM keyword it pseudonymises
SUBJECT_KEYWORDS = {
    "patient": "PatientID", "study": "StudyInstanceUID",
    "series": "SeriesInstanceUID", "instance": "SOPInstanceUID",
}


@dataclass(frozen=True)
class Instance:
    """One file's registration: what ``instance.registered`` records about it."""

    fingerprint: Fingerprint
    size: int
    subject: dict[str, str]
    attributes: dict[str, int | str]
    flags: tuple[str, ...] = ()  # the fingerprint's, and burned-in annotation review


def read_instance(path: Path, project_key: bytes, read: FileBytes | None = None) -> Instance:
    """Fingerprint ``path`` (already read as ``read``, if given) and pseudonymise its
    identifiers with ``project_key``.

    Raises DicomError naming the file and the reason.
    """
    read = read_file(path) if read is None else read
    fingerprint, ds = fingerprint_dataset(path, read)
    return Instance(fingerprint, read.size, subject_keys(path, ds, project_key),
                    _attributes(ds), fingerprint.flags + burned_in_flags(ds))


def subject_keys(path: Path, ds: Dataset, project_key: bytes) -> dict[str, str]:
    """The pseudonyms of PatientID and the Study/Series/SOP Instance UIDs that ``ds`` has.

    Raises DicomError if one is unusable as an identifier (NUL, or absurdly long).
    """
    keys = {}
    for key, keyword in SUBJECT_KEYWORDS.items():
        value = ds.get(keyword)
        if value is None and keyword == "SOPInstanceUID":
            value = ds.file_meta.get("MediaStorageSOPInstanceUID")
        text = str(value).strip() if value is not None else ""
        if not text:
            continue
        try:
            keys[key] = pseudonym(project_key, keyword, text)
        except InputError:
            raise DicomError(f"{path}: {keyword} is not a usable identifier") from None
    return keys


def _attributes(ds: Dataset) -> dict[str, int | str]:
    out: dict[str, int | str] = {}
    for keyword, kind in CLEAR_ATTRIBUTES.items():
        value = ds.get(keyword)
        try:
            clear = int(value) if kind is int else str(value).strip()
        except (TypeError, ValueError):
            continue  # absent or malformed: left out rather than guessed
        if keyword == "PhotometricInterpretation" and clear not in PHOTOMETRIC_INTERPRETATIONS:
            continue  # code-string shaped is not enough: a surname is too
        if clear_attribute_ok(keyword, clear):
            out[keyword] = clear
    return out
