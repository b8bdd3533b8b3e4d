"""De-identification by PS3.15 Annex E (issue 4; RELIABILITY 8, 19, 27, 31).

The main fixture, ``phi_everywhere.dcm``, carries a value in every attribute Table E.1-1 names
(a canary that names its own tag, ``CANARY00100010``, where the VR holds text), nested
sequences, private blocks, curves and overlays. Each option set is checked attribute by
attribute against an oracle that reads the generated table directly (``expected``), and the
written bytes are searched for every canary: one may remain only where the table keeps it.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pydicom.data
import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr.codedict import codes
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from radledger.core.pseudonym import pseudonym
from radledger.dicom import deid_profile, deid_table, deidentify
from radledger.dicom.deid_values import SHIFT_DAYS, date_shift_days, replacement_uid
from radledger.dicom.deidentify import (
    BURNED_IN_REVIEW,
    burned_in_flags,
    deidentify_dataset,
    deidentify_file,
)
from radledger.dicom.fingerprint import fingerprint_dataset, fingerprint_file
from radledger.errors import DicomError, InputError

from bad_dicom import polyglot

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
ROOT = Path(__file__).resolve().parents[1]
KEY = bytes(range(32))
PATIENT_ID = "CANARYPATIENTID"
CANARY_DATE, CANARY_TIME, CANARY_DATETIME = "19730415", "101112", "19730415101112"
UNLISTED_DATE = "19860704"
UID_ROOT = "1.2.826.0.1.3680043.10.999."
# Retain Safe Private needs rules: tested on its own below
OPTION_SETS = [frozenset(), *(frozenset({o}) for o in sorted(deid_profile.SUPPORTED)
                              if o != deid_profile.SAFE_PRIVATE),
               frozenset({"retain-longitudinal-modified-dates", "retain-patient-characteristics",
                          "retain-device-identity", "clean-descriptors"})]
CHOICE = {"Z/D": "D", "X/D": "D", "X/Z/D": "D", "X/Z": "Z", "X/Z/U*": "U"}
MODIFIED = "retain-longitudinal-modified-dates"
OVERRIDDEN = {0x00100010, 0x00100020}  # PatientName, PatientID: the pseudonym
CONCRETE = [r for r in deid_table.ROWS if re.fullmatch(r"[0-9A-F]{8}", r[0])]


def expected(row: tuple[str, str, str, str, str], options: frozenset[str]) -> tuple[str, bool]:
    """The oracle: (action, whether a C is a date shift), read off the table row."""
    _, basic, cells, _, _ = row
    given = {o: cells[deid_table.OPTION_COLUMNS.index(o)] for o in options}
    given = {o: c for o, c in given.items() if c != "."}
    if "C" in given.values():
        return "C", [o for o, c in given.items() if c == "C"] == [MODIFIED]
    code = "K" if given else basic
    return CHOICE.get(code, code), False


def _vr(tag: int, name: str) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:  # newer than pydicom's dictionary: the VR the name implies
        return "SQ" if name.endswith("Sequence") else "DT" if name.endswith("DateTime") \
            else "LO"


def canary_value(tag: int, vr: str) -> object:
    text = f"CANARY{tag:08X}"
    values: dict[str, object] = {
        "AS": "042Y", "AT": 0x00100010, "DA": CANARY_DATE, "DS": "42.5", "DT": CANARY_DATETIME,
        "FD": 42.5, "FL": 42.5, "IS": "42", "TM": CANARY_TIME, "UI": f"{UID_ROOT}{tag}",
        "UR": f"http://canary.invalid/{text}",
    }
    if vr in values:
        return values[vr]
    if vr in {"SL", "SS", "SV", "UL", "US", "UV"}:
        return 42
    if vr in {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}:
        return text.encode() + b"\0\0"
    if vr == "SQ":
        item = Dataset()
        item.PersonName = f"CANARYSQ{tag:08X}"  # D at every level: never kept
        item.ReferencedSOPInstanceUID = f"{UID_ROOT}{tag}.1"
        item.private_block(0x0029, "CANARYCREATOR", create=True).add_new(0x01, "LO",
                                                                         "CANARYPRIVATE")
        return [item]
    return text


def phi_everywhere(path: Path) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.SourceApplicationEntityTitle = "CANARYSOURCEAE"
    for tag_hex, _, _, _, name in CONCRETE:
        tag = int(tag_hex, 16)
        if tag >> 16 in (0x0000, 0x0002):
            continue  # command group: not in files; file meta: set above and below
        vr = _vr(tag, name)
        ds.add(DataElement(tag, vr, canary_value(tag, vr)))
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SOPClassUID, ds.Modality, ds.BurnedInAnnotation = CTImageStorage, "CT", "NO"
    ds.PatientID, ds.PatientName = PATIENT_ID, "CANARY^PATIENTNAME"
    ds.add_new(0x50000010, "US", 7)  # (50xx,eeee): curves
    ds.add_new(0x50023000, "OB", b"CANARYCURVE!")
    ds.add_new(0x60003000, "OW", b"CANARYOVERLAY!")
    ds.add_new(0x60004000, "LT", "CANARYOVERLAYCOMMENT")
    ds.add_new(0x60000010, "US", 8)  # an overlay attribute the table does not name
    block = ds.private_block(0x0009, "CANARYCREATOR", create=True)
    block.add_new(0x01, "LO", "CANARYPRIVATE")
    ds.SecondaryReviewDate = UNLISTED_DATE  # attributes the table does not name
    item = canary_value(0x00081115, "SQ")[0]
    item.SeriesInstanceUID, item.ExpirationDateTime = f"{UID_ROOT}{0x0020000E}.2", UNLISTED_DATE
    ds.ReferencedSeriesSequence = [item]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(range(32))
    ds.save_as(path, enforce_file_format=True)
    return ds


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset]:
    path = tmp_path_factory.mktemp("phi") / "phi_everywhere.dcm"
    return path, phi_everywhere(path)


@pytest.fixture(scope="module", params=OPTION_SETS, ids=lambda o: "+".join(sorted(o)) or "basic")
def done(request: pytest.FixtureRequest, source: tuple[Path, Dataset],
         tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[frozenset[str], Dataset, Dataset, bytes]:
    options: frozenset[str] = request.param
    out = tmp_path_factory.mktemp("out") / "deid.dcm"
    result = deidentify_file(source[0], out, KEY, options)
    assert result.path == out and result.output is not None and result.source is not None
    return options, dcmread(source[0]), dcmread(out), out.read_bytes()


def _empty(element: DataElement) -> bool:
    return element.value in (None, "", b"", [])


def _check_clean(before: DataElement, after: DataElement | None, dates: bool, shift: int,
                 fallback: str) -> None:
    vr = before.VR
    if dates and vr == "DA":
        assert after is not None and after.value == _shifted(CANARY_DATE, shift)
    elif dates and vr == "DT":
        assert after is not None and after.value == _shifted(CANARY_DATE, shift) + CANARY_TIME
    elif dates and vr in ("TM", "SH"):
        assert after is not None and after.value == before.value
    elif not dates and vr == "SQ":
        assert after is not None and len(after.value) == 1
    elif not dates and vr in {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"}:
        assert after is not None and after.value == "CLEANED"
    else:
        _check_action(before, after, fallback, shift)


def _check_action(before: DataElement, after: DataElement | None, code: str, shift: int) -> None:
    if code == "X":
        assert after is None
    elif code == "Z":
        assert after is not None and _empty(after)
    elif code == "D":
        assert after is not None and not _empty(after) and after.value != before.value
        if before.VR == "UI":
            assert after.value == replacement_uid(KEY, before.value)
    elif code == "K":
        assert after is not None
        if before.VR != "SQ":
            assert after.value == before.value
    elif code == "U":
        assert after is not None
        if before.VR == "UI":
            assert after.value == replacement_uid(KEY, before.value)
        else:  # U*: the sequence kept, its UIDs replaced
            item = after.value[0]
            assert item.ReferencedSOPInstanceUID == replacement_uid(
                KEY, before.value[0].ReferencedSOPInstanceUID)


def _shifted(date: str, days: int) -> str:
    moved = datetime.date(int(date[:4]), int(date[4:6]), int(date[6:])) + \
        datetime.timedelta(days=days)
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"


def test_every_attribute_gets_its_action(done: tuple[frozenset[str], Dataset, Dataset, bytes]
                                         ) -> None:
    options, before, after, _ = done
    shift = date_shift_days(KEY, PATIENT_ID)
    checked = 0
    for row in CONCRETE:
        tag = int(row[0], 16)
        if tag not in before or tag in OVERRIDDEN:
            continue
        code, dates = expected(row, options)
        element = after.get(tag)
        try:
            if code == "C":
                _check_clean(before[tag], element, dates, shift, CHOICE.get(row[1], row[1]))
            else:
                _check_action(before[tag], element, code, shift)
        except AssertionError:
            pytest.fail(f"{row[0]} {row[4]}: expected {code}, got {element!r}")
        checked += 1
    assert checked > 600
    assert not [e for e in after.iterall() if e.tag.is_private]
    assert 0x50023000 not in after and 0x60003000 not in after and 0x60004000 not in after
    assert after[0x60000010].value == 8  # the table names only Overlay Data and Comments


def test_unlisted_attributes_are_kept_and_walked(
        done: tuple[frozenset[str], Dataset, Dataset, bytes]) -> None:
    options, before, after, _ = done
    shift = date_shift_days(KEY, PATIENT_ID)
    moved = _shifted(UNLISTED_DATE, shift) if MODIFIED in options else UNLISTED_DATE
    assert after.SecondaryReviewDate == moved
    item, item_before = after.ReferencedSeriesSequence[0], before.ReferencedSeriesSequence[0]
    assert item.ExpirationDateTime == moved
    assert item.PersonName == "ANONYMIZED" and not [e for e in item if e.tag.is_private]
    uid = item_before.SeriesInstanceUID
    assert item.SeriesInstanceUID == (uid if "retain-uids" in options
                                      else replacement_uid(KEY, uid))


def test_identity_and_method_are_recorded(done: tuple[frozenset[str], Dataset, Dataset, bytes]
                                          ) -> None:
    options, _, after, _ = done
    pseudo = pseudonym(KEY, "PatientID", PATIENT_ID)[:16].upper()
    assert after.PatientID == pseudo and after.PatientName == pseudo
    assert after.PatientIdentityRemoved == "YES"
    methods = [(i.CodeValue, i.CodingSchemeDesignator) for i in
               after.DeidentificationMethodCodeSequence]
    assert methods == [("113100", "DCM")] + [
        (deid_profile.OPTION_CODES[o][0], "DCM") for o in sorted(options)]
    assert "2026d" in after.DeidentificationMethod[0]
    assert after.LongitudinalTemporalInformationModified == (
        "MODIFIED" if MODIFIED in options else "UNMODIFIED"
        if "retain-longitudinal-full-dates" in options else "REMOVED")
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in after.file_meta


def test_no_canary_survives_unless_the_table_keeps_it(
        done: tuple[frozenset[str], Dataset, Dataset, bytes], source: tuple[Path, Dataset]
        ) -> None:
    options, _, _, data = done
    assert source[0].read_bytes().count(b"CANARY") > 500  # the search can find them
    kept = {int(r[0], 16) for r in CONCRETE if expected(r, options)[0] == "K"
            or expected(r, options) == ("C", True) and _vr(int(r[0], 16), r[4]) in ("TM", "SH")}
    for found in re.finditer(rb"CANARY([0-9A-F]{8})?", data):
        tag = found[1]
        assert tag is not None and int(tag, 16) in kept, f"{found[0]!r} leaked"
    for found in re.finditer(re.escape(UID_ROOT.encode()) + rb"(\d+)", data):
        assert "retain-uids" in options or int(found[1]) in kept, f"{found[0]!r} leaked"
    if not options & {"retain-longitudinal-full-dates", "retain-device-identity"}:
        assert CANARY_DATE.encode() not in data
    assert data[:128] == bytes(128)


def test_input_dataset_is_left_alone(source: tuple[Path, Dataset]) -> None:
    before = fingerprint_dataset(source[0])[1]  # read from a buffer, since closed
    result = deidentify_dataset(before, KEY, frozenset({MODIFIED}))
    assert before.PatientID == PATIENT_ID and "PersonName" in before
    assert result.dataset.PatientID != PATIENT_ID and result.path is None
    assert result.pixels_changed is False and result.actions["X"] > 300
    assert set(result.actions) <= set("DZXKCU")


def _study_file(path: Path, sop: str, patient: str, date: str, reference: str | None = None
                ) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = \
        CTImageStorage, sop
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, sop, "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4.5.1", "1.2.3.4.5.2"
    ds.FrameOfReferenceUID = "1.2.3.4.5.3"
    ds.PatientID, ds.StudyDate, ds.AcquisitionDateTime = patient, date, date + "083000.5+0100"
    ds.ContentDate = date
    if reference:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = CTImageStorage, reference
        ds.ReferencedImageSequence = [item]
    ds.save_as(path, enforce_file_format=True)


def test_uids_stay_consistent_across_the_files_of_a_study(tmp_path: Path) -> None:
    _study_file(tmp_path / "a.dcm", "1.2.3.4.5.10", "P1", "20200101")
    _study_file(tmp_path / "b.dcm", "1.2.3.4.5.11", "P1", "20200315", reference="1.2.3.4.5.10")
    a = deidentify_file(tmp_path / "a.dcm", tmp_path / "a-out.dcm", KEY, frozenset()).dataset
    b = deidentify_file(tmp_path / "b.dcm", tmp_path / "b-out.dcm", KEY, frozenset()).dataset
    assert a.StudyInstanceUID == b.StudyInstanceUID != "1.2.3.4.5.1"
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPClassUID == CTImageStorage
    assert a.SOPInstanceUID.startswith("2.25.") and len(a.SOPInstanceUID) <= 64
    assert a.PatientID == b.PatientID
    other = deidentify_dataset(dcmread(tmp_path / "a.dcm"), bytes(32), frozenset()).dataset
    assert other.StudyInstanceUID != a.StudyInstanceUID  # another project, other UIDs


def test_modified_dates_keep_every_interval(tmp_path: Path) -> None:
    _study_file(tmp_path / "a.dcm", "1.2.3.4.5.10", "P1", "20200101")
    _study_file(tmp_path / "b.dcm", "1.2.3.4.5.11", "P1", "20200315")
    _study_file(tmp_path / "c.dcm", "1.2.3.4.5.12", "P2", "20200315")
    out = [deidentify_dataset(dcmread(tmp_path / f"{n}.dcm"), KEY, frozenset({MODIFIED})).dataset
           for n in "abc"]
    days = date_shift_days(KEY, "P1")
    assert SHIFT_DAYS[0] <= days <= SHIFT_DAYS[1]
    assert days != date_shift_days(KEY, "P2") and days != date_shift_days(bytes(32), "P1")
    assert [o.StudyDate for o in out[:2]] == [_shifted("20200101", days),
                                              _shifted("20200315", days)]
    assert out[0].AcquisitionDateTime == _shifted("20200101", days) + "083000.5+0100"
    assert out[1].ContentDate == out[1].StudyDate  # an unlisted-or-listed date moves alike
    assert out[2].StudyDate == _shifted("20200315", date_shift_days(KEY, "P2"))
    basic = deidentify_dataset(dcmread(tmp_path / "a.dcm"), KEY, frozenset()).dataset
    assert basic.StudyDate == "" and basic.LongitudinalTemporalInformationModified == "REMOVED"


def test_modified_dates_need_a_patient_id(tmp_path: Path) -> None:
    _study_file(tmp_path / "a.dcm", "1.2.3.4.5.10", "", "20200101")
    with pytest.raises(DicomError, match="no PatientID"):
        deidentify_dataset(dcmread(tmp_path / "a.dcm"), KEY, frozenset({MODIFIED}))
    assert deidentify_dataset(dcmread(tmp_path / "a.dcm"), KEY, frozenset()).dataset \
        .PatientID == ""


def test_polyglot_preamble_is_zeroed(tmp_path: Path) -> None:
    polyglot(tmp_path / "polyglot.dcm")
    assert fingerprint_file(tmp_path / "polyglot.dcm").flags == ("preamble-executable",)
    result = deidentify_file(tmp_path / "polyglot.dcm", tmp_path / "out.dcm", KEY, frozenset())
    assert (tmp_path / "out.dcm").read_bytes()[:132] == bytes(128) + b"DICM"
    assert result.output is not None and result.output.flags == ()


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "SC_rgb_jpeg_gdcm.dcm",
                                  "MR_small_jp2klossless.dcm", "rtdose.dcm",
                                  "SC_rgb_rle_2frame.dcm"])
def test_pixels_are_untouched(tmp_path: Path, name: str) -> None:
    result = deidentify_file(TEST_FILES / name, tmp_path / name, KEY, frozenset({MODIFIED}))
    assert result.source is not None and result.output is not None
    assert fingerprint_file(tmp_path / name).pixel_sha256 == \
        fingerprint_file(TEST_FILES / name).pixel_sha256 == result.source.pixel_sha256
    assert result.output.pixel_sha256 == result.source.pixel_sha256
    assert result.pixels_changed is False


def _image(modality: str, sop_class: str = CTImageStorage, burned_in: str | None = None
           ) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.Modality, ds.PatientID = sop_class, modality, "P1"
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    return ds


@pytest.mark.parametrize(("ds", "flagged"), [
    (_image("US"), True), (_image("US", burned_in="NO"), False),
    (_image("OT", "1.2.840.10008.5.1.4.1.1.7"), True), (_image("ES"), True),
    (_image("CT"), False), (_image("CT", burned_in="YES"), True),
    (_image("XC", burned_in="UNKNOWN"), True),
], ids=["US", "US-NO", "SC", "ES", "CT", "CT-YES", "XC-unknown"])
def test_burned_in_annotation_is_held_for_review(ds: Dataset, flagged: bool) -> None:
    expected_flags = (BURNED_IN_REVIEW,) if flagged else ()
    assert burned_in_flags(ds) == expected_flags
    assert deidentify_dataset(ds, KEY, frozenset()).flags == expected_flags


def test_secondary_capture_file_is_flagged(tmp_path: Path) -> None:
    result = deidentify_file(TEST_FILES / "SC_rgb_rle.dcm", tmp_path / "sc.dcm", KEY,
                             frozenset())
    assert result.flags == (BURNED_IN_REVIEW,)


def test_recipe_hash_names_the_recipe() -> None:
    basic = deid_profile.recipe_for(frozenset()).sha256
    assert basic == deid_profile.recipe_for(frozenset()).sha256
    both = {deid_profile.recipe_for(frozenset({MODIFIED, "clean-descriptors"})).sha256,
            deid_profile.recipe_for(frozenset({"clean-descriptors", MODIFIED})).sha256}
    assert len(both) == 1 and basic not in both
    assert len({deid_profile.recipe_for(o).sha256 for o in OPTION_SETS}) == len(OPTION_SETS)
    # pinned: a change of table, engine version or choices must show up here, deliberately
    assert basic == "f5c910d14dfb98950c5ee44d76a605b0a65d6deaecf973a6c06b39bbedf62b39"


def test_cid_7050_codes_are_the_standards() -> None:
    concepts = {getattr(codes.DCM, name).value: getattr(codes.DCM, name).meaning
                for name in cid_concepts[7050]["DCM"]}
    ours = [deid_profile.BASIC_PROFILE, *deid_profile.OPTION_CODES.values()]
    assert all(concepts[value] == meaning for value, meaning in ours)


@pytest.mark.parametrize(("options", "message"), [
    ({"retain-everything"}, "unknown de-identification option"),
    ({"retain-safe-private"}, "needs at least one safe-private rule"),
    ({"clean-graphics"}, "not implemented"),
    ({MODIFIED, "retain-longitudinal-full-dates"}, "exclude each other"),
])
def test_bad_options_are_refused(options: set[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        deidentify_dataset(Dataset(), KEY, frozenset(options))


def test_bad_key_is_refused() -> None:
    with pytest.raises(InputError, match="32 bytes"):
        deidentify_dataset(Dataset(), b"short", frozenset())


def test_source_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "ct.dcm"
    path.write_bytes((TEST_FILES / "CT_small.dcm").read_bytes())
    with pytest.raises(InputError, match="overwrite the source"):
        deidentify_file(path, tmp_path / "." / "ct.dcm", KEY, frozenset())
    (tmp_path / "link.dcm").hardlink_to(path)
    with pytest.raises(InputError, match="overwrite the source"):
        deidentify_file(path, tmp_path / "link.dcm", KEY, frozenset())


def test_no_partial_file_when_the_check_fails(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real = deidentify.fingerprint_file

    def wrong_pixels(path: Path) -> deidentify.Fingerprint:
        return replace(real(path), pixel_sha256="0" * 64)

    monkeypatch.setattr(deidentify, "fingerprint_file", wrong_pixels)
    with pytest.raises(DicomError, match="pixels differ"):
        deidentify_file(TEST_FILES / "CT_small.dcm", tmp_path / "out.dcm", KEY, frozenset())
    assert list(tmp_path.iterdir()) == []


def test_generated_table_is_current_and_whole() -> None:
    done = subprocess.run([sys.executable, ROOT / "tools" / "make_deid_table.py", "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert len(deid_table.ROWS) == 657 and deid_table.EDITION == "2026d"
    patterns = {r[0] for r in deid_table.ROWS} - {r[0] for r in CONCRETE}
    assert patterns == {"50xxxxxx", "60xx3000", "60xx4000", "private"}


def test_retain_safe_private_keeps_only_the_named_private_attributes() -> None:
    ds = Dataset()
    ds.PatientID = "PAT-1"
    safe = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
    safe.add_new(0x27, "SH", "slice spacing 2.5")  # named safe below
    safe.add_new(0x28, "LO", "CANARY operator name")  # same block, not named
    other = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    other.add_new(0x0C, "IS", "1000")
    rule = deid_profile.parse_safe_private("GEMS_PARM_01:0043,xx27")
    kept = deidentify_dataset(ds, KEY, frozenset({"retain-safe-private"}),
                              frozenset({rule})).dataset
    assert kept[0x00431027].value == "slice spacing 2.5"
    assert kept[0x00430010].value == "GEMS_PARM_01"  # its creator stays, so it still reads
    assert 0x00431028 not in kept and 0x00190010 not in kept and 0x0019100C not in kept
    without = deidentify_dataset(ds, KEY, frozenset()).dataset
    assert not any(tag.group & 1 for tag in without.keys())
    method_codes = [item.CodeValue for item in kept.DeidentificationMethodCodeSequence]
    assert "113111" in method_codes
    assert deid_profile.recipe_for(frozenset({"retain-safe-private"}), frozenset({rule})) \
        .sha256 != deid_profile.recipe_for(frozenset()).sha256
    with pytest.raises(InputError, match="odd"):
        deid_profile.parse_safe_private("GEMS:0042,xx27")
    with pytest.raises(InputError, match="rules need"):
        deidentify_dataset(ds, KEY, frozenset(), frozenset({rule}))
