"""The research trail over HTTP (issue 6), through the real ASGI app: every route (the
release routes included) and every role, the one error shape, each write recorded as access
naming the token, reads of identified data recorded, no identifier in a URL or the server's
log. The release routes' own behaviour is in test_api_releases.py."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.uid import UID
from typer.testing import CliRunner

from radledger.api import create_app
from radledger.cli.main import app as cli
from radledger.core.pseudonym import pseudonym
from radledger.dicom.synthetic import Acquisition, fake_patients, write_study
from radledger.ledger import release, trail
from radledger.ledger.deid import DeidJob, deidentify_tree
from radledger.ledger.home import LedgerHome, load_home
from radledger.ledger.ingest import Ingester, ingest
from radledger.ledger.setup import Workspace, init_ledger, open_ledger, open_workspace
from radledger.ledger.tokens import GRANTS, Permission, create_token, open_tokens
from radledger.ledger.verify import verify_ledger
from test_api import Api, _error

ORIGIN = "example.org/api-trail"
ROLES = ("admin", "writer", "reader", "phi-reader", "auditor", "reviewer")


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom may warn while the tests build files; that is not a test failure."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Lab:
    """A ledger with a protocol, two acquired studies de-identified (one of them with burned-in
    annotation, held for review), a third study left identified, consent
    for the first and third patients, a note and a release; and a token per role."""

    home: LedgerHome
    study_uid: str  # study 1: CT, patient A, consented, de-identified
    study_key: str  # its pseudonym
    patient: str  # patient A's PatientID
    unconsented: str  # patient B (burned-in annotation)
    originals: list[int]
    copies: list[int]  # study 1's de-identified copies
    us_copy: int  # flagged burned-in-annotation-review
    identified: int  # patient C's instance: consented, never de-identified
    protocol: int
    note: int
    release: int
    deid: Path  # the de-identified copies' folder
    slice_file: Path  # a file of study 1
    tokens: dict[str, str]


def _entry(space: Workspace, index: int) -> dict[str, Any]:
    row = space.ledger.store.entry(index)
    assert row is not None
    return json.loads(row[1])  # type: ignore[no-any-return]


def _ingest(home: LedgerHome, space: Workspace, folder: Path, protocol: int | None = None
            ) -> list[int]:
    indices: list[int] = []
    ingest(Ingester(space, home.actor_signer, protocol), [folder], 1,
           lambda outcome, _size: indices.append(outcome.index or -1))
    return indices


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    tmp = tmp_path_factory.mktemp("api-trail")
    home, ledger = init_ledger(tmp / "home", ORIGIN, "service")
    space = open_workspace(home, ledger)
    try:
        acquired = tmp / "acquired"
        a, b, c = fake_patients(3, seed=7)
        write_study(acquired / "study-1", a, Acquisition(slices=2, rows=16, columns=16))
        (scan,) = write_study(acquired / "study-2", b, Acquisition(modality="MR", slices=1,
                                                                  rows=16, columns=16, seed=1))
        flagged = dcmread(scan)
        flagged.BurnedInAnnotation = "YES"  # held for review when de-identified
        flagged.save_as(scan)
        protocol = trail.register_protocol(space, home.actor_signer,
                                           trail.Protocol("brain-mr", b"%PDF protocol"))
        originals = _ingest(home, space, acquired, protocol.index)
        deid = tmp / "deid"
        outcomes = deidentify_tree(space, home.actor_signer, DeidJob(acquired, deid),
                                   lambda _o: None)
        copies = [o.output_index for o in outcomes if o.output_index is not None]
        us_copy = next(o.output_index for o in outcomes if o.flags)
        assert us_copy is not None and len(copies) == 3
        study1 = [o.output_index for o in outcomes
                  if o.output_index is not None and "study-1" in o.source]
        write_study(tmp / "identified", c, Acquisition(slices=1, rows=8, columns=8, seed=2))
        (identified,) = _ingest(home, space, tmp / "identified")
        for patient in (a, c):
            trail.record_consent(space, home.actor_signer,
                                 trail.Consent(patient.patient_id, ORIGIN, True))
        slice_file = acquired / "study-1" / "slice-0001.dcm"
        study_uid = str(dcmread(slice_file).StudyInstanceUID)
        study_key = pseudonym(space.project_key, "StudyInstanceUID", study_uid)
        note = trail.add_note(space, home.actor_signer, trail.about(space, [study_uid]),
                              b"motion in slice 2")
        released = release.create_release(space, home.actor_signer, release.ReleasePlan(
            "baseline", "1", study1, ORIGIN))
    finally:
        space.side.close()
        ledger.store.close()
    store = open_tokens(home)
    try:
        tokens = {role: create_token(store, role, role) for role in ROLES}
        tokens["dpo"] = create_token(store, "dpo", "admin")
    finally:
        store.close()
    return Lab(home, study_uid, study_key, a.patient_id, b.patient_id, originals[:2], study1,
               us_copy, identified, protocol.index, note.index, released.index, deid,
               slice_file, tokens)


@pytest.fixture
def lab(built: Lab, tmp_path: Path) -> Lab:
    """A copy of the built ledger home for this test alone (the files stay shared)."""
    shutil.copytree(built.home.path, tmp_path / "home")
    return replace(built, home=load_home(tmp_path / "home"))


@pytest.fixture
def api(lab: Lab) -> Iterator[Api]:
    running = Api(create_app(lab.home.path))
    try:
        yield running
    finally:
        running.close()


def _size(api: Api) -> int:
    """The ledger's size, from its signed checkpoint."""
    return int(api.get("/checkpoint").text.split("\n")[1])


def _entry_at(api: Api, lab: Lab, index: int) -> dict[str, Any]:
    response = api.get(f"/entries/{index}", lab.tokens["auditor"])
    assert response.status_code == 200, response.text
    return response.json()["entry"]  # type: ignore[no-any-return]


# -- every route, every role --------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    """A request to a route, its permission and its status when allowed."""

    method: str
    path: Callable[[Lab], str]
    body: Callable[[Lab, str], Any] | None
    permission: Permission
    ok: int

    def call(self, api: Api, lab: Lab, token: str | None, role: str = "admin"
             ) -> httpx.Response:
        kwargs = {} if self.body is None else {"json": self.body(lab, role)}
        return api.request(self.method, self.path(lab), token, **kwargs)


ROUTES = {
    "POST /history/query": Route("POST", lambda _: "/history/query", lambda lab, _: {
        "target": lab.study_uid}, Permission.READ, 200),
    "GET /history": Route("GET", lambda lab: f"/history/{lab.study_key}", None,
                          Permission.READ, 200),
    "POST /protocols": Route("POST", lambda _: "/protocols", lambda _, role: {
        "name": f"plan-{role}", "document": b64(b"plan"), "parameters": {"threshold": 0.5}},
        Permission.APPEND, 201),
    "GET /protocols": Route("GET", lambda _: "/protocols/brain-mr", None, Permission.READ, 200),
    "POST /notes": Route("POST", lambda _: "/notes", lambda lab, role: {
        "about": [lab.study_uid], "text": f"a note by {role}"}, Permission.APPEND, 201),
    "GET /notes": Route("GET", lambda lab: f"/notes/{lab.note}", None, Permission.READ_PHI,
                        200),
    "POST /results": Route("POST", lambda _: "/results", lambda lab, role: {
        "about": [lab.copies[0]], "file": b64(role.encode()), "metrics": {"dice": 0.91}},
        Permission.APPEND, 201),
    "POST /derivations": Route("POST", lambda _: "/derivations", lambda lab, role: {
        "operation": "segment", "inputs": [lab.copies[0]],
        "outputs": [b64(f"mask by {role}".encode())], "tool": "seg", "tool_version": "1"},
        Permission.APPEND, 201),
    "POST /corrections": Route("POST", lambda _: "/corrections", lambda lab, role: {
        "index": lab.note, "reason": f"typo seen by {role}"}, Permission.APPEND, 201),
    "POST /consent/grant": Route("POST", lambda _: "/consent/grant", lambda _, role: {
        "patient": f"PAT-{role}", "scope": "trial"}, Permission.APPEND, 201),
    "POST /consent/withdraw": Route("POST", lambda _: "/consent/withdraw", lambda _, role: {
        "patient": f"PAT-{role}", "scope": "trial"}, Permission.APPEND, 201),
    "POST /consent/query": Route("POST", lambda _: "/consent/query", lambda lab, _: {
        "patient": lab.patient}, Permission.READ_PHI, 200),
    "POST /releases/check": Route("POST", lambda _: "/releases/check", lambda _, role: {
        "name": "r", "version": role, "all": True}, Permission.READ, 200),
    "POST /releases": Route("POST", lambda _: "/releases", lambda lab, role: {
        "name": "api", "version": role, "study": [lab.study_uid]}, Permission.APPEND, 201),
    "GET /releases": Route("GET", lambda lab: f"/releases/{lab.release}", None,
                           Permission.READ, 200),
    "POST /erasure": Route("POST", lambda _: "/erasure", lambda lab, _: {
        "patient": lab.unconsented, "reason": "request"}, Permission.ADMIN, 201),
}
WRITES = [name for name, r in ROUTES.items() if r.method == "POST" and r.ok == 201]


@pytest.mark.parametrize("name", ROUTES)
def test_every_route_needs_a_valid_token(api: Api, lab: Lab, name: str) -> None:
    route, before = ROUTES[name], _size(api)
    for token in (None, "rlt_not-a-token"):
        response = route.call(api, lab, token)
        _error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    assert _size(api) == before


@pytest.mark.parametrize("name", ROUTES)
def test_each_route_allows_exactly_the_roles_granted_its_permission(
        api: Api, lab: Lab, name: str) -> None:
    route = ROUTES[name]
    allowed = {role for role in ROLES if route.permission in GRANTS[role]}
    assert "reviewer" not in allowed and "admin" in allowed
    for role in ROLES:
        before = _size(api)
        response = route.call(api, lab, lab.tokens[role], role)
        if role in allowed:
            assert response.status_code == route.ok, (role, response.text)
        else:
            assert role in _error(response, 403, "forbidden")
            assert _size(api) == before, f"{role} was refused but something was appended"


@pytest.mark.parametrize("name", WRITES)
def test_every_write_is_followed_by_access_recorded_naming_the_token(
        api: Api, lab: Lab, name: str) -> None:
    route = ROUTES[name]
    role = "dpo" if route.permission is Permission.ADMIN else "writer"
    response = route.call(api, lab, lab.tokens[role], role)
    assert response.status_code == 201, response.text
    out = response.json()
    assert _entry_at(api, lab, out["index"])["kind"] == out["kind"]
    record = _entry_at(api, lab, out["access_index"])
    assert record["kind"] == "access.recorded"
    assert record["body"] == {"action": "append", "target": f"entry/{out['index']}",
                              "via": "api", "on_behalf_of": role}
    assert record["actor"].startswith("service+")  # signed by the service's key
    assert _size(api) == out["access_index"] + 1  # and nothing else was appended


# -- history ----------------------------------------------------------------------------------
def test_history_is_what_the_cli_prints(api: Api, lab: Lab) -> None:
    before = _size(api)
    response = api.post("/history/query", lab.tokens["reader"], json={"target": lab.study_uid})
    assert response.status_code == 200, response.text
    printed = CliRunner().invoke(cli, ["history", lab.study_uid, "--json",
                                       "--home", str(lab.home.path)])
    assert printed.exit_code == 0, printed.output
    assert response.json() == json.loads(printed.stdout)
    indices = {e["index"] for e in response.json()["entries"]}
    assert {lab.protocol, *lab.originals, *lab.copies, lab.note, lab.release} <= indices
    assert lab.study_uid not in response.text  # pseudonymised, never echoed
    # by pseudonym too, and a reader's history read appends nothing
    key = _entry_at(api, lab, lab.originals[0])["subject"]["study"]
    assert key == lab.study_key
    for by_key in (api.get(f"/history/{key}", lab.tokens["reader"]),
                   api.post("/history/query", lab.tokens["reader"], json={"target": key})):
        assert by_key.json()["entries"] == response.json()["entries"]
    assert _size(api) == before


def test_history_refuses_what_is_not_a_uid_and_404s_the_unknown(api: Api, lab: Lab) -> None:
    reader, before = lab.tokens["reader"], _size(api)

    def query(target: str) -> httpx.Response:
        return api.post("/history/query", reader, json={"target": target})

    _error(query("1.2.3.4.5.6.7"), 404, "not_registered")
    _error(query("ab" * 32), 404, "not_registered")
    _error(api.get("/history/" + "ab" * 32, reader), 404, "not_registered")
    # no server path is ever opened: names that could be files are refused unread
    for target in ("ledger.sqlite3", "radledger.toml", "1.2.3.", ".1", "x" * 65, "/etc/passwd",
                   "AB" * 32):
        assert target not in _error(query(target), 422, "invalid_request")
    # a URL holds only a pseudonym: a real UID there is refused, and not echoed
    for target in (lab.study_uid, "1.2.3.4.5.6.7", "ledger.sqlite3", "ab" * 31):
        assert target not in _error(api.get(f"/history/{target}", reader), 422,
                                    "invalid_request")
    assert _size(api) == before


# -- protocols, notes, results, corrections ---------------------------------------------------
def test_protocols_register_and_read_back(api: Api, lab: Lab) -> None:
    made = api.post("/protocols", lab.tokens["writer"], json={
        "name": "ct/chest v2", "document": b64(b"%PDF plan"), "modality": "CT",
        "parameters": {"kvp": 120, "contrast": False}, "version": "2"})
    assert made.status_code == 201, made.text
    assert made.headers["location"] == "/protocols/ct%2Fchest%20v2"
    read = api.get(made.headers["location"], lab.tokens["reader"])
    assert read.status_code == 200, read.text
    assert read.json()["index"] == made.json()["index"]
    body = read.json()["entry"]["body"]
    assert body["parameters"] == {"kvp": 120, "contrast": False}
    assert body["document_sha256"] == __import__("hashlib").sha256(b"%PDF plan").hexdigest()
    _error(api.get("/protocols/no-such-plan", lab.tokens["reader"]), 404, "not_registered")


def test_reading_a_note_is_a_recorded_read_of_identified_data(api: Api, lab: Lab) -> None:
    added = api.post("/notes", lab.tokens["writer"], json={
        "about": [lab.study_uid, lab.copies[0]], "text": "CANARY-NOTE-API seen twice"})
    assert added.status_code == 201, added.text
    index = added.json()["index"]
    assert added.headers["location"] == f"/notes/{index}"
    note = _entry_at(api, lab, index)
    assert "CANARY" not in json.dumps(note) and note["refs"] == [lab.copies[0]]
    assert set(note["subject"]) == {"study", "patient"}  # erasure of the patient reaches it
    read = api.get(f"/notes/{index}", lab.tokens["phi-reader"])
    assert read.status_code == 200, read.text
    out = read.json()
    assert (out["text"], out["erased"]) == ("CANARY-NOTE-API seen twice", False)
    record = _entry_at(api, lab, out["access_index"])
    assert record["body"] == {"action": "read", "target": f"note.added/{index}",
                              "via": "api", "on_behalf_of": "phi-reader"}
    assert _size(api) == out["access_index"] + 1
    _error(api.get(f"/notes/{lab.protocol}", lab.tokens["admin"]), 404, "not_found")
    _error(api.get("/notes/99999", lab.tokens["admin"]), 404, "not_found")


def test_a_note_whose_text_was_altered_is_a_verification_failure(api: Api, lab: Lab) -> None:
    import sqlite3  # noqa: PLC0415

    conn = sqlite3.connect(lab.home.side_database)
    with conn:
        conn.execute("UPDATE openings SET value = ? WHERE value IS NOT NULL", (b"rewritten",))
    conn.close()
    before = _size(api)
    message = _error(api.get(f"/notes/{lab.note}", lab.tokens["phi-reader"]), 409,
                     "verification_failed")
    assert f"entry {lab.note}" in message and "does not open" in message
    assert _size(api) == before  # nothing was read, so no read is recorded


def test_results_and_corrections(api: Api, lab: Lab) -> None:
    writer = lab.tokens["writer"]
    result = api.post("/results", writer, json={
        "about": [lab.copies[0]], "file": b64(b"volumes.csv"), "name": "volumes",
        "metrics": {"volume_ml": 3.4}})
    assert result.status_code == 201, result.text
    body = _entry_at(api, lab, result.json()["index"])["body"]
    assert body["metrics"] == {"volume_ml": 3.4} and body["name"] == "volumes"
    fix = api.post("/corrections", writer, json={
        "index": result.json()["index"], "reason": "wrong unit",
        "body": {"metrics": {"volume_ml": 3.5}}})
    assert fix.status_code == 201, fix.text
    correction = _entry_at(api, lab, fix.json()["index"])
    assert correction["body"]["supersedes"] == result.json()["index"]
    assert correction["refs"] == [result.json()["index"]]
    _error(api.post("/corrections", writer, json={"index": 99999, "reason": "x"}), 404,
           "not_found")
    _error(api.post("/results", writer, json={"about": [99999], "file": b64(b"x")}), 404,
           "not_found")
    _error(api.post("/notes", writer, json={"about": ["1.2.3.4.5.6"], "text": "x"}), 404,
           "not_registered")


def test_bad_bodies_are_refused_in_the_one_shape_and_append_nothing(api: Api,
                                                                     lab: Lab) -> None:
    writer, before = lab.tokens["writer"], _size(api)
    note = {"about": [lab.note], "text": "t"}
    headers = {"Content-Type": "application/json"}
    _error(api.post("/notes", writer, content=b'{"about": [1], "about": [2], "text": "t"}',
                    headers=headers), 400, "invalid_json")
    _error(api.post("/results", writer, content=b'{"about": [1], "file": "", '
                    b'"metrics": {"x": NaN}}', headers=headers), 400, "invalid_json")
    _error(api.post("/notes", writer, content=b"{not json", headers=headers), 400,
           "invalid_json")
    _error(api.post("/notes", writer, json={**note, "extra": 1}), 422, "invalid_request")
    _error(api.post("/notes", writer, json={"about": [], "text": "t"}), 422,
           "invalid_request")
    _error(api.post("/notes", writer, json={**note, "text": " "}), 400, "bad_request")
    # a server path is never a target: the CLI reads files, the API does not
    _error(api.post("/notes", writer, json={**note, "about": ["/etc/passwd"]}), 422,
           "invalid_request")
    _error(api.post("/protocols", writer, json={"name": "p", "document": "not base64!"}),
           422, "invalid_request")
    _error(api.post("/protocols", writer, json={"name": "", "document": b64(b"x")}), 422,
           "invalid_entry")
    _error(api.post("/consent/grant", writer, json={"patient": "P", "scope": "a\nb"}), 422,
           "invalid_entry")
    _error(api.post("/releases", writer, json={"name": "r", "version": "1", "all": True,
                                               "study": [lab.study_uid]}), 422,
           "invalid_request")
    _error(api.post("/releases", writer, json={"name": "r", "version": "1"}), 422,
           "invalid_request")
    _error(api.get(f"/releases/{lab.note}", lab.tokens["reader"]), 404, "not_found")
    _error(api.get("/releases/99999", lab.tokens["reader"]), 404, "not_found")
    assert _size(api) == before


# -- derivations ------------------------------------------------------------------------------
def test_a_derivation_registers_its_dicom_outputs_and_links_both_sides(
        api: Api, lab: Lab, tmp_path: Path) -> None:
    ds = dcmread(lab.slice_file)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID("2.25.4242")
    ds.save_as(tmp_path / "resampled.dcm")
    mask = b"\x5c\x01\x00\x00 not really NIfTI"
    made = api.post("/derivations", lab.tokens["writer"], json={
        "operation": "convert", "inputs": [ds.SeriesInstanceUID],
        "outputs": [b64((tmp_path / "resampled.dcm").read_bytes()), b64(mask)],
        "tool": "resampler", "tool_version": "0.3", "recipe": b64(b'{"spacing": 1}'),
        "parameters": {"spacing_mm": 1}})
    assert made.status_code == 201, made.text
    out = made.json()
    registered = out["outputs"][0]["index"]
    assert out["outputs"][1] == {"file_sha256": __import__("hashlib").sha256(mask).hexdigest(),
                                 "size": len(mask)}
    assert registered == out["index"] - 1  # the DICOM output first, then the derivation
    body = _entry_at(api, lab, out["index"])["body"]
    assert body["inputs"] == lab.originals and body["outputs"] == out["outputs"]
    assert body["parameters"] == {"spacing_mm": 1} and "recipe_sha256" in body
    instance = _entry_at(api, lab, registered)
    assert instance["body"]["source"]["type"] == "derivation"
    history = api.post("/history/query", lab.tokens["reader"],
                       json={"target": ds.StudyInstanceUID}).json()
    assert {out["index"], registered} <= {e["index"] for e in history["entries"]}
    writer = lab.tokens["writer"]
    base = {"operation": "segment", "inputs": [lab.copies[0]], "outputs": [b64(b"m")],
            "tool": "t", "tool_version": "1"}
    _error(api.post("/derivations", writer, json={**base, "operation": "paint"}), 422,
           "invalid_entry")
    _error(api.post("/derivations", writer, json={**base, "inputs": [99999]}), 404,
           "not_found")
    _error(api.post("/derivations", writer, json={**base, "inputs": ["1.2.3.99"]}), 404,
           "not_registered")
    _error(api.post("/derivations", writer, json={**base, "outputs": []}), 422,
           "invalid_request")


# -- consent and erasure ----------------------------------------------------------------------
def test_consent_is_pseudonymised_and_reading_it_is_recorded(api: Api, lab: Lab) -> None:
    writer, phi = lab.tokens["writer"], lab.tokens["phi-reader"]
    patient = "CANARY-PAT/0042"
    granted = api.post("/consent/grant", writer, json={
        "patient": patient, "scope": "trial-42", "evidence": b64(b"signed form")})
    assert granted.status_code == 201, granted.text
    assert granted.json()["scope"] == "trial-42"
    entry = _entry_at(api, lab, granted.json()["index"])
    assert "CANARY" not in json.dumps(entry) and "evidence_commitment" in entry["body"]
    key = entry["subject"]["patient"]
    shown = api.post("/consent/query", phi, json={"patient": patient, "scope": "trial-42"})
    assert shown.status_code == 200, shown.text
    assert shown.json() | {"access_index": 0} == {
        "in_force": True, "index": granted.json()["index"], "scope": "trial-42",
        "access_index": 0}
    record = _entry_at(api, lab, shown.json()["access_index"])
    assert record["body"] == {"action": "read", "target": f"consent/{key}", "via": "api",
                              "on_behalf_of": "phi-reader"}
    assert "CANARY" not in shown.text and "CANARY" not in json.dumps(record)
    withdrawn = api.post("/consent/withdraw", writer, json={"patient": patient,
                                                            "scope": "trial-42"})
    assert withdrawn.json()["kind"] == "consent.withdrawn"
    again = api.post("/consent/query", phi, json={"patient": patient,
                                                  "scope": "trial-42"}).json()
    assert (again["in_force"], again["index"]) == (False, withdrawn.json()["index"])
    # never recorded: not in force, and the read is recorded all the same
    before = _size(api)
    never = api.post("/consent/query", phi, json={"patient": "NOBODY"}).json()
    assert never["in_force"] is False and never["index"] is None
    assert never["scope"] == ORIGIN and never["access_index"] == before
    assert api.post("/consent/query", phi, json={"patient": lab.patient}).json()["in_force"]
    # the PatientID never goes in a URL: the old GET route is gone, a bad query is not echoed
    _error(api.get(f"/consent/{patient}", phi), 404, "not_found")
    assert "CANARY" not in _error(api.post("/consent/query", phi, json={
        "patient": patient + "\u0000"}), 400, "bad_request")
    assert patient not in _error(api.post("/consent/query", phi, json={
        "patient": patient, "extra": 1}), 422, "invalid_request")


def test_erasure_is_for_admins_and_leaves_every_proof_valid(api: Api, lab: Lab) -> None:
    body = {"patient": lab.patient, "reason": "erasure request 2026-11-28"}
    _error(api.post("/erasure", lab.tokens["writer"], json=body), 403, "forbidden")
    erased = api.post("/erasure", lab.tokens["dpo"], json=body)
    assert erased.status_code == 201, erased.text
    out = erased.json()
    entry = _entry_at(api, lab, out["index"])
    assert entry["body"]["requested_by"] == "dpo"
    assert entry["body"]["commitments"] == out["commitments"] and out["commitments"]
    note = api.get(f"/notes/{lab.note}", lab.tokens["phi-reader"]).json()
    assert note == {"index": lab.note, "erased": True, "text": None, "access_index": None}
    _, ledger = open_ledger(lab.home.path)
    try:
        assert verify_ledger(ledger.store, lab.home.ledger_verifier, workers=1).ok
    finally:
        ledger.store.close()


def test_openapi_documents_the_trail_routes_and_their_bodies(api: Api) -> None:
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    assert {"/history/query", "/history/{pseudonym}", "/protocols", "/protocols/{name}",
            "/notes", "/notes/{index}", "/results", "/derivations", "/corrections",
            "/consent/grant", "/consent/withdraw", "/consent/query", "/releases/check",
            "/releases", "/releases/{index}", "/erasure"} <= set(paths)
    schemas = spec["components"]["schemas"]
    for model in ("ProtocolIn", "NoteIn", "ResultIn", "DerivationIn", "CorrectionIn",
                  "ConsentIn", "ConsentQuery", "HistoryQuery", "ErasureIn", "ReleaseIn",
                  "ReleaseCheck", "Released", "Written", "History"):
        assert model in schemas, model
    assert schemas["ProtocolIn"]["properties"]["document"]["contentEncoding"] == "base64"
    assert paths["/releases"]["post"]["requestBody"]["content"]["application/json"]


def test_no_trail_route_takes_an_identified_value_in_its_url(api: Api) -> None:
    """Paths and query strings go to access logs (RELIABILITY 27): the trail and release
    routes take only indices, names and pseudonyms there; UIDs and PatientIDs go in bodies."""
    spec = api.get("/openapi.json").json()
    taken: dict[str, set[str]] = {}
    for path, methods in spec["paths"].items():
        for operation in methods.values():
            if {"research trail", "releases"} & set(operation.get("tags", [])):
                for parameter in operation.get("parameters", []):
                    if parameter["in"] in ("path", "query"):
                        taken.setdefault(parameter["name"], set()).add(path)
    assert set(taken) <= {"index", "name", "pseudonym"}, taken
    (by_pseudonym,) = [p for p in spec["paths"]["/history/{pseudonym}"]["get"]["parameters"]
                       if p["name"] == "pseudonym"]
    assert by_pseudonym["schema"]["pattern"] == "^[0-9a-f]{64}$"


# -- server files ---------------------------------------------------------------------------
def test_the_api_never_reads_a_server_file_named_like_a_uid(
        api: Api, lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registered file's copy sits in the server's working directory under a name that is
    a valid UID, and under one that is a valid pseudonym: the CLI would look both up as
    files (by their bytes, which are registered); the API must find nothing."""
    cwd = tmp_path / "server-cwd"
    cwd.mkdir()
    uid_named, hex_named = "1.2.3.4.5.6.7.8", "cd" * 32
    for name in (uid_named, hex_named):
        shutil.copyfile(lab.slice_file, cwd / name)
    monkeypatch.chdir(cwd)
    reader, writer, before = lab.tokens["reader"], lab.tokens["writer"], _size(api)
    for target in (uid_named, hex_named):
        _error(api.post("/history/query", reader, json={"target": target}), 404,
               "not_registered")
    _error(api.get(f"/history/{hex_named}", reader), 404, "not_registered")
    _error(api.post("/derivations", writer, json={
        "operation": "segment", "inputs": [uid_named], "outputs": [b64(b"mask")],
        "tool": "t", "tool_version": "1"}), 404, "not_registered")
    for members in ({"study": [uid_named]}, {"members": [uid_named]}):
        _error(api.post("/releases/check", reader, json={"name": "r", "version": "1",
                                                         **members}), 404, "not_registered")
        _error(api.post("/releases", writer, json={"name": "r", "version": "1", **members}),
               404, "not_registered")
    assert _size(api) == before
    # the CLI still reads a path it is given (the file is registered, so it has a history)
    printed = CliRunner().invoke(cli, ["history", uid_named, "--json",
                                       "--home", str(lab.home.path)])
    assert printed.exit_code == 0, printed.output
    assert set(lab.originals) & {e["index"] for e in json.loads(printed.stdout)["entries"]}


# -- logs -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_identifiers_sent_to_the_served_api_never_reach_its_log(lab: Lab,
                                                                tmp_path: Path) -> None:
    """Under the real `radledger serve`, its access log on (the default): canary PatientIDs
    and UIDs sent through every route that takes one appear nowhere in its output."""
    patient, unknown_uid = "CANARY-PAT-LOG-0815", "1.2.826.0.1.3680043.99.4711"
    canaries = (patient, unknown_uid, lab.study_uid, lab.patient, lab.unconsented)
    port, log = _free_port(), tmp_path / "serve.log"
    exe = Path(sys.executable).parent / "radledger"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(exe), "serve", "--home", str(lab.home.path), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/checkpoint", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=30) as client:
            def send(path: str, role: str, body: dict[str, Any]) -> int:
                return client.post(path, json=body, headers={
                    "Authorization": f"Bearer {lab.tokens[role]}"}).status_code

            statuses = [
                send("/consent/grant", "writer", {"patient": patient, "scope": "trial"}),
                send("/consent/withdraw", "writer", {"patient": patient, "scope": "trial"}),
                send("/consent/query", "phi-reader", {"patient": patient, "scope": "trial"}),
                send("/consent/query", "phi-reader", {"patient": lab.patient}),
                send("/history/query", "reader", {"target": lab.study_uid}),
                send("/history/query", "reader", {"target": unknown_uid}),
                send("/notes", "writer", {"about": [lab.study_uid], "text": "t"}),
                send("/notes", "writer", {"about": [unknown_uid], "text": "t"}),
                send("/results", "writer", {"about": [lab.study_uid], "file": b64(b"r")}),
                send("/derivations", "writer", {
                    "operation": "segment", "inputs": [lab.study_uid],
                    "outputs": [b64(b"mask")], "tool": "t", "tool_version": "1"}),
                send("/releases/check", "reader", {"name": "r", "version": "1",
                                                   "study": [unknown_uid]}),
                send("/releases", "writer", {"name": "r", "version": "1",
                                             "study": [lab.study_uid]}),
                send("/erasure", "dpo", {"patient": lab.unconsented, "reason": "request"}),
                send("/consent/query", "phi-reader", {"patient": patient + "\u0000"}),
            ]
        assert statuses == [201, 201, 200, 200, 200, 404, 201, 404, 201, 201, 404, 201, 201,
                            400]
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert '"POST /history/query HTTP/1.1" 200' in text  # the access log was on
    assert '"POST /consent/query HTTP/1.1" 200' in text
    for canary in canaries:
        assert canary not in text, canary
