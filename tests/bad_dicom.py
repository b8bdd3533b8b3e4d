"""Files named after their defect (RELIABILITY 19-26), built from pydicom's CT_small.dcm, each
with the reason radledger must give when refusing it."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path

import pydicom.data
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

TEST_FILES = Path(os.path.dirname(pydicom.data.__file__)) / "test_files"
SOURCE = TEST_FILES / "CT_small.dcm"


def minimal_file(path: Path, syntax: str, sop_instance_uid: str = "1.2.3.4") -> None:
    """A tiny valid file: SOP class and instance, nothing else."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = sop_instance_uid
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.save_as(path, enforce_file_format=True)


def not_dicom(path: Path) -> None:
    path.write_text("patient list, not an image\n")


def no_dicm_prefix(path: Path) -> None:
    data = bytearray(SOURCE.read_bytes())
    data[128:132] = b"XXXX"
    path.write_bytes(bytes(data))


def truncated(path: Path) -> None:
    data = SOURCE.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def invalid_vr(path: Path) -> None:
    data = bytearray(SOURCE.read_bytes())
    at = data.find(b"\x08\x00\x60\x00CS")  # (0008,0060) Modality, explicit VR
    data[at + 4:at + 6] = b"Z\x01"
    path.write_bytes(bytes(data))


def length_past_end(path: Path) -> None:
    data = bytearray(SOURCE.read_bytes())
    at = data.find(b"\x10\x00\x10\x00PN")  # (0010,0010) PatientName
    data[at + 6:at + 8] = b"\xf0\xff"
    path.write_bytes(bytes(data[:at + 400]))


def undefined_length_not_sequence(path: Path) -> None:
    data = bytearray(SOURCE.read_bytes())
    at = data.find(b"\x28\x00\x10\x00US")  # (0028,0010) Rows: US has a 2-byte length
    # rewrite as UN with a 4-byte 0xFFFFFFFF length: an undefined length on a non-sequence
    data[at:at + 10] = b"\x28\x00\x10\x00UN\0\0\xff\xff"
    data[at + 10:at + 10] = b"\xff\xff"
    path.write_bytes(bytes(data))


def nested_thousands_deep(path: Path) -> None:
    minimal_file(path, ExplicitVRLittleEndian)
    sequence = b"\x08\x00\x15\x11SQ\0\0\xff\xff\xff\xff"  # (0008,1115), undefined length
    item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    close = b"\xfe\xff\x0d\xe0\0\0\0\0" + b"\xfe\xff\xdd\xe0\0\0\0\0"
    with path.open("ab") as f:
        f.write((sequence + item) * 5000 + close * 5000)


def deflate_bomb(path: Path) -> None:
    minimal_file(path, DeflatedExplicitVRLittleEndian)
    data = path.read_bytes()
    meta_end = 132 + 12 + int.from_bytes(data[140:144], "little")
    size = 300 << 20  # an OB element of 300 MiB of zeros: about 300 kB deflated
    body = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [body.compress(b"\x09\x00\x10\x00OB\0\0" + size.to_bytes(4, "little"))]
    zeros = bytes(1 << 20)
    parts += [body.compress(zeros) for _ in range(size >> 20)]
    parts.append(body.flush())
    path.write_bytes(data[:meta_end] + b"".join(parts))


def dimensions_overflow_memory(path: Path) -> None:
    ds = dcmread(SOURCE)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000
    ds.save_as(path)


def syntax_lies_about_body(path: Path) -> None:
    """File meta says Explicit VR Little Endian; the body is Implicit VR."""
    ds = dcmread(SOURCE)
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, True
    write_dataset(body, ds)
    path.write_bytes(bytes(128) + b"DICM" + meta.getvalue() + body.getvalue())


def uid_of_ten_kilobytes(path: Path) -> None:
    minimal_file(path, ExplicitVRLittleEndian, sop_instance_uid="1." * 5000)


def uid_with_nul(path: Path) -> None:
    minimal_file(path, ExplicitVRLittleEndian, sop_instance_uid="1.2\x003")


# file name -> (builder, a phrase the refusal must contain)
REFUSED: dict[str, tuple[Callable[[Path], None], str]] = {
    "not_dicom.txt": (not_dicom, "not a DICOM file"),
    "no_dicm_prefix.dcm": (no_dicm_prefix, "no 'DICM' prefix"),
    "truncated.dcm": (truncated, "DicomError"),
    "invalid_vr.dcm": (invalid_vr, "DicomError"),
    "length_past_end.dcm": (length_past_end, "DicomError"),
    "undefined_length_not_sequence.dcm": (undefined_length_not_sequence, "DicomError"),
    "nested_thousands_deep.dcm": (nested_thousands_deep, "nested too deeply"),
    "deflate_bomb.dcm": (deflate_bomb, "deflate bomb"),
    "dimensions_overflow_memory.dcm": (dimensions_overflow_memory, "refused before allocating"),
    "syntax_lies_about_body.dcm": (syntax_lies_about_body, "refused rather than reinterpreted"),
    "uid_of_ten_kilobytes.dcm": (uid_of_ten_kilobytes, "not a usable identifier"),
    "uid_with_nul.dcm": (uid_with_nul, "not a usable identifier"),
}


def polyglot(path: Path) -> None:
    """A DICOM/executable polyglot (CVE-2019-11687): valid DICOM, 'MZ' in the preamble."""
    data = bytearray(SOURCE.read_bytes())
    data[:2] = b"MZ"
    path.write_bytes(bytes(data))
