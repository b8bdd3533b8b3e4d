"""The HTTP API's data, verification and bundle services (issue 6), through the real ASGI
app: uploads streamed to disk and content-addressed, ingested with per-file outcomes, limits
(413), roles (401, 403; the reviewer may fetch bundles and nothing else), recorded
verification runs, exports and the access log, reviewer bundles and their report. How the
app serves (witness endpoint, witnessing, timeouts, group commit): test_api_serving.py."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from pydicom import dcmread
from typer.testing import CliRunner

from radledger.api import create_app
from radledger.api.context import ApiContext
from radledger.api.multipart import MultipartReader
from radledger.api.services import ApiOptions
from radledger.cli.main import app as cli
from radledger.core import merkle
from radledger.core.bundle import load_bundle, verify_bundle
from radledger.core.note import format_vkey, parse_vkey
from radledger.dicom.fingerprint import fingerprint_file
from radledger.dicom.synthetic import Acquisition, canary_patient, fake_patients, write_study
from radledger.errors import BodyTooLarge, MultipartError
from radledger.ledger import release, trail
from radledger.ledger.deid import DeidJob, deidentify_tree
from radledger.ledger.drafts import Draft
from radledger.ledger.home import LedgerHome
from radledger.ledger.ingest import Ingester, ingest
from radledger.ledger.receive import stored_path
from radledger.ledger.setup import init_ledger, open_ledger, open_workspace
from radledger.ledger.tokens import create_token, open_tokens
from test_api import DRAFT, Api, _error

from helpers import raw_db

ORIGIN = "example.org/api-data"
CANARY = "ZZCANARYQX"
ROLES = ("admin", "writer", "reader", "phi-reader", "auditor", "reviewer")
READERS = {"admin", "writer", "reader", "phi-reader", "auditor"}


@pytest.fixture(autouse=True)
def _quiet_pydicom(recwarn: pytest.WarningsRecorder) -> None:
    """pydicom may warn while the tests build files; that is not a test failure."""


@pytest.fixture
def home(tmp_path: Path) -> LedgerHome:
    created, ledger = init_ledger(tmp_path / "home", ORIGIN, "service")
    ledger.store.close()
    return created


def _tokens(home: LedgerHome) -> dict[str, str]:
    store = open_tokens(home)
    try:
        return {role: create_token(store, role, role) for role in ROLES}
    finally:
        store.close()


@pytest.fixture
def tokens(home: LedgerHome) -> dict[str, str]:
    return _tokens(home)


class AppApi(Api):
    """A client that keeps its app at hand (its state: context, services)."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app)
        self.app = app

    @property
    def ctx(self) -> ApiContext:
        return cast(ApiContext, self.app.state.radledger)


@contextmanager
def running(home: LedgerHome, **options: Any) -> Iterator[AppApi]:
    api = AppApi(create_app(home.path, **options))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def api(home: LedgerHome) -> Iterator[AppApi]:
    with running(home) as started:
        yield started


@pytest.fixture
def study(tmp_path: Path) -> list[Path]:
    """Three small CT slices of a patient whose every identifying field holds CANARY."""
    return write_study(tmp_path / "acquired", canary_patient(CANARY),
                       Acquisition(slices=3, rows=16, columns=16))


def _files(*contents: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"{CANARY}-{n}.dcm", data, "application/dicom"))
            for n, data in enumerate(contents)]


def _size(home: LedgerHome) -> int:
    _, ledger = open_ledger(home.path)
    try:
        return ledger.store.entry_count()
    finally:
        ledger.store.close()


def _entry(api: Api, tokens: dict[str, str], index: int) -> dict[str, Any]:
    response = api.get(f"/entries/{index}", tokens["reader"])
    assert response.status_code == 200, response.text
    return dict(response.json()["entry"])


def _incoming(home: LedgerHome) -> list[Path]:
    return list((home.path / "uploads" / ".incoming").iterdir())


# -- roles ----------------------------------------------------------------------------------
# (method, path, roles allowed) of every route this slice adds that needs a token
ROUTES = [
    ("POST", "/ingest", {"admin", "writer"}),
    ("POST", "/fingerprint", READERS),
    ("POST", "/verify", {"admin", "auditor"}),
    ("GET", "/verify/runs", READERS),
    ("GET", "/checkpoints", READERS),
    ("GET", "/proof/consistency?from=1", READERS),
    ("GET", "/export/prov", {"admin", "auditor"}),
    ("GET", "/export/fhir", {"admin", "auditor"}),
    ("GET", "/access", {"admin", "auditor"}),
    ("GET", "/releases/0/bundle", {"admin", "auditor", "reviewer"}),
    ("POST", "/bundles/verify", set(ROLES)),
]


@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES)
def test_every_route_wants_a_token_and_a_role_that_grants_it(
        api: Api, tokens: dict[str, str], method: str, path: str, allowed: set[str]) -> None:
    for headers in ({}, {"Authorization": "Bearer rlt_unknown"}):
        response = api.request(method, path, headers=headers, files=_files(b"x"))
        _error(response, 401, "unauthorized")
    for role in sorted(set(ROLES) - allowed):
        message = _error(api.request(method, path, tokens[role], files=_files(b"x")), 403,
                         "forbidden")
        assert role in message
    for role in sorted(allowed):  # past the role check (the body or target may be refused)
        assert api.request(method, path, tokens[role], files=_files(b"x")).status_code \
            not in (401, 403)


def test_a_reviewer_may_fetch_bundles_and_nothing_else(api: Api,
                                                       tokens: dict[str, str]) -> None:
    """Every route the API documents, with the reviewer's token: refused unless it is the
    bundle download, the bundle check or the public read path."""
    open_to_reviewers = {"/releases/{index}/bundle", "/bundles/verify", "/checkpoint",
                         "/tile/{path}"}
    ours = {path.split("?")[0] for _, path, _ in ROUTES} | {"/entries", "/entries/{index}",
                                                            "/proof/inclusion/{index}"}
    checked = 0
    for template, methods in api.get("/openapi.json").json()["paths"].items():
        if template in open_to_reviewers:
            continue
        path = re.sub(r"\{[^}]+\}", "0", template)
        for method in methods:
            response = api.request(method.upper(), path, tokens["reviewer"], json={})
            assert response.status_code >= 400, (method, path, response.text)
            if template in ours or template.replace("0", "{index}") in ours:
                _error(response, 403, "forbidden")
            checked += 1
    assert checked >= 12


# -- uploads and ingest ---------------------------------------------------------------------
def test_ingest_stores_content_addressed_registers_and_records_the_token(
        home: LedgerHome, api: Api, tokens: dict[str, str], study: list[Path]) -> None:
    datas = [p.read_bytes() for p in study]
    bad = b"\0" * 128 + b"NOPE" + b"x" * 100
    response = api.post("/ingest", tokens["writer"], files=_files(*datas, bad))
    assert response.status_code == 200, response.text
    assert CANARY not in response.text  # neither header values nor the client's file names
    out = response.json()
    assert (out["registered"], out["rejected"], out["already_registered"]) == (3, 1, 0)
    files = out["files"]
    assert [f["part"] for f in files] == [0, 1, 2, 3]
    for item, data in zip(files, datas, strict=False):
        sha = hashlib.sha256(data).hexdigest()
        assert item["status"] == "registered" and item["file_sha256"] == sha
        assert item["path"] == f"uploads/{sha[:2]}/{sha[2:4]}/{sha}.dcm"
        stored = stored_path(home.path / "uploads", sha)
        assert stored.read_bytes() == data  # content-addressed, byte for byte
        entry = _entry(api, tokens, item["index"])
        assert entry["kind"] == "instance.registered"
        assert entry["body"]["file_sha256"] == sha
        assert entry["body"]["source"]["type"] == "api"
        assert entry["body"]["source"]["on_behalf_of"] == "writer"
    refused = files[3]
    assert refused["status"] == "rejected" and "path" not in refused
    assert refused["error"].startswith("DicomError: part 3: not a DICOM file")
    assert refused["file_sha256"] == hashlib.sha256(bad).hexdigest()
    assert not stored_path(home.path / "uploads", refused["file_sha256"]).exists()
    assert _incoming(home) == []
    access = _entry(api, tokens, out["access_index"])
    assert access["kind"] == "access.recorded"
    assert access["body"] == {"action": "ingest", "target": "upload:3 entries", "via": "api",
                              "on_behalf_of": "writer"}
    assert access["refs"] == [f["index"] for f in files[:3]]

    # the same files again: nothing new, nothing recorded
    size = _size(home)
    again = api.post("/ingest", tokens["admin"], files=_files(*datas)).json()
    assert [f["status"] for f in again["files"]] == ["already-registered"] * 3
    assert [f["index"] for f in again["files"]] == [f["index"] for f in files[:3]]
    assert again["access_index"] is None and _size(home) == size


def test_ingest_is_the_cli_ingest(home: LedgerHome, api: Api, tokens: dict[str, str],
                                  study: list[Path]) -> None:
    """A file ingested from a folder is already registered when uploaded, and the other
    way round: one Ingester, one lookup."""
    _, ledger = open_ledger(home.path)
    try:
        ingest(Ingester(open_workspace(home, ledger), home.actor_signer), [study[0]], 1,
               lambda _o, _s: None)
    finally:
        ledger.store.close()
    out = api.post("/ingest", tokens["writer"],
                   files=_files(*(p.read_bytes() for p in study))).json()
    assert [f["status"] for f in out["files"]] == ["already-registered", "registered",
                                                   "registered"]


def test_upload_limits_are_413_and_leave_nothing_behind(home: LedgerHome,
                                                        tokens: dict[str, str],
                                                        study: list[Path]) -> None:
    data = study[0].read_bytes()
    options = ApiOptions(max_upload_file=len(data) + 10, max_upload=3 * len(data))
    with running(home, max_body=1024, options=options) as api:
        # the app-wide 1 KiB limit does not apply to uploads: they have their own
        ok = api.post("/ingest", tokens["writer"], files=_files(data))
        assert ok.status_code == 200 and ok.json()["registered"] == 1
        big = data + b"\0" * 20
        message = _error(api.post("/ingest", tokens["writer"], files=_files(data, big)), 413,
                         "body_too_large")
        assert "part 1" in message
        _error(api.post("/fingerprint", tokens["reader"], files=_files(data, data, data)),
               413, "body_too_large")  # over the upload route's limit
        _error(api.post("/entries", tokens["writer"], json={"kind": "x-lab.a",
                                                            "body": {"pad": "x" * 2000}}),
               413, "body_too_large")  # other routes keep the app-wide limit
    with running(home) as api:
        many = [("files", (f"{n}", b"x", "application/dicom")) for n in range(101)]
        assert "more than 100 parts" in _error(
            api.post("/fingerprint", tokens["reader"], files=many), 413, "body_too_large")
    assert _incoming(home) == []
    assert _size(home) == 2 + 2  # the first upload and its access record only


def test_uploads_must_be_well_formed_multipart(api: Api, tokens: dict[str, str]) -> None:
    writer = tokens["writer"]
    _error(api.post("/ingest", writer, json={"files": []}), 400, "bad_request")
    boundary = "b0undary"
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    cut = (f"--{boundary}\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n"
           "DICM...").encode()
    assert "closing delimiter" in _error(
        api.post("/ingest", writer, content=cut, headers=headers), 400, "bad_request")
    _error(api.post("/ingest", writer, content=f"--{boundary}--\r\n".encode(),
                    headers=headers), 400, "bad_request")
    _error(api.post("/ingest", writer, content=f"--{boundary}x\r\n\r\n".encode(),
                    headers=headers), 400, "bad_request")


def test_fingerprint_is_the_cli_fingerprint_and_keeps_nothing(
        home: LedgerHome, api: Api, tokens: dict[str, str], study: list[Path]) -> None:
    response = api.post("/fingerprint", tokens["reader"],
                        files=_files(study[0].read_bytes(), b"not dicom"))
    assert response.status_code == 200, response.text
    assert CANARY not in response.text
    first, refused = response.json()
    expected = fingerprint_file(study[0]).as_json()
    assert first == {**expected, "path": "part 0"}
    assert refused == {"path": "part 1", "error": "DicomError: part 1: not a DICOM file "
                       "(no 'DICM' prefix after the 128-byte preamble)"}
    assert _size(home) == 2  # no entry, not even an access record: it reads no ledger data
    assert [p for p in (home.path / "uploads").rglob("*") if p.is_file()] == []


class _Parts:
    """A multipart sink keeping each part in memory (for the reader's own test)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def start(self, number: int) -> None:
        assert number == len(self.parts)
        self.parts.append(b"")

    def data(self, chunk: bytes) -> None:
        self.parts[-1] += chunk

    def end(self) -> None:
        """(nothing to finish)"""


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, 1000, 1 << 20])
def test_the_multipart_reader_splits_parts_however_the_body_arrives(piece: int) -> None:
    contents = [b"", b"a", b"\r\n--XyY\r\n--Xy", b"--XyZ--\r\n", bytes(range(256)) * 40, b"\r\n"]
    body = b"preamble\r\n" + b"".join(
        b"--XyZ\r\nContent-Disposition: form-data; name=f\r\n\r\n" + c + b"\r\n"
        for c in contents) + b"--XyZ--\r\nepilogue"
    sink = _Parts()
    reader = MultipartReader(b"XyZ", sink, max_part=10_240, max_parts=6)
    for start in range(0, len(body), piece):
        reader.feed(body[start:start + piece])
    reader.close()
    assert sink.parts == contents
    with pytest.raises(BodyTooLarge, match="part 4"):
        small = MultipartReader(b"XyZ", _Parts(), max_part=10_239, max_parts=6)
        for start in range(0, len(body), piece):
            small.feed(body[start:start + piece])
    with pytest.raises(BodyTooLarge, match="more than 5 parts"):
        MultipartReader(b"XyZ", _Parts(), max_part=10_240, max_parts=5).feed(body)
    cut = MultipartReader(b"XyZ", _Parts(), max_part=10_240, max_parts=6)
    cut.feed(body[:-20])
    with pytest.raises(MultipartError, match="closing delimiter"):
        cut.close()


# -- verification runs ----------------------------------------------------------------------
def test_a_verification_run_is_recorded_and_listed(home: LedgerHome, api: Api,
                                                   tokens: dict[str, str]) -> None:
    assert api.get("/verify/runs", tokens["reader"]).json() == []
    response = api.post("/verify", tokens["auditor"])
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["ok"] is True and run["tree_size"] == 2 and run["problems"] == []
    assert run["by"] == "auditor" and run["entries_checked"] == 2
    assert CliRunner().invoke(cli, ["verify", "--home", str(home.path)]).exit_code == 0
    runs = api.get("/verify/runs", tokens["reader"]).json()
    assert [r["by"] for r in runs] == ["cli", "auditor"]  # newest first
    assert runs[1]["started"] == run["started"] and runs[1]["ok"] is True
    assert len(api.get("/verify/runs?limit=1", tokens["reader"]).json()) == 1
    _error(api.get("/verify/runs?limit=0", tokens["reader"]), 422, "invalid_request")


def test_a_verification_run_names_tampering(home: LedgerHome, tokens: dict[str, str]) -> None:
    _, ledger = open_ledger(home.path)
    try:
        ledger.append_drafts([Draft("x-lab.qc-check", {"n": n}) for n in range(5)],
                             home.actor_signer)
    finally:
        ledger.store.close()
    conn = raw_db(home.database)
    data = conn.execute("SELECT data FROM entries WHERE idx = 4").fetchone()[0]
    conn.execute("UPDATE entries SET data = ? WHERE idx = 4", (data.replace(b'"n":', b'"m":'),))
    conn.close()
    with running(home) as api:
        run = api.post("/verify", tokens["admin"]).json()
        assert run["ok"] is False and run["problem_count"] >= 1
        assert min(p["index"] for p in run["problems"] if "index" in p) == 4
        (listed,) = api.get("/verify/runs", tokens["auditor"]).json()
        assert listed["ok"] is False and listed["by"] == "admin"


# -- checkpoints, proofs, exports, access ---------------------------------------------------
def test_checkpoints_and_consistency_proofs(api: Api, tokens: dict[str, str]) -> None:
    for n in range(3):
        assert api.post("/entries", tokens["writer"], json={**DRAFT, "body": {"n": n}}
                        ).status_code == 201
    latest = api.get("/checkpoints", tokens["reader"]).json()
    assert latest["tree_size"] == 8 and latest["cosigners"] == []
    assert latest["note"] == api.get("/checkpoint").text
    older = api.get("/checkpoints?tree_size=4", tokens["reader"]).json()
    assert older["tree_size"] == 4
    _error(api.get("/checkpoints?tree_size=5", tokens["reader"]), 404, "not_found")
    proof = api.get("/proof/consistency?from=4&to=8", tokens["reader"]).json()
    assert (proof["size1"], proof["size2"]) == (4, 8)
    assert (proof["root1"], proof["root2"]) == (older["root"], latest["root"])
    merkle.verify_consistency(4, 8, [bytes.fromhex(h) for h in proof["proof"]],
                              bytes.fromhex(older["root"]), bytes.fromhex(latest["root"]))
    assert api.get("/proof/consistency?from=2", tokens["reader"]).json()["size2"] == 8
    _error(api.get("/proof/consistency?from=2&to=9", tokens["reader"]), 404, "not_found")
    _error(api.get("/proof/consistency?from=6&to=4", tokens["reader"]), 400, "bad_request")
    _error(api.get("/proof/consistency?from=0", tokens["reader"]), 422, "invalid_request")
    _error(api.get("/proof/consistency", tokens["reader"]), 422, "invalid_request")


def test_exports_are_recorded_and_the_access_log_pages(home: LedgerHome, api: Api,
                                                       tokens: dict[str, str]) -> None:
    prov = api.get("/export/prov", tokens["auditor"])
    assert prov.status_code == 200 and prov.headers["content-type"] == "application/json"
    assert "urn:radledger:" in prov.text and json.loads(prov.text)
    fhir = api.get("/export/fhir", tokens["admin"])
    assert fhir.headers["content-type"] == "application/fhir+json"
    assert json.loads(fhir.text)["resourceType"] == "Bundle"
    records = [int(r.headers["x-radledger-access-index"]) for r in (prov, fhir)]
    assert records == [2, 3]
    assert _entry(api, tokens, 2)["body"] == {"action": "export", "target":
                                              "prov:ledger:2 entries", "via": "api",
                                              "on_behalf_of": "auditor"}
    assert _entry(api, tokens, 3)["body"]["on_behalf_of"] == "admin"
    for n in range(3):
        api.post("/entries", tokens["writer"], json={**DRAFT, "body": {"n": n}})
    page = api.get("/access", tokens["auditor"]).json()
    assert [e["index"] for e in page["entries"]] == [2, 3, 5, 7, 9]
    assert page["next"] is None
    first = api.get("/access?limit=2", tokens["auditor"]).json()
    assert [e["index"] for e in first["entries"]] == [2, 3] and first["next"] == 4
    rest = api.get(f"/access?start={first['next']}&limit=2", tokens["auditor"]).json()
    assert [e["index"] for e in rest["entries"]] == [5, 7] and rest["next"] == 8
    assert all(e["entry"]["kind"] == "access.recorded" for e in page["entries"])
    _error(api.get("/access?limit=5000", tokens["auditor"]), 422, "invalid_request")


# -- reviewer bundles -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[LedgerHome, int, dict[str, str]]:
    """A ledger home with a release of a de-identified study, its index, and tokens."""
    tmp = tmp_path_factory.mktemp("released")
    home, ledger = init_ledger(tmp / "home", ORIGIN, "service")
    try:
        space = open_workspace(home, ledger)
        acquired = tmp / "acquired"
        write_study(acquired, next(fake_patients(1)), Acquisition(slices=2, rows=16, columns=16))
        ingest(Ingester(space, home.actor_signer), [acquired], 1, lambda _o, _s: None)
        outcomes = deidentify_tree(space, home.actor_signer, DeidJob(acquired, tmp / "out"),
                                   lambda _o: None)
        patient = str(dcmread(acquired / "slice-0001.dcm").PatientID)
        trail.record_consent(space, home.actor_signer, trail.Consent(patient, "trial", True))
        copies = [o.output_index for o in outcomes if o.output_index is not None]
        made = release.create_release(space, home.actor_signer,
                                      release.ReleasePlan("trial", "1", copies, "trial"))
        space.side.close()
    finally:
        ledger.store.close()
    return home, made.index, _tokens(home)


def test_a_reviewer_downloads_a_release_bundle_that_verifies(
        released: tuple[LedgerHome, int, dict[str, str]]) -> None:
    home, index, tokens = released
    vkey = format_vkey(home.origin, home.ledger_signer.signing_key.public_key)
    with running(home) as api:
        before = _size(home)
        response = api.get(f"/releases/{index}/bundle", tokens["reviewer"])
        assert response.status_code == 200, response.text
        assert response.headers["content-disposition"] == \
            f'attachment; filename="release-{index}.rlbundle"'
        doc = load_bundle(response.content)
        assert doc.release == index
        report = verify_bundle(doc, parse_vkey(vkey))
        assert report.ok, report.failures
        assert _size(home) == before + 1
        record = _entry(api, tokens, before)
        assert record["body"] == {"action": "export", "target":
                                  f"bundle:dataset.released/{index}", "via": "api",
                                  "on_behalf_of": "reviewer"}
        _error(api.get(f"/releases/{index - 1}/bundle", tokens["reviewer"]), 404, "not_found")
        _error(api.get("/releases/99999/bundle", tokens["auditor"]), 404, "not_found")
        _error(api.get("/releases/-1/bundle", tokens["auditor"]), 422, "invalid_request")


def test_an_uploaded_bundle_gets_the_reviewer_report_naming_what_fails(
        released: tuple[LedgerHome, int, dict[str, str]]) -> None:
    home, index, tokens = released
    vkey = format_vkey(home.origin, home.ledger_signer.signing_key.public_key)
    with running(home) as api:
        bundle = api.get(f"/releases/{index}/bundle", tokens["auditor"]).content
        size = _size(home)
        ok = api.post("/bundles/verify", tokens["reviewer"], params={"trust_key": vkey},
                      files={"bundle": ("b.rlbundle", bundle, "application/json")})
        assert ok.status_code == 200, ok.text
        report = ok.json()
        assert report["ok"] is True and report["failures"] == []
        assert all(check["ok"] for check in report["checks"])
        assert "signed by the trusted key" in report["report"]
        assert report["summary"].startswith("2 of 2 images verified back to acquisition")

        doc = json.loads(bundle)
        member = next(e for e in doc["entries"] if '"deidentify"' in e["entry"]
                      and '"instance.registered"' in e["entry"])
        member["entry"] = member["entry"].replace('"size":', '"size":1', 1)
        tampered = api.post("/bundles/verify", tokens["reader"],
                            files={"bundle": ("b.rlbundle", json.dumps(doc).encode(), "x")})
        assert tampered.status_code == 200
        out = tampered.json()
        assert out["ok"] is False
        failing = [c["claim"] for c in out["checks"] if not c["ok"]]
        assert any(f"entry {member['index']} (inclusion proof)" in c for c in failing), failing
        assert out["summary"].startswith("NOT VERIFIED")
        assert "FAIL" in out["report"]

        other_key = format_vkey("example.org/other", b"\1" * 32)
        pinned = api.post("/bundles/verify", tokens["reviewer"], params={"trust_key": other_key},
                          files={"bundle": ("b", bundle, "x")}).json()
        assert pinned["ok"] is False
        _error(api.post("/bundles/verify", tokens["reviewer"],
                        files={"bundle": ("b", b"{not json", "x")}), 400, "bad_request")
        _error(api.post("/bundles/verify", tokens["reviewer"],
                        files=[("a", ("a", bundle, "x")), ("b", ("b", bundle, "x"))]),
               413, "body_too_large")
        assert _size(home) == size  # checking a bundle records nothing
    assert _incoming(home) == []


# -- configuration ----------------------------------------------------------------------------
def test_serve_shows_the_api_defaults() -> None:
    from radledger.api import ratelimit, timeouts  # noqa: PLC0415
    from radledger.cli import servecmds  # noqa: PLC0415

    defaults = ApiOptions()
    assert servecmds.DEFAULT_MAX_UPLOAD == defaults.max_upload
    assert servecmds.DEFAULT_MAX_UPLOAD_FILE == defaults.max_upload_file
    assert servecmds.DEFAULT_REQUEST_TIMEOUT_S == timeouts.DEFAULT_REQUEST_TIMEOUT_S \
        == defaults.request_timeout
    assert (servecmds.DEFAULT_RATE, servecmds.DEFAULT_BURST) == \
        (ratelimit.DEFAULT_RATE, ratelimit.DEFAULT_BURST)


def test_openapi_describes_the_new_routes(api: Api) -> None:
    paths = set(api.get("/openapi.json").json()["paths"])
    assert {"/ingest", "/fingerprint", "/verify", "/verify/runs", "/checkpoints",
            "/proof/consistency", "/export/prov", "/export/fhir", "/access",
            "/releases/{index}/bundle", "/bundles/verify"} <= paths
    assert "/add-checkpoint" not in paths
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for method, path, _ in ROUTES:  # and the README documents each
        documented = path.split("?")[0].replace("/0/", "/{index}/")
        assert f"`{method} {documented}" in readme, path
