"""The fingerprints of a DICOM instance (DESIGN section 4).

- ``file_sha256``: the bytes as stored.
- ``pixel_sha256``: the decoded pixels in a canonical form: an RFC 8785 header of rows,
  columns, frames, samples per pixel, bits allocated, pixel representation and photometric
  interpretation, then the pixel values little-endian in C order; so one image losslessly
  re-encoded (implicit/explicit VR, big endian, deflate, RLE, JPEG lossless, JPEG-LS, JPEG 2000
  lossless) keeps its pixel hash. Where no decoder can decode the transfer syntax, the hash of
  the raw PixelData value, marked ``raw``.
- ``meta_sha256``: the dataset without PixelData, trailing padding and the file meta group,
  as the DICOM JSON model in RFC 8785 form, so header changes are caught whatever the encoding.

Untrusted input is read without ``force``: no DICM prefix, malformed or oversized content is a
DicomError naming the reason, never a crash.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pydicom import config, dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import pixel_array
from pydicom.uid import UID

from radledger.core import jcs
from radledger.dicom.terms import MODALITIES
from radledger.errors import CanonicalJSONError, DicomError

# pydicom logs header values (a character set, a value it cannot convert): a filter drops its
# records before any handler, ours or an application's, can see them
logging.getLogger("pydicom").addFilter(lambda _record: False)
# values are not validated against their VR while reading: radledger records hashes, not
# values, and validation would only warn (quoting the value) and cost time
config.settings.reading_validation_mode = config.IGNORE

PIXEL_CONTEXT = b"radledger/pixels/v1\n"
META_CONTEXT = b"radledger/meta/v1\n"
MAX_PIXEL_BYTES = 2 << 30  # decoded size refused beyond this, before allocating anything
MAX_INFLATED_BYTES = 256 << 20  # a deflated dataset may inflate to this much at most
DEFLATED = "1.2.840.10008.1.2.1.99"
_META_START = 132  # preamble + "DICM"
_PREAMBLE = 128
_EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa", b"\xcf\xfa\xed\xfe", b"#!")
_CHUNK = 1 << 20
IN_MEMORY_BYTES = 64 << 20  # files up to this size are read once, into memory
_MAX_META = 1 << 20  # a file meta group longer than this is not read as one
_UNDEFINED = 0xFFFFFFFF
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", DEFLATED)
# JPEG 2000 decoders undo the reversible/irreversible colour transform: the values are RGB
_DECODED_AS = {"YBR_RCT": "RGB", "YBR_ICT": "RGB"}
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\0\0\0\0"  # (FFFE,E0DD), length 0
_SEQUENCE_DELIMITER_FORMS = (_SEQUENCE_DELIMITER, b"\xff\xfe\xe0\xdd\0\0\0\0")  # LE, BE
# Pixel Data, and Data Set Trailing Padding (an artefact of how a file was written)
_NOT_HEADER = ("7FE00010", "FFFCFFFC")
# the only header values printed or recorded in clear; anything else in them is not shown
_UID = re.compile(r"^[0-9.]{1,64}$")
# quoted text in a parser's message may be a header value (a name, an ID): never echoed
_SYNTAX_MISMATCH = re.compile(r"Expected (explicit|implicit) VR, but found (explicit|implicit) VR")
_QUOTED = re.compile(r"""(b?)(['"])(.{3,}?)\2""")


@dataclass(frozen=True)
class Fingerprint:
    """What radledger knows an instance by. ``flags`` notes what was odd about the file."""

    path: str
    file_sha256: str
    pixel_sha256: str
    pixel_hash_kind: str  # "decoded" or "raw"
    meta_sha256: str
    sop_class_uid: str
    modality: str
    transfer_syntax_uid: str
    flags: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, str]:
        """The stable machine form (``radledger fingerprint --json``)."""
        return {
            "path": self.path, "file_sha256": self.file_sha256,
            "pixel_sha256": self.pixel_sha256, "pixel_hash_kind": self.pixel_hash_kind,
            "meta_sha256": self.meta_sha256, "sop_class_uid": self.sop_class_uid,
            "modality": self.modality, "transfer_syntax_uid": self.transfer_syntax_uid,
        }


@dataclass(frozen=True)
class FileBytes:
    """What is read of a file before parsing it: its hash, size, first and last bytes, and
    (below IN_MEMORY_BYTES) its whole content, so that it is read from disk once."""

    file_sha256: str
    size: int
    head: bytes  # preamble, "DICM", file meta group
    tail: bytes  # the last 8 bytes
    content: bytes | None


def read_file(path: Path) -> FileBytes:
    """Read (and hash) a file once; raises DicomError if it cannot be read."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= IN_MEMORY_BYTES:
                content = f.read()
                return FileBytes(hashlib.sha256(content).hexdigest(), len(content),
                              _meta_group(io.BytesIO(content)), content[-8:], content)
            digest = hashlib.sha256()
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
            f.seek(max(0, size - 8))
            tail = f.read()
            f.seek(0)
            return FileBytes(digest.hexdigest(), size, _meta_group(f), tail, None)
    except OSError as exc:
        raise DicomError(f"{path}: cannot read ({exc.strerror})") from None


def _meta_group(f: BinaryIO) -> bytes:
    """The preamble, "DICM" and the file meta group (as far as its group length says)."""
    head = f.read(_META_START + 12)
    if head[_META_START:_META_START + 6] != b"\x02\x00\x00\x00UL":
        return head
    return head + f.read(min(int.from_bytes(head[-4:], "little"), _MAX_META))


def _preamble_flags(path: Path, head: bytes) -> tuple[str, ...]:
    if len(head) < _PREAMBLE + 4 or head[_PREAMBLE:] != b"DICM":
        raise DicomError(f"{path}: not a DICOM file (no 'DICM' prefix after the 128-byte "
                         "preamble)")
    preamble = head[:_PREAMBLE]
    if any(preamble.startswith(magic) for magic in _EXECUTABLE_MAGIC):
        return ("preamble-executable",)  # a DICOM/executable polyglot (CVE-2019-11687)
    return ("preamble-nonzero",) if preamble.strip(b"\0") else ()


def _check_inflation(path: Path, read: FileBytes) -> None:
    """Refuse a Deflated Explicit VR Little Endian file whose dataset inflates beyond
    MAX_INFLATED_BYTES (a deflate bomb), inflating at most that much to find out.

    pydicom inflates the whole stream in memory, so this runs before it. The file meta group
    ends where its group length (0002,0000) says.
    """
    if DEFLATED.encode() not in read.head[_META_START:]:
        return
    if read.head[_META_START:_META_START + 6] != b"\x02\x00\x00\x00UL":
        raise DicomError(f"{path}: deflated file without a file meta group length")
    with _open(path, read) as f:
        f.seek(len(read.head))
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while chunk := f.read(_CHUNK):
            try:
                total += len(inflater.decompress(chunk, MAX_INFLATED_BYTES + 1 - total))
                while inflater.unconsumed_tail and total <= MAX_INFLATED_BYTES:
                    total += len(inflater.decompress(inflater.unconsumed_tail,
                                                     MAX_INFLATED_BYTES + 1 - total))
            except zlib.error:
                return  # not deflate data after all: dcmread reports what it is
            if total > MAX_INFLATED_BYTES:
                raise DicomError(f"{path}: deflated dataset inflates beyond "
                                 f"{MAX_INFLATED_BYTES} bytes (a deflate bomb); refused")


def _open(path: Path, read: FileBytes) -> BinaryIO:
    return io.BytesIO(read.content) if read.content is not None else path.open("rb")


def _read(path: Path, read: FileBytes) -> Dataset:
    _check_inflation(path, read)
    try:
        with _open(path, read) as f:
            return dcmread(f, force=False)
    except InvalidDicomError as exc:
        raise DicomError(f"{path}: not valid DICOM ({_scrub(exc)})") from None
    except RecursionError:
        raise DicomError(f"{path}: sequences nested too deeply") from None
    except (ValueError, TypeError, KeyError, EOFError, OSError, struct.error,
            NotImplementedError, AttributeError) as exc:
        raise DicomError(f"{path}: malformed DICOM ({type(exc).__name__}: {_scrub(exc)})") \
            from None


def _refuse_short_value(path: Path, ds: Dataset, read: FileBytes) -> tuple[str, ...]:
    """Refuse what pydicom reads without complaint from a truncated file: a last element the
    file cuts short or leaves a stray piece of, or encapsulated pixel data without its closing
    delimiter. Returns ``("image-without-pixel-data",)`` for an image without Pixel Data
    (Type 1 in the Image Pixel module): cut just before it, or stripped on purpose, as test
    files often are; it cannot tell which, so it flags rather than refuses.

    Requires a dataset just read from ``path`` (raw elements keep their file positions).
    """
    size = read.size
    end: int | None = None
    last = None
    for element in ds.elements():
        tell, length = getattr(element, "value_tell", None), getattr(element, "length", None)
        last, end = element.tag, None
        if not (isinstance(tell, int) and isinstance(length, int)):
            continue  # a sequence pydicom parsed while reading: its items were complete
        if length == _UNDEFINED:
            end = _UNDEFINED
            continue
        end = tell + length
        if end > size:
            raise DicomError(f"{path}: element {element.tag} has length {length}, past "
                             f"the end of the file ({size} bytes); truncated")
    if end is not None and end not in (_UNDEFINED, size):
        raise DicomError(f"{path}: {size - end} stray bytes after the last element; truncated")
    if end == _UNDEFINED and read.tail not in _SEQUENCE_DELIMITER_FORMS:
        raise DicomError(f"{path}: element {last} has no closing sequence delimiter; "
                         "truncated")
    if last is None:
        raise DicomError(f"{path}: no data set after the file meta; truncated")
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
        if "Rows" in ds or "Image Storage" in UID(str(sop_class or "")).name:
            return ("image-without-pixel-data",)
    return ()


def _scrub(exc: BaseException) -> str:
    """A parser's message without the values it quotes (they may be PHI), at most 200
    characters."""
    return _QUOTED.sub(r"\1\2…\2", str(exc))[:200]


def _defined(value: object, terms: frozenset[str]) -> str:
    text = str(value).strip() if value is not None else ""
    return text if not text or text in terms else "invalid"


def clear_value(value: object, pattern: re.Pattern[str]) -> str:
    """``value`` as text if it matches ``pattern`` (a UID or a code string), else
    ``"invalid"``: a malformed file must not smuggle free text into clear output."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return ""
    return text if pattern.match(text) else "invalid"


def _pixel_header(path: Path, ds: Dataset) -> dict[str, jcs.JSONValue] | None:
    photometric = str(ds.get("PhotometricInterpretation", ""))
    try:
        header: dict[str, jcs.JSONValue] = {
            "rows": int(ds.Rows), "columns": int(ds.Columns),
            "frames": int(ds.get("NumberOfFrames", 1) or 1),
            "samples": int(ds.get("SamplesPerPixel", 1)),
            "bits_allocated": int(ds.BitsAllocated),
            "pixel_representation": int(ds.get("PixelRepresentation", 0)),
            "photometric": _DECODED_AS.get(photometric, photometric),
        }
    except (AttributeError, TypeError, ValueError):
        return None  # no usable image description: the raw value is hashed instead
    size = 1
    for key in ("rows", "columns", "frames", "samples"):
        value = header[key]
        assert isinstance(value, int)
        if value < 1:
            raise DicomError(f"{path}: image attribute {key} is {value}")
        size *= value
    bits = header["bits_allocated"]
    assert isinstance(bits, int)
    size *= max(1, -(-bits // 8))
    if size > MAX_PIXEL_BYTES:
        raise DicomError(f"{path}: image would decode to {size} bytes (limit {MAX_PIXEL_BYTES}); "
                         "refused before allocating")
    return header


def _stored_as_decoded(ds: Dataset, syntax: str, header: dict[str, jcs.JSONValue],
                       raw: bytes) -> bool:
    """True when the stored Pixel Data already is the canonical form: native little endian,
    whole bytes with every bit stored (nothing to mask or sign-extend), samples interleaved,
    no padding. Decoding it would only copy it (tests/test_fingerprint.py checks this)."""
    bits = header["bits_allocated"]
    if (syntax not in _NATIVE_LITTLE_ENDIAN or bits not in (8, 16, 32)
            or ds.get("BitsStored") != bits
            or header["photometric"] not in ("MONOCHROME1", "MONOCHROME2", "RGB")
            or (header["samples"] != 1 and ds.get("PlanarConfiguration", 0) != 0)):
        return False
    size = 1
    for key in ("rows", "columns", "frames", "samples"):
        value = header[key]
        assert isinstance(value, int)
        size *= value
    return isinstance(raw, bytes) and len(raw) == size * (bits // 8)


def _decodable(syntax: str) -> bool:
    """True if an installed decoder handles this transfer syntax."""
    try:
        return bool(get_decoder(UID(syntax)).is_available)
    except (NotImplementedError, ValueError):
        return False


def _pixel_hash(path: Path, ds: Dataset) -> tuple[str, str]:
    raw = ds.get("PixelData")
    if raw is None:
        return hashlib.sha256(b"").hexdigest(), "raw"  # no image: documents, SR, ...
    header = _pixel_header(path, ds)
    if header is None:
        return hashlib.sha256(bytes(raw)).hexdigest(), "raw"
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if not _decodable(syntax):
        return hashlib.sha256(bytes(raw)).hexdigest(), "raw"
    digest = hashlib.sha256(PIXEL_CONTEXT + jcs.canonicalize(header) + b"\n")
    if _stored_as_decoded(ds, syntax, header, raw):
        digest.update(raw)  # what decoding would return, byte for byte; no copy made
        return digest.hexdigest(), "decoded"
    try:
        array = pixel_array(ds, as_rgb=False)
    except (NotImplementedError, RuntimeError) as exc:  # a decoder exists, and failed
        raise DicomError(f"{path}: pixel data cannot be decoded ({_scrub(exc)})") from None
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise DicomError(f"{path}: pixel data is malformed ({_scrub(exc)})") from None
    values = np.ascontiguousarray(array)
    if values.dtype.byteorder == ">" or (values.dtype.byteorder == "=" and
                                         np.little_endian is False):
        values = values.astype(values.dtype.newbyteorder("<"))
    digest.update(values.data)
    return digest.hexdigest(), "decoded"


def _meta_hash(path: Path, ds: Dataset) -> str:
    def drop_bulk(_element: Any) -> str:
        return ""

    model = {}
    try:
        for tag in ds.keys():
            key = f"{tag:08X}"
            if key not in _NOT_HEADER:  # skipped before conversion: no base64 of the pixels
                model[key] = ds[tag].to_json_dict(bulk_data_element_handler=drop_bulk,
                                                  bulk_data_threshold=1 << 30)
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        raise DicomError(f"{path}: header cannot be read as the DICOM JSON model "
                         f"({_scrub(exc)})") from None
    try:
        data = jcs.canonicalize(_plain(model))
    except CanonicalJSONError as exc:
        if "deeper than" in str(exc):  # found here rather than by the parser's recursion
            raise DicomError(f"{path}: sequences nested too deeply") from None
        raise DicomError(f"{path}: header value not representable ({_scrub(exc)})") from None
    return hashlib.sha256(META_CONTEXT + data).hexdigest()


def _plain(value: Any) -> jcs.JSONValue:
    """The DICOM JSON model with pydicom's str/int/float subclasses made plain, and the
    non-finite floats an FD/FL element may hold written as strings (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value) if abs(value) <= jcs.MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return float(value) if np.isfinite(value) else repr(float(value))
    return str(value)


def fingerprint_file(path: Path) -> Fingerprint:
    """All fingerprints of one file. Raises DicomError naming the file and the reason."""
    return fingerprint_dataset(path)[0]


def fingerprint_dataset(path: Path, read: FileBytes | None = None
                        ) -> tuple[Fingerprint, Dataset]:
    """The fingerprints of one file and its parsed dataset (pixel data included); ``read``
    is the file as ``read_file`` returned it, if the caller has it already.

    pydicom's warnings are not shown (they quote header values, which may be PHI); the one
    saying the body is not encoded as the transfer syntax claims makes the file refused.
    Raises DicomError naming the file and the reason.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _guarded(path, read)
        finally:
            _refuse_lying_syntax(path, caught)


def _refuse_lying_syntax(path: Path, caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        message = str(warning.message)
        found = _SYNTAX_MISMATCH.search(message)
        if found:
            raise DicomError(f"{path}: the transfer syntax says {found[1]} VR but the body is "
                             f"{found[2]} VR; refused rather than reinterpreted")
        if message.startswith("End of file reached before delimiter"):
            raise DicomError(f"{path}: the file ends inside an undefined-length element; "
                             "truncated")


def _guarded(path: Path, read: FileBytes | None) -> tuple[Fingerprint, Dataset]:
    try:
        return _fingerprint(path, read)
    except (DicomError, MemoryError, KeyboardInterrupt):
        raise
    except RecursionError:
        raise DicomError(f"{path}: sequences nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - pydicom parses lazily; any failure is bad input
        raise DicomError(f"{path}: malformed DICOM ({type(exc).__name__}: {_scrub(exc)})") \
            from None


def _fingerprint(path: Path, read: FileBytes | None) -> tuple[Fingerprint, Dataset]:
    read = read_file(path) if read is None else read
    flags = _preamble_flags(path, read.head[:_META_START])
    ds = _read(path, read)
    meta = ds.get("file_meta") or ds.file_meta
    syntax = clear_value(getattr(meta, "TransferSyntaxUID", ""), _UID)
    if not syntax:
        raise DicomError(f"{path}: file meta has no Transfer Syntax UID")
    if syntax == "invalid":
        raise DicomError(f"{path}: the Transfer Syntax UID in the file meta is not a UID")
    if syntax != DEFLATED:  # a deflated body's positions are in the inflated stream
        flags += _refuse_short_value(path, ds, read)
    pixel_sha256, kind = _pixel_hash(path, ds)
    return Fingerprint(
        path=str(path), file_sha256=read.file_sha256, pixel_sha256=pixel_sha256,
        pixel_hash_kind=kind, meta_sha256=_meta_hash(path, ds),
        sop_class_uid=clear_value(ds.get("SOPClassUID"), _UID),
        modality=_defined(ds.get("Modality"), MODALITIES),
        transfer_syntax_uid=syntax, flags=flags,
    ), ds
