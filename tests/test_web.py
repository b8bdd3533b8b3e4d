"""The web UI through the real ASGI app (httpx, no browser): login cookie and CSRF, every
page's status for every role, identified data never previewed or shown unasked, and the
release, reviewer, consent, erasure and token pages doing what the CLI does, each write and
each read of identified data recorded as access naming the token."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from radledger.api import create_app
from radledger.core import jcs, merkle
from radledger.dicom.thumbnail import PNG_SIGNATURE
from radledger.ledger.tokens import GRANTS, Permission
from radledger.web.session import COOKIE
from webdemo import Demo, build_demo

BASE = "http://ledger.test"


class Session:
    """One browser: its cookies, and form posts sent as a page of this site sends them."""

    def __init__(self, web: Web, base: str = BASE) -> None:
        self._web = web
        self.base = base
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app),
                                        base_url=base)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._web.run(self.client.get(url, **kwargs))

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             origin: str | None = "same", **kwargs: Any) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form["csrf"] = self.csrf()
        headers = {"Origin": self.base if origin == "same" else origin} if origin else {}
        return self._web.run(self.client.post(url, data=form, headers=headers, **kwargs))

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([0-9a-f]{64})"', self.get("/ui/reviewer").text)
        assert found, "no CSRF token on the page: not logged in?"
        return found[1]

    def login(self, token: str) -> httpx.Response:
        response = self.post("/ui/login", {"token": token}, csrf=False)
        assert response.status_code == 303, response.text
        return response


class Web:
    """The app with its lifespan running (as under uvicorn), and sessions on it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._runner = asyncio.Runner()
        self._lifespan: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
        self.run(self._lifespan.__aenter__())
        self._sessions: list[Session] = []

    def run(self, coroutine: Any) -> Any:
        return self._runner.run(coroutine)

    def session(self, token: str | None = None, base: str = BASE) -> Session:
        session = Session(self, base)
        self._sessions.append(session)
        if token is not None:
            session.login(token)
        return session

    def close(self) -> None:
        for session in self._sessions:
            self.run(session.client.aclose())
        self.run(self._lifespan.__aexit__(None, None, None))
        self._runner.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def web(demo: Demo) -> Iterator[Web]:
    running = Web(create_app(demo.home))
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def sessions(web: Web, demo: Demo) -> dict[str, Session]:
    """A logged-in session per role."""
    return {role: web.session(token) for role, token in demo.tokens.items()}


def _text(response: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", response.text))


# -- login, cookie, CSRF ------------------------------------------------------------------------
def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it(web: Web, demo: Demo) -> None:
    browser = web.session()
    response = browser.login(demo.tokens["reader"])
    assert response.headers["location"] == "/ui/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Secure" not in cookie  # plain http: no Secure
    assert browser.get("/ui/").status_code == 200
    response = browser.post("/ui/logout")
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert f'{COOKIE}=""' in response.headers["set-cookie"]
    assert browser.get("/ui/").status_code == 303
    secure = web.session(base="https://ledger.test").login(demo.tokens["reader"])
    assert "Secure" in secure.headers["set-cookie"]


def test_login_goes_on_to_the_page_asked_for_and_never_to_another_site(
        web: Web, demo: Demo) -> None:
    browser = web.session()
    asked = browser.get("/ui/releases")
    assert asked.status_code == 303 and asked.headers["location"] == \
        "/ui/login?next=%2Fui%2Freleases"
    page = browser.get(asked.headers["location"])
    assert 'name="next" value="/ui/releases"' in page.text
    response = browser.post("/ui/login", {"token": demo.tokens["admin"],
                                          "next": "/ui/releases"}, csrf=False)
    assert response.headers["location"] == "/ui/releases"
    for evil in ("https://evil.example/ui/", "//evil.example/ui/", "/ui/\\evil"):
        response = web.session().post("/ui/login", {"token": demo.tokens["admin"],
                                                     "next": evil}, csrf=False)
        assert response.headers["location"] == "/ui/"


def test_reviewers_start_on_the_reviewer_page(web: Web, demo: Demo) -> None:
    response = web.session().login(demo.tokens["reviewer"])
    assert response.headers["location"] == "/ui/reviewer"


def test_unknown_or_revoked_tokens_do_not_log_in(web: Web, sessions: dict[str, Session],
                                                 demo: Demo) -> None:
    response = web.session().post("/ui/login", {"token": "rlt_not-a-token"}, csrf=False)
    assert response.status_code == 401 and "not valid" in response.text
    assert "set-cookie" not in response.headers
    admin = sessions["admin"]
    created = admin.post("/ui/tokens", {"name": "short-lived", "role": "reader"})
    token = re.search(r'id="new-token" type="text" readonly value="(rlt_[^"]+)"',
                      created.text)
    assert token, created.text
    browser = web.session(token[1])
    assert browser.get("/ui/").status_code == 200
    assert admin.post("/ui/tokens/revoke", {"name": "short-lived"}).status_code == 303
    assert browser.get("/ui/").status_code == 303  # logged out at the next click
    assert web.session().post("/ui/login", {"token": token[1]}, csrf=False).status_code == 401


def test_a_login_form_from_another_site_is_refused(web: Web, demo: Demo) -> None:
    for origin in ("https://evil.example", None):
        response = web.session().post("/ui/login", {"token": demo.tokens["admin"]},
                                      csrf=False, origin=origin)
        assert response.status_code == 403
        assert "set-cookie" not in response.headers


def test_forms_need_the_sessions_csrf_token_and_this_sites_origin(
        sessions: dict[str, Session], demo: Demo) -> None:
    admin = sessions["admin"]
    size = demo.size()
    form = {"patient": demo.patient_id, "decision": "grant"}
    assert admin.post("/ui/consent", form, csrf=False).status_code == 403
    assert admin.post("/ui/consent", dict(form, csrf="0" * 64), csrf=False).status_code == 403
    assert admin.post("/ui/consent", form, origin="https://evil.example").status_code == 403
    assert admin.post("/ui/consent", form, origin=None).status_code == 403
    assert demo.size() == size  # nothing was recorded
    other = sessions["writer"].csrf()
    assert other != admin.csrf()  # per session
    assert admin.post("/ui/consent", dict(form, csrf=other), csrf=False).status_code == 403


def test_pages_send_a_strict_content_security_policy(sessions: dict[str, Session]) -> None:
    response = sessions["reader"].get("/ui/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text  # scripts come from files only


# -- every page's role rules ----------------------------------------------------------------
def _pages(demo: Demo) -> list[tuple[str, frozenset[Permission]]]:
    """(path, permissions any of which opens it), for every GET page."""
    read, review = frozenset({Permission.READ}), frozenset({Permission.REVIEW})
    return [
        ("/ui/", read), ("/ui/studies", read), (f"/ui/studies/{demo.study_key}", read),
        ("/ui/entries/3", read), ("/ui/releases", read), (f"/ui/releases/{demo.release}", read),
        (f"/ui/thumbnails/{demo.copies[0]}.png", read),
        (f"/ui/releases/{demo.release}/bundle", review | {Permission.AUDIT}),
        ("/ui/reviewer", review | read), (f"/ui/reviewer?release={demo.release}", review | read),
        ("/ui/consent", frozenset({Permission.APPEND, Permission.READ_PHI})),
        ("/ui/erasure", frozenset({Permission.ADMIN})),
        ("/ui/tokens", frozenset({Permission.ADMIN})),
    ]


def test_every_page_follows_the_roles_of_ledger_tokens(sessions: dict[str, Session],
                                                       demo: Demo) -> None:
    for path, opens in _pages(demo):
        for role, session in sessions.items():
            allowed = bool(GRANTS[role] & opens)
            status = session.get(path).status_code
            assert status == (200 if allowed else 403), (path, role, status)


def test_the_reviewer_role_sees_only_the_reviewer_page_and_bundles(
        sessions: dict[str, Session], demo: Demo) -> None:
    reviewer = sessions["reviewer"]
    page = reviewer.get("/ui/reviewer")
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page.text, re.S)
    assert nav and re.findall(r'href="([^"]+)"', nav[1]) == ["/ui/reviewer"]
    assert f"/ui/releases/{demo.release}/bundle" in page.text
    assert reviewer.get("/ui/").status_code == 403
    assert reviewer.get(f"/ui/entries/{demo.release}").status_code == 403


def test_pages_without_a_session_go_to_the_login_page(web: Web, demo: Demo) -> None:
    anonymous = web.session()
    for path, _ in _pages(demo):
        response = anonymous.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=")
    for path in ("/ui/verify", "/ui/consent", "/ui/releases", "/ui/tokens"):
        assert anonymous.post(path, csrf=False).status_code == 401
    assert anonymous.get("/").headers["location"] == "/ui/"


def test_the_json_api_keeps_its_own_error_shape(sessions: dict[str, Session]) -> None:
    response = sessions["admin"].get("/entries/999999")  # a cookie is no bearer token
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


# -- dashboard ----------------------------------------------------------------------------------
def test_the_dashboard_shows_size_checkpoint_witnesses_anchors_and_recent_activity(
        sessions: dict[str, Session], demo: Demo) -> None:
    page = _text(sessions["reader"].get("/ui/"))
    assert f"{demo.size()} entries" in re.sub(r"\s+", " ", page)
    assert "Signed for tree size" in page and "radledger.local/demo" in page
    assert "No witnesses are configured" in page and "Nothing has been anchored" in page
    assert "Recent activity" in page and "Release demo-release version 1" in page
    assert "Run a full verification now" not in page  # readers may not audit


def test_an_auditor_runs_a_full_verification_and_the_dashboard_shows_it(
        sessions: dict[str, Session]) -> None:
    auditor = sessions["auditor"]
    assert "Run a full verification now" in auditor.get("/ui/").text
    response = auditor.post("/ui/verify")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/?ran=ok#verification"
    page = _text(auditor.get("/ui/?ran=ok"))
    assert "The verification you ran passed" in page
    assert re.search(r"Last run passed: \d+ entries and \d+ blocks checked .* by auditor", page)
    assert sessions["reader"].post("/ui/verify").status_code == 403


# -- studies --------------------------------------------------------------------------------------
def test_a_search_by_real_uid_goes_to_the_pseudonymous_study_page(
        sessions: dict[str, Session], demo: Demo) -> None:
    reader = sessions["reader"]
    assert reader.get("/ui/studies", params={"q": demo.study_uid}).status_code == 200  # ignored
    response = reader.post("/ui/studies", {"q": demo.study_uid})
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/studies/{demo.study_key}"
    assert demo.study_uid not in response.headers["location"]
    page = reader.get(response.headers["location"])
    assert page.status_code == 200 and demo.study_uid not in page.text
    by_key = reader.post("/ui/studies", {"q": demo.study_key.upper()})
    assert by_key.headers["location"] == f"/ui/studies/{demo.study_key}"


@pytest.mark.parametrize(("query", "status"), [
    ("1.2.3.4.5.6.7.8.9", 404), ("/etc/passwd", 422), ("../../x", 422), ("Doe^John", 422),
    ("1." * 40, 422), ("ab" * 31, 422)])
def test_a_search_for_anything_but_a_known_uid_or_pseudonym_says_so(
        sessions: dict[str, Session], query: str, status: int) -> None:
    response = sessions["reader"].post("/ui/studies", {"q": query})
    assert response.status_code == status
    assert query not in response.text  # never echoed
    assert 'role="alert"' in response.text


def test_the_study_page_shows_the_timeline_and_draws_the_lineage(
        sessions: dict[str, Session], demo: Demo) -> None:
    page = sessions["reader"].get(f"/ui/studies/{demo.study_key}").text
    svg = re.search(r"<svg .*?</svg>", page, re.S)
    assert svg
    nodes = re.findall(r'<a href="/ui/entries/(\d+)" class="node stage-([a-z]+)"', svg[0])
    stages = {stage for _, stage in nodes}
    assert {"protocol", "acquisition", "derivation", "deidentified", "release",
            "consent"} <= stages
    assert len(re.findall(r'<path class="edge"', svg[0])) >= 5
    assert f"/ui/entries/{demo.release}" in svg[0]
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page, re.S)
    assert timeline
    kinds = set(re.findall(r'<span class="badge">([a-z]+)</span>', timeline[1]))
    assert kinds == {"protocol", "acquisition", "derivation", "deidentified", "consent",
                     "release"}
    assert len(re.findall(r"<li ", timeline[1])) == 1 + 3 * len(demo.copies) + 2


def test_previews_are_of_de_identified_images_only(sessions: dict[str, Session],
                                                   demo: Demo) -> None:
    reader = sessions["reader"]
    page = reader.get(f"/ui/studies/{demo.study_key}").text
    shown = {int(i) for i in re.findall(r'src="/ui/thumbnails/(\d+)\.png"', page)}
    assert shown and shown <= set(demo.copies)
    assert not shown & set(demo.sources)
    png = reader.get(f"/ui/thumbnails/{demo.copies[0]}.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(PNG_SIGNATURE)
    for identified in demo.sources[:3]:
        refused = reader.get(f"/ui/thumbnails/{identified}.png")
        assert refused.status_code == 403 and "never previewed" in refused.text
    assert reader.get(f"/ui/thumbnails/{demo.release}.png").status_code == 404


def test_a_preview_is_refused_when_the_file_is_not_the_registered_one(
        sessions: dict[str, Session], demo: Demo) -> None:
    index, path = next(iter(demo.copy_files().items()))
    kept = path.read_bytes()
    try:
        path.write_bytes(kept[:-1] + bytes([kept[-1] ^ 1]))  # one bit of a pixel
        response = sessions["reader"].get(f"/ui/thumbnails/{index}.png")
        assert response.status_code == 404 and "changed" in response.text
        assert str(demo.home) not in response.text  # no server path in the message
    finally:
        path.write_bytes(kept)
    assert sessions["reader"].get(f"/ui/thumbnails/{index}.png").status_code == 200


# -- entries ----------------------------------------------------------------------------------
def _proof_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="proof-data">(.*?)</script>', page,
                      re.S)
    assert found
    return dict(json.loads(found[1]))


def test_the_entry_page_shows_the_entry_its_signer_and_a_proof_that_verifies(
        sessions: dict[str, Session], demo: Demo) -> None:
    import base64  # noqa: PLC0415

    page = sessions["reader"].get(f"/ui/entries/{demo.release}").text
    assert "verified on the server" in page and "actor key registered by" in page
    data = _proof_data(page)
    entry = base64.b64decode(data["entry_b64"])
    assert json.loads(entry)["kind"] == "dataset.released"
    assert html.unescape(re.search(r'<pre class="wrap" id="canonical">(.*?)</pre>', page,
                                   re.S)[1]).encode() == entry  # type: ignore[index]
    leaf = merkle.leaf_hash(entry)
    assert leaf.hex() == data["leaf_hash"]
    root = data["checkpoint"].split("\n")[2]
    merkle.verify_inclusion(leaf, data["index"], data["tree_size"],
                            [bytes.fromhex(h) for h in data["proof"]], base64.b64decode(root))
    assert data["vkey"].startswith("radledger.local/demo+")
    assert sessions["reader"].get("/ui/entries/99999999").status_code == 404


def test_identified_data_is_shown_only_to_phi_readers_who_ask_and_is_recorded(
        sessions: dict[str, Session], demo: Demo) -> None:
    source = demo.sources[0]
    reader_page = sessions["reader"].get(f"/ui/entries/{source}").text
    assert "sample-dicom" not in reader_page and "Show the file" not in reader_page
    assert sessions["reader"].post(f"/ui/entries/{source}/reveal").status_code == 403
    phi = sessions["phi-reader"]
    assert "sample-dicom" not in phi.get(f"/ui/entries/{source}").text
    size = demo.size()
    shown = phi.post(f"/ui/entries/{source}/reveal")
    assert shown.status_code == 200 and "sample-dicom" in shown.text
    (record,) = demo.entries(size)
    assert record["kind"] == "access.recorded"
    assert record["body"] == {"action": "read", "target": f"path/{source}", "via": "web",
                              "on_behalf_of": "phi-reader"}


# -- releases -------------------------------------------------------------------------------------
def test_a_release_shows_the_consent_check_and_records_nothing_until_confirmed(
        sessions: dict[str, Session], demo: Demo) -> None:
    writer = sessions["writer"]
    size = demo.size()
    check = writer.post("/ui/releases/check", {"name": "web-release", "version": "1",
                                               "members": demo.study_uid})
    assert check.status_code == 200
    page = _text(check)
    assert "Consent is in force for every member that would be released (40 of 40)" in page
    assert "Nothing has been recorded yet" in page
    assert demo.size() == size
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">',
                           check.text))
    assert form["chosen"].split(",") == [str(i) for i in demo.copies]
    form.pop("csrf")
    created = writer.post("/ui/releases", form)
    assert created.status_code == 303
    index = int(re.fullmatch(r"/ui/releases/(\d+)\?created=1",
                             created.headers["location"])[1])  # type: ignore[index]
    release, record = demo.entries(size)
    assert release["kind"] == "dataset.released" and release["body"]["name"] == "web-release"
    assert len(release["body"]["members"]) == 40
    assert record["body"] == {"action": "append", "target": f"entry/{index}", "via": "web",
                              "on_behalf_of": "writer"}
    page = _text(writer.get(created.headers["location"]))
    assert "VERIFIED: 40 of 40 images verified back to acquisition" in page
    assert "40 of 40 member files rehashed" in page
    again = writer.post("/ui/releases", form)  # the same name and version twice
    assert again.status_code in (400, 409) and "exists already" in again.text


def test_a_release_without_consent_is_refused_at_the_check(sessions: dict[str, Session],
                                                           demo: Demo) -> None:
    size = demo.size()
    check = sessions["writer"].post("/ui/releases/check", {
        "name": "no-consent", "version": "1", "members": demo.unconsented_uid,
        "allow_identified": "true"})
    assert check.status_code == 200
    page = _text(check)
    assert "This release would be refused" in page and "no consent in force" in page
    assert 'id="confirm-release"' not in check.text
    assert demo.size() == size


def test_the_release_form_refuses_paths_and_readers(sessions: dict[str, Session],
                                                    demo: Demo) -> None:
    bad = sessions["writer"].post("/ui/releases/check", {
        "name": "x", "version": "1", "members": str(demo.home / "sample-dicom")})
    assert bad.status_code == 422 and "neither an entry index nor a UID" in bad.text
    assert sessions["reader"].post("/ui/releases/check", {
        "name": "x", "version": "1", "every": "true"}).status_code == 403
    assert "New release" not in sessions["reader"].get("/ui/releases").text


def test_a_downloaded_bundle_is_recorded_and_verifies_on_the_reviewer_page(
        sessions: dict[str, Session], demo: Demo) -> None:
    reviewer = sessions["reviewer"]
    size = demo.size()
    download = reviewer.get(f"/ui/releases/{demo.release}/bundle")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == \
        'attachment; filename="demo-release-1.rlbundle"'
    (record,) = demo.entries(size)
    assert record["body"] == {"action": "export", "target":
                              f"bundle:dataset.released/{demo.release}", "via": "web",
                              "on_behalf_of": "reviewer"}
    report = reviewer.post("/ui/reviewer", files={"bundle": ("demo.rlbundle",
                                                             download.content)})
    assert report.status_code == 200
    assert "VERIFIED: 40 of 40 images verified back to acquisition" in _text(report)
    assert 'class="fail"' not in report.text and report.text.count('class="pass"') >= 5
    doc = json.loads(download.content)
    for item in doc["entries"]:
        item["entry"] = item["entry"].replace('"version":"1"', '"version":"2"')
    tampered = jcs.canonicalize(doc)
    failed = reviewer.post("/ui/reviewer", files={"bundle": ("t.rlbundle", tampered)})
    assert 'class="fail"' in failed.text and "NOT VERIFIED" in _text(failed)
    junk = reviewer.post("/ui/reviewer", files={"bundle": ("junk.rlbundle", b"not json")})
    assert junk.status_code == 422 and "cannot be verified" in junk.text


# -- consent, erasure, tokens -------------------------------------------------------------------
def test_consent_is_recorded_by_writers_and_looked_up_by_phi_readers(
        sessions: dict[str, Session], demo: Demo) -> None:
    size = demo.size()
    done = sessions["writer"].post("/ui/consent", {"patient": "WEB-PATIENT-1",
                                                   "decision": "withdraw", "scope": "trial-9"},
                                   files={"evidence": ("form.pdf", b"%PDF signed")})
    assert done.status_code == 200 and "WEB-PATIENT-1" not in done.text
    consent, record = demo.entries(size)
    assert consent["kind"] == "consent.withdrawn"
    assert consent["body"]["scope"] == "trial-9" and "evidence_commitment" in consent["body"]
    assert record["body"]["on_behalf_of"] == "writer" and record["body"]["via"] == "web"
    assert "Look up a patient" not in done.text  # writers do not read identified data
    checked = sessions["phi-reader"].post("/ui/consent/check",
                                          {"patient": demo.patient_id})
    assert "is in force" in _text(checked) and demo.patient_id not in checked.text
    (lookup,) = demo.entries(size + 2)
    assert lookup["body"]["action"] == "read" and lookup["body"]["target"].startswith(
        "consent/")
    assert sessions["phi-reader"].post("/ui/consent", {
        "patient": "x", "decision": "grant"}).status_code == 403


def test_erasure_needs_an_admin_and_a_confirmation(sessions: dict[str, Session],
                                                   demo: Demo) -> None:
    form = {"patient": "WEB-PATIENT-1", "reason": "request of 2026-01-02"}
    assert sessions["writer"].post("/ui/erasure", form).status_code == 403
    size = demo.size()
    unconfirmed = sessions["admin"].post("/ui/erasure", form)
    assert unconfirmed.status_code == 422 and demo.size() == size
    done = sessions["admin"].post("/ui/erasure", dict(form, confirm="true"))
    assert done.status_code == 200 and "WEB-PATIENT-1" not in done.text
    erasure, record = demo.entries(size)
    assert erasure["kind"] == "erasure.recorded"
    assert erasure["body"]["requested_by"] == "admin" and len(erasure["body"]["commitments"]) == 1
    assert record["body"]["on_behalf_of"] == "admin"


def test_a_new_token_is_shown_once_and_listed_without_it(sessions: dict[str, Session]) -> None:
    admin = sessions["admin"]
    created = admin.post("/ui/tokens", {"name": "once", "role": "auditor"})
    token = re.search(r'value="(rlt_[A-Za-z0-9_-]+)"', created.text)
    assert token
    listing = admin.get("/ui/tokens").text
    assert token[1] not in listing and "<th scope=\"row\">once</th>" in listing
    bad = admin.post("/ui/tokens", {"name": "once", "role": "auditor"})
    assert bad.status_code == 422 and "in force" in bad.text
    assert admin.post("/ui/tokens", {"name": "x", "role": "root"}).status_code == 422


def test_every_page_has_a_clear_empty_state(tmp_path: Path) -> None:
    from radledger.ledger.setup import init_ledger  # noqa: PLC0415
    from radledger.ledger.tokens import create_token, open_tokens  # noqa: PLC0415

    home, ledger = init_ledger(tmp_path / "empty", "example.org/empty", "service")
    ledger.store.close()
    store = open_tokens(home)
    token = create_token(store, "admin", "admin")
    store.close()
    web = Web(create_app(home.path))
    try:
        admin = web.session(token)
        expected = {"/ui/": "not been fully verified yet", "/ui/studies": "No study appears",
                    "/ui/releases": "No dataset has been released yet",
                    "/ui/reviewer": "there is no bundle to review"}
        for path, text in expected.items():
            response = admin.get(path)
            assert response.status_code == 200 and text in response.text, path
            assert 'class="empty"' in response.text
    finally:
        web.close()
