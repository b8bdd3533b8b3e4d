"""DICOM fingerprints (DESIGN section 4) on pydicom's bundled test files, written by other
tools: one image in many encodings keeps its pixel and header hashes; bad input is a typed
error per file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom.data
import pytest
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML, DeflatedExplicitVRLittleEndian

from radledger.dicom.fingerprint import fingerprint_file
from radledger.errors import DicomError

from bad_dicom import deflate_bomb, minimal_file, nested_thousands_deep

TEST_FILES = Path(os.path.dirname(pydicom.data.__file__)) / "test_files"
# one 64x64 MR image, losslessly re-encoded by different toolkits
MR_SMALL = ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
            "MR_small_expb.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
            "MR_small_jp2klossless.dcm", "MR_small_padded.dcm"]


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom warns about odd but readable files (padding); that is not a test failure."""


def test_one_image_in_eight_encodings_has_one_pixel_hash() -> None:
    prints = [fingerprint_file(TEST_FILES / name) for name in MR_SMALL]
    assert {p.pixel_hash_kind for p in prints} == {"decoded"}
    assert len({p.pixel_sha256 for p in prints}) == 1
    assert len({p.meta_sha256 for p in prints}) == 1  # header unchanged by re-encoding
    assert len({p.file_sha256 for p in prints}) == len(MR_SMALL)
    assert len({p.transfer_syntax_uid for p in prints}) == 6  # two big endian, two explicit LE


def test_file_hash_is_the_sha256_of_the_bytes() -> None:
    path = TEST_FILES / "CT_small.dcm"
    assert fingerprint_file(path).file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_colour_and_multiframe_keep_their_hashes_across_encodings() -> None:
    rgb_rle = fingerprint_file(TEST_FILES / "SC_rgb_rle.dcm")
    rgb_jpeg_lossless = fingerprint_file(TEST_FILES / "SC_rgb_jpeg_gdcm.dcm")  # Process 14
    assert rgb_rle.pixel_hash_kind == "decoded"
    assert rgb_rle.pixel_sha256 == rgb_jpeg_lossless.pixel_sha256
    frames = fingerprint_file(TEST_FILES / "rtdose.dcm")  # multi-frame
    frames_rle = fingerprint_file(TEST_FILES / "rtdose_rle.dcm")
    assert frames.pixel_sha256 == frames_rle.pixel_sha256
    assert frames.pixel_sha256 != fingerprint_file(TEST_FILES / "rtdose_1frame.dcm").pixel_sha256


def test_a_header_change_changes_only_the_meta_hash(tmp_path: Path) -> None:


    original = TEST_FILES / "MR_small.dcm"
    ds = dcmread(original)
    ds.SeriesDescription = "changed"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed)
    a, b = fingerprint_file(original), fingerprint_file(changed)
    assert a.pixel_sha256 == b.pixel_sha256
    assert a.meta_sha256 != b.meta_sha256


def test_no_decoder_falls_back_to_the_raw_pixel_data(tmp_path: Path) -> None:
    ds = dcmread(TEST_FILES / "MR_small.dcm")
    frame = b"not really MPEG-2, and no decoder will try"
    ds.PixelData = encapsulate([frame])
    ds.file_meta.TransferSyntaxUID = MPEG2MPML  # pydicom has no MPEG-2 decoder
    path = tmp_path / "mpeg2.dcm"
    ds.save_as(path)
    video = fingerprint_file(path)
    assert video.pixel_hash_kind == "raw"
    assert video.pixel_sha256 == hashlib.sha256(dcmread(path).PixelData).hexdigest()


@pytest.mark.parametrize(("name", "reason"), [
    ("no_meta.dcm", "no 'DICM' prefix"),
    ("ExplVR_LitEndNoMeta.dcm", "no 'DICM' prefix"),
    ("README.txt", "no 'DICM' prefix"),
    ("meta_missing_tsyntax.dcm", "no Transfer Syntax UID"),
    ("MR_truncated.dcm", "past the end of the file"),
    ("rtplan_truncated.dcm", "past the end of the file"),
    ("SC_rgb_jpeg.dcm", "refused rather than reinterpreted"),  # explicit in meta, implicit body
    ("JPEG-lossy.dcm", "pixel data cannot be decoded"),  # a decoder exists; the stream is bad
])
def test_bad_files_are_typed_errors_naming_the_file(name: str, reason: str) -> None:
    with pytest.raises(DicomError, match=reason) as caught:
        fingerprint_file(TEST_FILES / name)
    assert name in str(caught.value)


@pytest.mark.parametrize("name", ["CT_small.dcm", "SC_rgb_rle.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm"])
def test_truncated_at_any_offset_is_refused(name: str, tmp_path: Path) -> None:
    """Every cut is refused unless it lands exactly on an element boundary, leaving a
    well-formed shorter file: before the Pixel Data it is flagged as an image without pixels;
    after it only Data Set Trailing Padding is gone, which no fingerprint but the file hash
    covers (RELIABILITY 21)."""
    whole = fingerprint_file(TEST_FILES / name)
    data = (TEST_FILES / name).read_bytes()
    path = tmp_path / "cut.dcm"
    accepted = []
    for cut in range(0, len(data), max(1, len(data) // 1500)):
        path.write_bytes(data[:cut])
        try:
            cut_print = fingerprint_file(path)
        except DicomError:
            continue
        accepted.append((cut, cut_print))
    assert all("image-without-pixel-data" in p.flags or
               (p.pixel_sha256, p.meta_sha256) == (whole.pixel_sha256, whole.meta_sha256)
               for _, p in accepted), [(cut, p.flags) for cut, p in accepted]


def test_executable_preamble_is_flagged(tmp_path: Path) -> None:
    data = bytearray((TEST_FILES / "CT_small.dcm").read_bytes())
    data[:2] = b"MZ"
    path = tmp_path / "polyglot.dcm"
    path.write_bytes(bytes(data))
    assert fingerprint_file(path).flags == ("preamble-executable",)
    # CT_small's preamble is a TIFF header: unusual, flagged, but not an executable
    assert fingerprint_file(TEST_FILES / "CT_small.dcm").flags == ("preamble-nonzero",)


def test_dimensions_that_would_exhaust_memory_are_refused(tmp_path: Path) -> None:


    ds = dcmread(TEST_FILES / "MR_small.dcm")
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000
    path = tmp_path / "huge.dcm"
    ds.save_as(path)
    with pytest.raises(DicomError, match="refused before allocating"):
        fingerprint_file(path)


def test_cli_json_shape_and_exit_code(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "radledger"
    done = subprocess.run([exe, "fingerprint", "--json", TEST_FILES / "CT_small.dcm",
                           TEST_FILES / "README.txt"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2
    assert "README.txt" in done.stderr and "Traceback" not in done.stderr
    (out,) = json.loads(done.stdout)
    assert set(out) == {"path", "file_sha256", "pixel_sha256", "pixel_hash_kind",
                        "meta_sha256", "sop_class_uid", "modality", "transfer_syntax_uid"}
    assert out["modality"] == "CT" and out["pixel_hash_kind"] == "decoded"


def test_sequences_nested_thousands_deep_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.dcm"
    nested_thousands_deep(path)
    with pytest.raises(DicomError, match="nested too deeply"):
        fingerprint_file(path)


def test_a_deflate_bomb_is_refused_without_inflating_it(tmp_path: Path) -> None:
    path = tmp_path / "bomb.dcm"
    deflate_bomb(path)  # 300 MiB of zeros in an OB element, about 300 kB deflated
    assert path.stat().st_size < 2 << 20
    with pytest.raises(DicomError, match="deflate bomb"):
        fingerprint_file(path)


def test_a_genuine_deflated_file_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "deflated.dcm"
    minimal_file(path, DeflatedExplicitVRLittleEndian)
    assert fingerprint_file(path).transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    written_elsewhere = fingerprint_file(TEST_FILES / "image_dfl.dcm")
    assert written_elsewhere.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    assert written_elsewhere.pixel_hash_kind == "decoded"
