"""Releases over HTTP (issue 6), through the real ASGI app: the dry run names each refusal
and appends nothing, a release made over HTTP verifies as a reviewer would, and a release
that exists already or has no member left is a 409 conflict (the CLI keeps exiting 2).

The ledger these tests share is built in tests/test_api_trail.py (``built``, ``lab``,
``api``)."""

# ruff: noqa: F811 - test arguments name the fixtures imported from test_api_trail

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from radledger.core.note import format_vkey
from radledger.ledger.bundle import BundleRequest, create_bundle, write_bundle
from radledger.ledger.setup import open_ledger, open_workspace
from radledger.reviewer import Checks, verify_file
from test_api import Api, _error
from test_api_trail import (  # noqa: F401 - pytest finds the fixtures by these names
    Lab,
    _quiet_pydicom,
    _size,
    api,
    built,
    lab,
)


# -- releases ---------------------------------------------------------------------------------
def test_the_dry_run_names_each_refusal_and_appends_nothing(api: Api, lab: Lab) -> None:
    reader, before = lab.tokens["reader"], _size(api)
    every = api.post("/releases/check", reader, json={"name": "r", "version": "1",
                                                      "all": True})
    assert every.status_code == 200, every.text
    out = every.json()
    assert out["would_release"] is False and out["release"] is None
    (refused,) = out["refused"]
    assert refused["index"] == lab.us_copy
    assert "no consent in force" in refused["reason"]
    assert "burned-in annotation review" in refused["reason"]
    assert f"entry {lab.us_copy}" in out["message"]
    by_index = {m["index"]: m for m in out["members"]}
    assert set(by_index) == {*lab.copies, lab.us_copy}
    assert by_index[lab.copies[0]]["problems"] == []
    assert by_index[lab.copies[0]]["consent_in_force"] is True
    identified = api.post("/releases/check", reader, json={
        "name": "r", "version": "1", "members": [lab.identified]}).json()
    assert identified["refused"] == [{"index": lab.identified,
                                      "reason": "identified (not de-identified) data"}]
    internal = api.post("/releases/check", reader, json={
        "name": "r", "version": "1", "members": [lab.identified],
        "allow_identified": True}).json()
    assert internal["would_release"] is True
    exists = api.post("/releases/check", reader, json={
        "name": "baseline", "version": "1", "study": [lab.study_uid]}).json()
    assert exists["would_release"] is False and "exists already" in exists["message"]
    _error(api.post("/releases/check", reader, json={
        "name": "r", "version": "1", "members": [lab.protocol]}), 400, "bad_request")
    _error(api.post("/releases/check", reader, json={
        "name": "r", "version": "1", "study": ["1.2.3.99"]}), 404, "not_registered")
    assert _size(api) == before  # not an entry, not even an access record

    # what the dry run says is what a release does
    refused_for_real = api.post("/releases", lab.tokens["writer"], json={
        "name": "r", "version": "1", "all": True})
    message = _error(refused_for_real, 409, "release_refused")
    assert message == out["message"]
    assert _size(api) == before
    leave_out = {"name": "r", "version": "1", "all": True, "exclude_unconsented": True,
                 "include_burned_in": True}
    planned = api.post("/releases/check", reader, json=leave_out).json()
    assert planned["would_release"] is True, planned
    made = api.post("/releases", lab.tokens["writer"], json=leave_out)
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"/releases/{made.json()['index']}"
    body = api.get(made.headers["location"], reader).json()["entry"]["body"]
    assert body["manifest_root"] == planned["release"]["manifest_root"]
    assert body["members"] == planned["release"]["members"]
    assert body["consent"]["excluded_unconsented"] == [lab.us_copy]
    assert made.json()["members"] == len(lab.copies)


def test_a_release_made_over_http_verifies_as_a_reviewer_would(api: Api, lab: Lab,
                                                                tmp_path: Path) -> None:
    made = api.post("/releases", lab.tokens["writer"], json={
        "name": "trial", "version": "1", "study": [lab.study_uid],
        "description": "the first study"})
    assert made.status_code == 201, made.text
    assert made.json()["consent"]["in_force"] == len(lab.copies)
    home, ledger = open_ledger(lab.home.path)
    space = open_workspace(home, ledger)
    try:
        vkey = format_vkey(home.origin, home.ledger_signer.signing_key.public_key)
        bundle_file = tmp_path / "trial.rlbundle"
        write_bundle(create_bundle(space, vkey, BundleRequest("trial", "1", lab.deid)),
                     bundle_file)
    finally:
        space.side.close()
        ledger.store.close()
    report = verify_file(bundle_file, Checks(lab.deid, vkey))
    assert report.ok, report.failures
    assert report.summary.startswith("2 of 2 images verified back to acquisition under "
                                     "protocol brain-mr")
    assert any("2 of 2 member files rehashed" in c for c in report.claims)


# -- release conflicts ------------------------------------------------------------------------
def test_a_release_that_exists_or_has_no_member_left_is_a_conflict(api: Api,
                                                                    lab: Lab) -> None:
    writer, before = lab.tokens["writer"], _size(api)
    again = {"name": "baseline", "version": "1", "study": [lab.study_uid]}
    message = _error(api.post("/releases", writer, json=again), 409, "release_exists")
    assert "exists already" in message and f"entry {lab.release}" in message
    empty = {"name": "empty", "version": "1", "members": [lab.us_copy],
             "exclude_unconsented": True, "include_burned_in": True}
    assert "no member is left" in _error(api.post("/releases", writer, json=empty), 409,
                                         "nothing_to_release")
    check = api.post("/releases/check", lab.tokens["reader"], json=empty).json()
    assert check["would_release"] is False and "no member is left" in check["message"]
    assert _size(api) == before


def _radledger(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "radledger"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False,
                          timeout=120)


def test_the_cli_still_exits_2_for_those_conflicts(lab: Lab, tmp_path: Path) -> None:
    home = str(lab.home.path)
    exists = _radledger("release", "create", "baseline", "--version", "1", "--study",
                        lab.study_uid, "--home", home)
    assert exists.returncode == 2 and "exists already" in exists.stderr, exists.stderr
    (tmp_path / "members.txt").write_text(f"{lab.us_copy}\n")
    empty = _radledger("release", "create", "empty", "--version", "1", "--from-file",
                       str(tmp_path / "members.txt"), "--exclude-unconsented",
                       "--include-burned-in", "--home", home)
    assert empty.returncode == 2 and "no member is left" in empty.stderr, empty.stderr


