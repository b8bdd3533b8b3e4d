"""Small PNG previews of a registered DICOM image, for the web UI's study page.

The caller decides whether an instance may be shown at all (only de-identified copies, from
the ledger's entries); this module only checks that the file on disk is still the one that
was registered (its SHA-256), so a file swapped behind radledger's back, perhaps an
identified original, is refused rather than drawn. The file is parsed with the same guards
as ingestion (``fingerprint_dataset``), the first frame decoded, scaled to 8 bits between its
1st and 99th percentiles, and written as a PNG with ``zlib``: no imaging library needed.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from pydicom.pixels.utils import pixel_array

from radledger.dicom.fingerprint import fingerprint_dataset, read_file
from radledger.errors import DicomError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_SIDE = 128
_GREY, _RGB = 0, 2  # PNG colour types


def thumbnail_png(path: Path, file_sha256: str, side: int = DEFAULT_SIDE) -> bytes:
    """A PNG of the first frame of the image at ``path``, at most ``side`` pixels a side.

    Requires side >= 1. Raises DicomError if the file is not the registered one (its SHA-256
    is not ``file_sha256``), is not readable DICOM, or holds no image that can be decoded.
    """
    read = read_file(path)
    if read.file_sha256 != file_sha256:
        raise DicomError(f"{path.name}: the file is not the registered one (SHA-256 differs); "
                         "no preview")
    _, ds = fingerprint_dataset(path, read)
    if "PixelData" not in ds:
        raise DicomError(f"{path.name}: no pixel data to preview")
    try:
        frame = pixel_array(ds, index=0 if int(ds.get("NumberOfFrames", 1) or 1) > 1
                            else None, as_rgb=True)
    except Exception as exc:  # noqa: BLE001 - decoders raise many kinds; all mean "cannot"
        raise DicomError(f"{path.name}: pixel data cannot be decoded for a preview "
                         f"({type(exc).__name__})") from None
    photometric = str(ds.get("PhotometricInterpretation", ""))
    return encode_png(_to_8bit(_shrink(np.asarray(frame), side),
                               invert=photometric == "MONOCHROME1"))


def _shrink(image: np.ndarray, side: int) -> np.ndarray:
    """Every n-th pixel, so that neither dimension exceeds ``side``."""
    if image.ndim not in (2, 3):
        raise DicomError(f"cannot preview an image of {image.ndim} dimensions")
    step = max(1, -(-max(image.shape[0], image.shape[1]) // side))
    return image[::step, ::step]


def _to_8bit(image: np.ndarray, *, invert: bool) -> np.ndarray:
    values = image.astype(np.float64)
    low, high = np.percentile(values, (1, 99)) if values.size else (0.0, 0.0)
    if high <= low:
        high = low + 1.0
    scaled = np.clip((values - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
    return 255 - scaled if invert else scaled


def encode_png(image: np.ndarray) -> bytes:
    """An 8-bit greyscale (rows × columns) or RGB (rows × columns × 3) array as a PNG.

    Requires dtype uint8. Raises DicomError for another shape.
    """
    if image.ndim == 2:  # noqa: PLR2004
        colour, channels = _GREY, 1
    elif image.ndim == 3 and image.shape[2] == 3:  # noqa: PLR2004
        colour, channels = _RGB, 3
    else:
        raise DicomError(f"cannot write an image of shape {image.shape} as PNG")
    rows, columns = image.shape[0], image.shape[1]
    raw = np.ascontiguousarray(image, dtype=np.uint8).reshape(rows, columns * channels)
    scanlines = np.hstack([np.zeros((rows, 1), dtype=np.uint8), raw])  # filter type 0
    header = struct.pack(">IIBBBBB", columns, rows, 8, colour, 0, 0, 0)
    return (PNG_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)) + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
