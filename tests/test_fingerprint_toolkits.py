"""DICOM pixel fingerprints (DESIGN section 4) against other toolkits.

One synthetic image losslessly re-encoded by DCMTK (dcmconv, dcmcrle, dcmcjpeg, dcmcjpls) and by
pydicom's openjpeg encoder (DCMTK has no JPEG 2000 encoder) keeps one decoded pixel hash; every
file that pydicom and pydicom-data ship is fingerprinted or refused with a pinned reason; and
pydicom-data's families of one image in several lossless encodings keep one pixel hash.

DCMTK comes from `make system-deps` (Debian package dcmtk), pydicom-data from requirements.lock.
"""

from __future__ import annotations

import faulthandler
import importlib.metadata
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom.data
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.filereader import read_file_meta_info
from pydicom.pixels.utils import pixel_array
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from radledger.dicom import fingerprint
from radledger.dicom.fingerprint import Fingerprint, fingerprint_file
from radledger.dicom.synthetic import Acquisition, fake_patients, phantom, write_study
from radledger.errors import DicomError

PYDICOM_DATA = Path(pydicom.data.__file__).parent
PYDICOM_DATA_VERSION = "1.0.0"  # as in requirements.lock: the pins below are for this release
EXTRA_DATA = Path(str(importlib.metadata.distribution("pydicom-data")
                      .locate_file("data_store/data")))
DCMTK_ROOT = "1.2.276.0.7230010.3."  # OFFIS's Implementation Class UID root
PYDICOM_ROOT = "1.2.826.0.1.3680043.8.498."
HANG_SECONDS = 120  # one file; the slowest takes about 1.5 s


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom warns about odd but readable files (padding); that is not a test failure."""


@pytest.fixture(scope="module")
def dcmtk() -> None:
    missing = [t for t in ("dcmconv", "dcmcrle", "dcmcjpeg", "dcmcjpls") if not shutil.which(t)]
    if missing:
        pytest.fail(f"DCMTK tools {missing} are missing: run `make system-deps`")


# -- one image, many encoders -------------------------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """A lossless re-encoding: a DCMTK command (source and output appended), or, with no
    command, pydicom's own encoder. ``keeps_header``: only the transfer syntax changes."""

    name: str
    syntax: str
    command: tuple[str, ...]
    keeps_header: bool


ENCODINGS = [
    Encoding("implicit-le", ImplicitVRLittleEndian, ("dcmconv", "+ti"), True),
    Encoding("explicit-le", ExplicitVRLittleEndian, ("dcmconv", "+te"), True),
    Encoding("explicit-be", ExplicitVRBigEndian, ("dcmconv", "+tb"), True),
    Encoding("deflated", DeflatedExplicitVRLittleEndian, ("dcmconv", "+td"), True),
    Encoding("rle", RLELossless, ("dcmcrle",), True),
    # dcmcjpeg writes a Derivation Description, so the header changes: only pixels are compared
    Encoding("jpeg-lossless-sv1", JPEGLosslessSV1, ("dcmcjpeg", "+e1"), False),
    Encoding("jpeg-lossless-sv6", JPEGLossless, ("dcmcjpeg", "+el", "+sv", "6"), False),
    Encoding("jpeg-ls-lossless", JPEGLSLossless, ("dcmcjpls", "+el"), False),
    Encoding("jpeg2000-lossless", JPEG2000Lossless, (), True),
]
BY_NAME = {e.name: e for e in ENCODINGS}


def _instance(name: str, sop_class: str, pixels: np.ndarray, photometric: str,
              bits_stored: int) -> Dataset:
    """A minimal instance holding ``pixels`` (rows, columns[, samples], frames first)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["radledger toolkit test", name])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["radledger toolkit test"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["radledger toolkit test", "series"])
    ds.Modality = "CT" if sop_class == CTImageStorage else "OT"
    ds.PatientName, ds.PatientID = "Fakename^Toolkit", "FAKE-TOOLKIT"
    ds.set_pixel_data(pixels, photometric, bits_stored, generate_instance_uid=False)
    return ds


def _write(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _ct_slice(folder: Path) -> Path:
    """(a) A 64x64 16-bit signed CT slice of radledger's phantom (Hounsfield units)."""
    return _write(_instance("ct", CTImageStorage, phantom(64, 64, 0, 1, 0), "MONOCHROME2", 16),
                  folder / "ct.dcm")


def _multiframe(folder: Path) -> Path:
    """(b) Four phantom slices as one multi-frame image, 12 bits stored in 16, unsigned: the
    common CT storage layout, whose unused high bits the JPEG codecs must not disturb."""
    frames = np.stack([phantom(64, 64, k, 4, 1) for k in range(4)]).astype(np.int32) + 1024
    ds = _instance("multiframe", MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
                   frames.astype(np.uint16), "MONOCHROME2", 12)
    return _write(ds, folder / "multiframe.dcm")


def _rgb_pixels() -> np.ndarray:
    """47x63 (odd, so the native Pixel Data ends in a pad byte), 8-bit RGB: ramps and noise."""
    y, x = np.mgrid[0:47, 0:63]
    noise = np.random.default_rng(7).integers(0, 64, size=(47, 63))
    return np.stack([x * 4, y * 5, (x * y) % 192 + noise], axis=-1).astype(np.uint8)


def _rgb(folder: Path) -> Path:
    """(c) 8-bit RGB, colour-by-pixel (Planar Configuration 0)."""
    ds = _instance("rgb", SecondaryCaptureImageStorage, _rgb_pixels(), "RGB", 8)
    return _write(ds, folder / "rgb.dcm")


def _rgb_planar(folder: Path) -> Path:
    """(c') The same RGB pixels colour-by-plane (Planar Configuration 1)."""
    pixels = _rgb_pixels()
    ds = _instance("rgb-planar", SecondaryCaptureImageStorage, pixels, "RGB", 8)
    ds.PlanarConfiguration = 1
    planes = np.ascontiguousarray(pixels.transpose(2, 0, 1)).tobytes()
    ds.PixelData = planes + b"\0" * (len(planes) % 2)
    return _write(ds, folder / "rgb-planar.dcm")


# Every encoder handles every image here, colour-by-plane included (DCMTK 3.6.7, Debian 12):
# dcmcjpeg and dcmcjpls write colour-by-pixel, which changes the header but not the pixels.
IMAGES: dict[str, Callable[[Path], Path]] = {
    "ct-16bit-signed": _ct_slice, "multiframe-12bit": _multiframe,
    "rgb-8bit": _rgb, "rgb-8bit-planar": _rgb_planar,
}


def _encode(source: Path, encoding: Encoding, out: Path) -> Path:
    if not encoding.command:
        ds = dcmread(source)
        ds.compress(encoding.syntax, encoding_plugin="pylibjpeg", generate_instance_uid=False)
        return _write(ds, out)
    done = subprocess.run([*encoding.command, source, out], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"{encoding.command} failed: {done.stderr}"
    return out


def _implementation(path: Path) -> str:
    uid = str(read_file_meta_info(path).ImplementationClassUID)
    return "dcmtk" if uid.startswith(DCMTK_ROOT) else "pydicom" if uid.startswith(
        PYDICOM_ROOT) else uid


@pytest.mark.usefixtures("dcmtk")
@pytest.mark.parametrize("image", list(IMAGES))
def test_lossless_reencodings_by_other_toolkits_keep_one_pixel_hash(image: str,
                                                                    tmp_path: Path) -> None:
    source = IMAGES[image](tmp_path)
    original = fingerprint_file(source)
    outputs = {e.name: _encode(source, e, tmp_path / f"{e.name}.dcm") for e in ENCODINGS}
    prints = {name: fingerprint_file(path) for name, path in outputs.items()}
    # each tool did what was asked: the intended syntax, written by the intended toolkit
    assert {n: p.transfer_syntax_uid for n, p in prints.items()} == {
        e.name: e.syntax for e in ENCODINGS}
    assert {n: _implementation(path) for n, path in outputs.items()} == {
        e.name: "dcmtk" if e.command else "pydicom" for e in ENCODINGS}
    assert original.pixel_hash_kind == "decoded"
    assert {n: p.pixel_hash_kind for n, p in prints.items()} == dict.fromkeys(prints, "decoded")
    assert {n: p.pixel_sha256 for n, p in prints.items()} == dict.fromkeys(
        prints, original.pixel_sha256)
    assert {e.name: prints[e.name].meta_sha256 for e in ENCODINGS if e.keeps_header} == {
        e.name: original.meta_sha256 for e in ENCODINGS if e.keeps_header}


def _rgb_as_ybr_rct(folder: Path) -> tuple[Path, Path]:
    """The RGB image, and the same in JPEG 2000 lossless with the reversible colour transform,
    labelled YBR_RCT as PS3.5 section 8.2.4 requires (GDCM's US1_J2KR.dcm is such a file).

    pydicom applies the transform only to a dataset labelled YBR_RCT, given the RGB pixels.
    """
    source = _rgb(folder)
    ds = dcmread(source)
    ds.PhotometricInterpretation = "YBR_RCT"
    ds.compress(JPEG2000Lossless, _rgb_pixels(), encoding_plugin="pylibjpeg",
                generate_instance_uid=False)
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    cod = codestream.index(b"\xff\x52")  # COD marker: Lcod 2, Scod 1, order 1, layers 2, MCT 1
    assert codestream[cod + 8] == 1, "no multiple component transform"
    return source, _write(ds, folder / "rgb-ybr-rct.dcm")


def test_jpeg2000_with_the_reversible_colour_transform_decodes_to_the_rgb_pixels(
        tmp_path: Path) -> None:
    source, ybr_rct = _rgb_as_ybr_rct(tmp_path)
    assert np.array_equal(pixel_array(dcmread(ybr_rct), as_rgb=False), _rgb_pixels())
    assert np.array_equal(pixel_array(dcmread(source), as_rgb=False), _rgb_pixels())


def test_jpeg2000_with_the_reversible_colour_transform_keeps_the_rgb_pixel_hash(
        tmp_path: Path) -> None:
    source, ybr_rct = _rgb_as_ybr_rct(tmp_path)
    assert fingerprint_file(ybr_rct).pixel_sha256 == fingerprint_file(source).pixel_sha256


@pytest.mark.usefixtures("dcmtk")
@pytest.mark.parametrize("case", ["dcmtk-rle-less-8-bytes", "dcmtk-rle-less-1000-bytes",
                                  "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm"])
def test_a_compressed_file_cut_short_is_refused(case: str, tmp_path: Path) -> None:
    if case.startswith("dcmtk"):
        path = _encode(_multiframe(tmp_path), BY_NAME["rle"], tmp_path / "rle.dcm")
        path.write_bytes(path.read_bytes()[:-int(case.split("-")[3])])
    else:
        path = _shipped_files()[case]
    with pytest.raises(DicomError):
        fingerprint_file(path)


# -- everything pydicom and pydicom-data ship ----------------------------------------------

# name -> part of the reason; everything else is fingerprinted
REJECTED = {
    **dict.fromkeys([
        # not DICOM files
        "pydicom/test_files/README.txt", "pydicom/test_files/crayons.icc",
        "pydicom/test_files/dicomdirtests/README.txt",
        "pydicom/test_files/dicomdirtests/TINY_ALPHA/README", "pydicom/test_files/rtplan.dump",
        "pydicom/test_files/rtstruct.dump", "pydicom/test_files/test1.json",
        "pydicom/test_files/test_PN.json", "pydicom/test_files/zipMR.gz",
        "pydicom/charset_files/FileInfo.txt", "pydicom/palettes/README.md",
        # datasets without the 128-byte preamble and DICM prefix of the file format
        "pydicom/test_files/no_meta.dcm", "pydicom/test_files/ExplVR_BigEndNoMeta.dcm",
        "pydicom/test_files/ExplVR_LitEndNoMeta.dcm", "pydicom/test_files/rtstruct.dcm",
        "pydicom-data/OT-PAL-8-face.dcm",
    ], "no 'DICM' prefix"),
    "pydicom/test_files/meta_missing_tsyntax.dcm": "no Transfer Syntax UID",
    "pydicom/test_files/MR_truncated.dcm": "past the end of the file",
    "pydicom/test_files/rtplan_truncated.dcm": "past the end of the file",
    "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm": "ends inside an undefined-length",
    # explicit VR in the file meta, implicit VR in the body: never silently reinterpreted
    "pydicom/test_files/SC_rgb_jpeg.dcm": "refused rather than reinterpreted",
    # an IS value of '1A'
    "pydicom/test_files/badVR.dcm": "header cannot be read as the DICOM JSON model",
    # a decoder exists for these syntaxes and fails on the stream: corrupt, not undecodable
    "pydicom/test_files/JPEG-lossy.dcm": "pixel data cannot be decoded",  # misplaced marker
    "pydicom/test_files/JPEG2000-embedded-sequence-delimiter.dcm": "pixel data cannot be decoded",
}
# Accepted, with Pixel Data, but hashed raw: no Bits Allocated, so no image to decode.
RAW_PIXEL_DATA = {"pydicom/test_files/nested_priv_SQ.dcm"}
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _shipped_files() -> dict[str, Path]:
    files = {f"pydicom/{p.relative_to(PYDICOM_DATA)}": p
             for folder in ("test_files", "charset_files", "palettes")
             for p in (PYDICOM_DATA / folder).rglob("*") if p.is_file()}
    files |= {f"pydicom-data/{p.relative_to(EXTRA_DATA)}": p
              for p in EXTRA_DATA.rglob("*") if p.is_file()}
    return files


@contextmanager
def _fails_loudly_if_hung(seconds: int) -> Iterator[None]:
    """A hang dumps every thread's stack and ends the run, rather than stalling CI."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_every_shipped_file_is_fingerprinted_or_refused_for_a_pinned_reason() -> None:
    assert importlib.metadata.version("pydicom-data") == PYDICOM_DATA_VERSION
    files = _shipped_files()
    assert set(REJECTED) | RAW_PIXEL_DATA <= set(files)
    accepted: dict[str, Fingerprint] = {}
    refused: dict[str, str] = {}
    for name, path in files.items():
        with _fails_loudly_if_hung(HANG_SECONDS):
            try:  # any other exception fails the test with its traceback
                accepted[name] = fingerprint_file(path)
            except DicomError as exc:
                refused[name] = str(exc)
    assert set(refused) == set(REJECTED)
    assert {n: why for n, why in refused.items()
            if REJECTED[n] not in why or str(files[n]) not in why} == {}
    assert {n for n, p in accepted.items()
            if p.pixel_hash_kind == "raw" and p.pixel_sha256 != EMPTY_SHA256} == RAW_PIXEL_DATA


# One image in several lossless encodings (README of pydicom's test files). Left out: the
# *_J2KI/*_UNCI pairs (lossy JPEG 2000 and its decoded copy), JPEG2000.dcm (syntax .91, may be
# lossy), the SC_rgb_dcmtk_* lossy JPEGs and their *_dcmd decoded copies.
_X, _T = "pydicom-data/", "pydicom/test_files/"
LOSSLESS_FAMILIES = {
    "emri_small (10 frames, 12 of 16 bits)": [
        f"{_X}emri_small.dcm", f"{_X}emri_small_big_endian.dcm", f"{_X}emri_small_RLE.dcm",
        f"{_X}emri_small_jpeg_ls_lossless.dcm", f"{_X}emri_small_jpeg_2k_lossless.dcm"],
    "OBXXXX1A (palette colour)": [
        f"{_X}OBXXXX1A.dcm", f"{_X}OBXXXX1A_expb.dcm", f"{_X}OBXXXX1A_rle.dcm"],
    "OBXXXX1A_2frame": [f"{_X}OBXXXX1A_2frame.dcm", f"{_X}OBXXXX1A_expb_2frame.dcm",
                        f"{_X}OBXXXX1A_rle_2frame.dcm"],
    "SC_rgb": [f"{_X}SC_rgb.dcm", f"{_X}SC_rgb_expb.dcm", f"{_T}SC_rgb_rle.dcm",
               f"{_T}SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless SV1, by GDCM
               f"{_T}SC_rgb_gdcm_KY.dcm",  # JPEG 2000 by GDCM, decoded bit-exact
               f"{_X}SC_rgb_gdcm2k_uncompressed.dcm"],  # ... and decompressed by GDCM
    "SC_rgb_2frame": [f"{_X}SC_rgb_2frame.dcm", f"{_X}SC_rgb_expb_2frame.dcm",
                      f"{_T}SC_rgb_rle_2frame.dcm"],
    "SC_rgb_16bit": [f"{_X}SC_rgb_16bit.dcm", f"{_X}SC_rgb_expb_16bit.dcm",
                     f"{_T}SC_rgb_rle_16bit.dcm"],
    "SC_rgb_16bit_2frame": [f"{_X}SC_rgb_16bit_2frame.dcm", f"{_X}SC_rgb_expb_16bit_2frame.dcm",
                            f"{_T}SC_rgb_rle_16bit_2frame.dcm"],
    "SC_rgb_32bit": [f"{_X}SC_rgb_32bit.dcm", f"{_X}SC_rgb_expb_32bit.dcm",
                     f"{_T}SC_rgb_rle_32bit.dcm"],
    "SC_rgb_32bit_2frame": [f"{_X}SC_rgb_32bit_2frame.dcm", f"{_X}SC_rgb_expb_32bit_2frame.dcm",
                            f"{_T}SC_rgb_rle_32bit_2frame.dcm"],
    "color-px/color-pl (colour by pixel, by plane)": [
        f"{_X}color-px.dcm", f"{_X}color-pl.dcm"],
    "liver (1-bit segmentation, 3 frames)": [f"{_X}liver.dcm", f"{_X}liver_expb.dcm"],
    "gdcm-US-ALOKA-16 (implicit little, big endian)": [
        f"{_X}gdcm-US-ALOKA-16.dcm", f"{_X}gdcm-US-ALOKA-16_big.dcm"],
    "693 (14 bits signed, JPEG 2000 lossless)": [f"{_X}693_UNCR.dcm", f"{_X}693_J2KR.dcm"],
    "MR2 (12 bits, JPEG 2000 lossless)": [f"{_X}MR2_UNCR.dcm", f"{_X}MR2_J2KR.dcm"],
    "RG1 (15 bits, JPEG 2000 lossless)": [f"{_X}RG1_UNCR.dcm", f"{_X}RG1_J2KR.dcm"],
    "RG3 (10 bits, JPEG 2000 lossless)": [f"{_X}RG3_UNCR.dcm", f"{_X}RG3_J2KR.dcm"],
    "US1 (RGB, JPEG 2000 lossless as YBR_RCT)": [f"{_X}US1_UNCR.dcm", f"{_X}US1_J2KR.dcm"],
}
@pytest.mark.parametrize("family", list(LOSSLESS_FAMILIES))
def test_pydicom_data_lossless_families_keep_one_pixel_hash(family: str) -> None:
    files = _shipped_files()
    prints = {name: fingerprint_file(files[name]) for name in LOSSLESS_FAMILIES[family]}
    assert {n: p.pixel_hash_kind for n, p in prints.items()} == dict.fromkeys(prints, "decoded")
    assert len({p.pixel_sha256 for p in prints.values()}) == 1, {
        n: p.pixel_sha256[:12] for n, p in prints.items()}
    assert len({p.file_sha256 for p in prints.values()}) == len(prints)


def test_pixel_data_hashed_as_stored_equals_the_decoded_values(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Native little-endian pixels are hashed without decoding; the hash must be the one
    decoding gives, for every shipped file where that shortcut applies."""
    used: list[str] = []
    shortcut = fingerprint._stored_as_decoded  # noqa: SLF001

    def spy(*args: Any) -> bool:
        taken = shortcut(*args)
        if taken:
            used.append("yes")
        return taken

    files = {n: p for n, p in _shipped_files().items() if n not in REJECTED}
    synthetic = tmp_path / "synthetic"
    write_study(synthetic, next(fake_patients(1)), Acquisition(slices=2, rows=32, columns=32))
    files |= {p.name: p for p in synthetic.iterdir()}
    monkeypatch.setattr(fingerprint, "_stored_as_decoded", spy)
    fast = {n: fingerprint_file(p).pixel_sha256 for n, p in files.items()}
    assert len(used) > 60  # the shortcut is taken for many files
    monkeypatch.setattr(fingerprint, "_stored_as_decoded", lambda *_args: False)
    slow = {n: fingerprint_file(p).pixel_sha256 for n, p in files.items()}
    assert {n for n in files if fast[n] != slow[n]} == set()
