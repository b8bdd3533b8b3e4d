"""Synthetic DICOM studies with fake patients, for the demo, the tests and the benchmarks.

Every identifying attribute holds made-up text (or a caller's canary string), never real
patient data. The images are a simple phantom (a body ellipse with a few organs and noise) so
that slices differ and compress like real scans rather than like zeros.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom.data
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

_SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage}
_GIVEN = ["Ada", "Bram", "Chidi", "Dana", "Emil", "Farah", "Goran", "Hana", "Ivo", "Jun"]
_FAMILY = ["Fakename", "Testperson", "Example", "Sample", "Placeholder", "Dummy"]


@dataclass(frozen=True)
class FakePatient:
    """Made-up identifying details; every field ends up in the files' PHI attributes."""

    name: str
    patient_id: str
    birth_date: str
    sex: str = "O"
    address: str = "1 Nowhere Lane, Testville"
    institution: str = "Synthetic Imaging Centre"
    physician: str = "Doctor^Fictional"
    comments: str = "synthetic demo data, not a patient"


def fake_patients(count: int, seed: int = 0) -> Iterator[FakePatient]:
    """``count`` distinct fake patients, the same for the same seed."""
    for n in range(count):
        h = int.from_bytes(hashlib.sha256(f"{seed}/{n}".encode()).digest()[:8], "big")
        given, family = _GIVEN[h % len(_GIVEN)], _FAMILY[(h >> 8) % len(_FAMILY)]
        year, month, day = 1940 + (h >> 16) % 60, 1 + (h >> 24) % 12, 1 + (h >> 28) % 28
        yield FakePatient(
            name=f"{family}^{given}", patient_id=f"FAKE{seed:03d}{n:06d}",
            birth_date=f"{year:04d}{month:02d}{day:02d}", sex="MFO"[(h >> 32) % 3],
        )


def canary_patient(canary: str) -> FakePatient:
    """A patient whose every identifying field carries ``canary``, so a test can search for
    it anywhere radledger writes."""
    return FakePatient(
        name=f"{canary}^NAME", patient_id=f"{canary}-ID", birth_date="19010101",
        sex="O", address=f"{canary} ADDRESS", institution=f"{canary} INSTITUTION",
        physician=f"{canary}^PHYSICIAN", comments=f"{canary} COMMENTS",
    )


def pydicom_test_files() -> Path:
    """The folder of test files pydicom ships: real files written by many other tools, some
    deliberately malformed."""
    return Path(pydicom.data.__file__).parent / "test_files"


def _uid(*parts: object) -> UID:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def phantom(rows: int, columns: int, slice_index: int, slices: int, seed: int) -> np.ndarray:
    """A 16-bit signed CT-like slice in Hounsfield units: air, a body, organs, noise."""
    y, x = np.ogrid[-1:1:rows * 1j, -1:1:columns * 1j]
    z = (slice_index / max(1, slices - 1)) * 2 - 1
    image = np.full((rows, columns), -1000.0)
    body = (x / 0.85) ** 2 + (y / 0.65) ** 2 <= 1 - 0.3 * z * z
    image[body] = 40
    for cx, cy, r, hu in ((-0.35, 0.0, 0.22, 60), (0.35, 0.0, 0.22, -800), (0.0, 0.3, 0.1, 700)):
        image[((x - cx) ** 2 + (y - cy) ** 2 <= (r * (1 - 0.5 * z * z)) ** 2) & body] = hu
    rng = np.random.default_rng(seed * 100_003 + slice_index)
    image += rng.normal(0, 12, size=image.shape)
    clipped: np.ndarray = np.clip(image, -1024, 3071).astype(np.int16)
    return clipped


@dataclass(frozen=True)
class Acquisition:
    """The shape of one synthetic single-series study."""

    modality: str = "CT"
    slices: int = 10
    rows: int = 512
    columns: int = 512
    seed: int = 0
    private_text: str | None = None  # written into a private tag, if given


def study_datasets(patient: FakePatient, shape: Acquisition) -> Iterator[Dataset]:
    """The instances of one single-series study, in slice order (files not yet written)."""
    modality, slices, rows, columns = shape.modality, shape.slices, shape.rows, shape.columns
    seed, private_text = shape.seed, shape.private_text
    if modality not in _SOP_CLASS:
        raise ValueError(f"modality must be one of {sorted(_SOP_CLASS)}")
    study_uid = _uid("study", patient.patient_id, seed)
    series_uid = _uid("series", patient.patient_id, seed)
    for k in range(slices):
        sop_uid = _uid("instance", patient.patient_id, seed, k)
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = _SOP_CLASS[modality]
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.SOPClassUID, ds.SOPInstanceUID = _SOP_CLASS[modality], sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = _uid("frame", patient.patient_id, seed)
        ds.Modality = modality
        ds.PatientName, ds.PatientID = patient.name, patient.patient_id
        ds.PatientBirthDate, ds.PatientSex = patient.birth_date, patient.sex
        ds.PatientAddress = patient.address
        ds.InstitutionName = patient.institution
        ds.ReferringPhysicianName = patient.physician
        ds.ImageComments = patient.comments
        ds.AccessionNumber = "A" + hashlib.sha256(patient.patient_id.encode()).hexdigest()[:12]
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20250314"
        ds.StudyTime = ds.SeriesTime = "101500"
        ds.StudyDescription = f"{modality} synthetic phantom"
        ds.SeriesDescription = "axial"
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(k) * 2.5]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 2.5
        ds.Manufacturer = "radledger synthetic"
        if private_text is not None:
            block = ds.private_block(0x0009, "RADLEDGER SYNTHETIC", create=True)
            block.add_new(0x01, "LO", private_text)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = rows, columns
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = phantom(rows, columns, k, slices, seed).tobytes()
        yield ds


def write_study(folder: Path, patient: FakePatient, shape: Acquisition | None = None
                ) -> list[Path]:
    """Write one study as ``folder/slice-NNNN.dcm`` (names carry no PHI); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, ds in enumerate(study_datasets(patient, shape or Acquisition())):
        path = folder / f"slice-{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
