"""The web UI in a real browser: Debian's Chromium driven by Playwright, against the app under
uvicorn on a loopback port, over the demo ledger. Logging in by keyboard, a study's timeline
and drawn lineage, a release from consent check to a bundle verified on the reviewer page,
"verify in this browser" passing and failing on a tampered proof, and a 375 px wide screen.

Screenshots go to tests/artifacts/. Chromium comes from the system (``make system-deps``);
``playwright install`` is never run. Without Chromium these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from radledger.api import create_app
from webdemo import Demo, build_demo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TIMEOUT_MS = 20_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def server(demo: Demo) -> Iterator[str]:
    """The app under uvicorn in a thread, on a free loopback port."""
    port = _free_port()
    running = uvicorn.Server(uvicorn.Config(create_app(demo.home), host="127.0.0.1",
                                            port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make system-deps` (Debian's chromium)"
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _login(page: Page, server: str, token: str) -> None:
    page.goto(f"{server}/ui/login")
    page.fill("#token", token)
    page.click("button:has-text('Log in')")
    page.wait_for_load_state()


def _active(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.className"
                             " || document.activeElement.tagName"))


def test_the_login_form_works_from_the_keyboard(page: Page, server: str, demo: Demo) -> None:
    page.goto(f"{server}/ui/")  # not logged in: sent to the login page
    assert "/ui/login" in page.url
    assert _active(page) == "token"  # focused on arrival
    page.keyboard.press("Shift+Tab")  # back through the header: the site's name ...
    assert page.evaluate("document.activeElement.textContent") == "radledger"
    page.keyboard.press("Shift+Tab")  # ... and first of all, the skip link
    assert _active(page) == "skip-link"
    assert page.is_visible(".skip-link")
    _shot(page, "login-skip-link")
    page.keyboard.press("Enter")
    assert _active(page) == "main"
    page.keyboard.press("Tab")
    assert _active(page) == "token"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus is visible
    page.keyboard.type(demo.tokens["auditor"])
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Log in"
    _shot(page, "login-keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/ui/")
    assert page.is_visible("text=Recent activity")
    page.click("button:has-text('Run a full verification now')")
    page.wait_for_selector("#last-run")
    assert page.inner_text("#last-run").startswith("Last run passed")
    _shot(page, "dashboard")


def test_a_study_shows_its_timeline_lineage_graph_and_de_identified_previews(
        page: Page, server: str, demo: Demo) -> None:
    _login(page, server, demo.tokens["reader"])
    page.click("nav >> text=Studies")
    page.fill("#q", demo.study_uid)
    page.press("#q", "Enter")
    page.wait_for_url(f"{server}/ui/studies/{demo.study_key}")
    assert demo.study_uid not in page.content()
    nodes = page.locator("svg.lineage-svg a.node")
    assert nodes.count() >= 6
    stages = set(page.eval_on_selector_all(
        "svg.lineage-svg a.node", "els => els.map(e => e.getAttribute('class'))"))
    assert {"node stage-protocol", "node stage-acquisition", "node stage-derivation",
            "node stage-deidentified", "node stage-release"} <= stages
    assert page.locator("svg.lineage-svg path.edge").count() >= 5
    assert page.locator("ol.timeline > li").count() == 1 + 3 * len(demo.copies) + 2
    first = page.locator("ul.thumbs img").first
    first.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first
                           .element_handle())
    _shot(page, "study")
    nodes.filter(has=page.locator("text=Release demo-release")).first.click()
    page.wait_for_url(f"{server}/ui/entries/{demo.release}")


def test_a_release_from_consent_check_to_a_bundle_verified_by_the_reviewer(
        page: Page, browser: Browser, server: str, demo: Demo, tmp_path: Path) -> None:
    _login(page, server, demo.tokens["admin"])
    page.goto(f"{server}/ui/releases")
    page.fill("#name", "browser-release")
    page.fill("#version", "1")
    page.fill("#members", demo.study_uid)
    size = demo.size()
    page.click("button:has-text('Check consent and members')")
    verdict = page.inner_text("#verdict")
    assert verdict.startswith("Consent is in force for every member that would be released")
    assert page.locator("#consent-check tbody tr").count() == len(demo.copies)
    assert demo.size() == size  # the check appended nothing
    _shot(page, "release-check")
    page.click("#confirm-release")
    page.wait_for_url("**/ui/releases/*?created=1")
    assert page.inner_text("#report-summary").startswith("VERIFIED: 40 of 40 images")
    assert page.locator("#report li.fail").count() == 0
    _shot(page, "release")
    with page.expect_download() as waiting:
        page.click("#download-bundle")
    bundle = tmp_path / waiting.value.suggested_filename
    waiting.value.save_as(bundle)
    assert bundle.name == "browser-release-1.rlbundle"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / bundle.name).write_bytes(bundle.read_bytes())

    reviewer = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        review = reviewer.new_page()
        _login(review, server, demo.tokens["reviewer"])
        assert review.url == f"{server}/ui/reviewer"
        # drop the file on the drop zone, as a reviewer would from their file manager
        review.evaluate("""([name, text]) => {
            const data = new DataTransfer();
            data.items.add(new File([text], name, {type: "application/json"}));
            document.getElementById("dropzone").dispatchEvent(
                new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }""", [bundle.name, bundle.read_text()])
        assert review.inner_text("#drop-help") == f"Chosen: {bundle.name}"
        review.click("button:has-text('Verify the bundle')")
        review.wait_for_selector("#report-summary")
        assert review.inner_text("#report-summary").startswith(
            "VERIFIED: 40 of 40 images verified back to acquisition")
        assert review.locator("#report li.fail").count() == 0
        assert review.locator("#report li.pass").count() >= 5
        colour = review.eval_on_selector("#report li.pass",
                                         "el => getComputedStyle(el).backgroundColor")
        assert colour == "rgb(218, 251, 225)"  # green
        _shot(review, "reviewer")
    finally:
        reviewer.close()


def test_verify_in_this_browser_passes_and_a_tampered_proof_fails(
        page: Page, server: str, demo: Demo) -> None:
    _login(page, server, demo.tokens["reader"])
    page.goto(f"{server}/ui/entries/{demo.copies[0]}")
    page.click("#verify-button")
    page.wait_for_selector("#verify-summary")
    assert page.inner_text("#verify-summary") == ("Verified in this browser: leaf hash, "
                                                  "inclusion proof and checkpoint signature."
                                                  ), page.inner_text("#verify-result")
    assert page.locator("#verify-result li.pass").count() == 4
    _shot(page, "entry-verify")

    data = json.loads(page.inner_text("#proof-data"))
    first = data["proof"][0]
    data["proof"][0] = ("0" if first[0] != "0" else "1") + first[1:]
    page.eval_on_selector("#proof-data", "(el, text) => { el.textContent = text; }",
                          json.dumps(data))
    page.click("#verify-button")
    page.wait_for_selector("#verify-summary.error")
    assert page.inner_text("#verify-summary").startswith("FAILED in this browser")
    assert "does NOT lead to the checkpoint's root" in page.inner_text("#verify-result")
    _shot(page, "entry-verify-tampered-proof")

    page.reload()
    page.fill("#vkey", "radledger.local/demo+00000000+" + "A" * 44)
    page.click("#verify-button")
    page.wait_for_selector("#verify-summary.error")
    assert "FAIL" in page.inner_text("#verify-summary")


def test_pages_fit_a_375_pixel_wide_screen(browser: Browser, server: str, demo: Demo) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        narrow = context.new_page()
        _login(narrow, server, demo.tokens["admin"])
        for name, path in (("dashboard", "/ui/"), ("study", f"/ui/studies/{demo.study_key}"),
                           ("entry", f"/ui/entries/{demo.release}"),
                           ("releases", "/ui/releases"),
                           ("release", f"/ui/releases/{demo.release}"),
                           ("reviewer", "/ui/reviewer"), ("consent", "/ui/consent"),
                           ("tokens", "/ui/tokens")):
            narrow.goto(f"{server}{path}")
            width = narrow.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{path} is {width} px wide"
            _shot(narrow, f"narrow-{name}")
        narrow.goto(f"{server}/ui/studies/{demo.study_key}")
        assert narrow.eval_on_selector(".lineage .scroll",
                                       "el => el.scrollWidth > el.clientWidth")  # scrolls
    finally:
        context.close()
