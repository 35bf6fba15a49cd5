"""The dashboard in headless Chromium (Playwright): live flag feed and resolving a flag."""

from __future__ import annotations

import os

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


@pytest.fixture()
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} missing (apt-get install -y chromium; see .ci/service-deps.sh)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_negative_review_appears_live_and_resolving_removes_it(browser, thread_server, sqlite_url):
    srv, keys = thread_server(sqlite_url)
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(srv.url + "/")
    page.fill("#key-input", keys["support"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#status:has-text('live')", timeout=10_000)
    page.wait_for_timeout(500)  # the stream's poller has started from the present

    r = httpx.post(
        srv.url + "/v1/reviews",
        json={"title_id": "show-1", "title_name": "Space Saga", "text": "Bad ending, <b>awful</b>"},
        headers={"X-API-Key": keys["ingest"]},
    )
    assert r.status_code == 201 and r.json()["reviews"][0]["flagged"]
    flag_id = r.json()["reviews"][0]["flag_id"]
    item = page.wait_for_selector(f"#feed li[data-flag-id='{flag_id}']", timeout=3_000)
    assert "Bad ending, <b>awful</b>" in item.inner_text()  # shown as text, not HTML
    assert "Space Saga" in item.inner_text()

    item.query_selector("button.resolve").click()
    page.wait_for_selector(f"#feed li[data-flag-id='{flag_id}']", state="detached", timeout=3_000)
    flags = httpx.get(srv.url + "/v1/flags?status=open", headers={"X-API-Key": keys["read"]})
    assert flags.json()["items"] == []
    # The key went in headers only, never in a URL; it is kept for the tab's session.
    assert not any(keys["support"] in u for u in requested)
    assert page.evaluate("sessionStorage.getItem('reviewsense.apiKey')") == keys["support"]
    # Title tables render (sparkline included) after the periodic refresh or a reload.
    page.reload()
    page.wait_for_selector("#titles tr[data-title-id='show-1'] svg.sparkline", timeout=10_000)


def test_ingest_key_is_refused_by_the_dashboard(browser, thread_server, sqlite_url):
    srv, keys = thread_server(sqlite_url)
    page = browser.new_page()
    page.goto(srv.url + "/")
    page.fill("#key-input", keys["ingest"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('read or support')", timeout=5_000)


def test_viewers_panel_lists_unhappy_viewers_under_the_csp(
    browser, thread_server, sqlite_url, tmp_path
):
    srv, keys = thread_server(sqlite_url)
    reviews = [
        {
            "title_id": "s1",
            "title_name": "Space Saga",
            "user_id": "viewer-ann",
            "text": "Bad, awful",
        },
        {"title_id": "s1", "user_id": "viewer-ann", "text": "bad sound again"},
        {"title_id": "s2", "user_id": "viewer-bob", "text": "Lovely show"},
        {"title_id": "s2", "user_id": "viewer-bob", "text": "bad <img src=x> ending"},
        {"title_id": "s2", "user_id": "viewer-cat", "text": "Great"},
    ]
    r = httpx.post(
        srv.url + "/v1/reviews", json={"reviews": reviews}, headers={"X-API-Key": keys["ingest"]}
    )
    assert r.status_code == 201
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []  # CSP violations are reported as console errors
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    failed: list[str] = []  # HTTP errors (the browser's own /favicon.ico probe aside)
    page.on(
        "response",
        lambda resp: (
            failed.append(f"{resp.status} {resp.url}")
            if resp.status >= 400 and not resp.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(srv.url + "/")
    page.fill("#key-input", keys["support"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#viewers tr[data-user-id='viewer-ann']", timeout=10_000)
    rows = page.query_selector_all("#viewers tr[data-user-id]")
    assert [row.get_attribute("data-user-id") for row in rows] == [
        "viewer-ann",
        "viewer-bob",
        "viewer-cat",
    ]
    assert "100%" in rows[0].inner_text() and "50%" in rows[1].inner_text()
    rows[1].click()
    item = page.wait_for_selector("#viewer-reviews li.negative", timeout=5_000)
    assert "bad <img src=x> ending" in item.inner_text()  # text, not HTML
    assert page.query_selector("#viewer-reviews img") is None
    # The page's styles came from app.css (CSP blocks inline styles): the panel is laid out.
    assert page.eval_on_selector("#viewers-panel", "e => getComputedStyle(e).borderRadius") == "6px"
    page.screenshot(path=str(tmp_path / "viewers.png"), full_page=True)
    shot = os.environ.get("REVIEWSENSE_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=True)
    assert failed == []
    # A 404 probe for /favicon.ico is logged as "Failed to load resource"; anything else is not.
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []
    assert len(problems) <= 1


def test_viewers_panel_is_hidden_for_read_keys(browser, thread_server, sqlite_url):
    srv, keys = thread_server(sqlite_url)
    page = browser.new_page()
    page.goto(srv.url + "/")
    page.fill("#key-input", keys["read"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#status:has-text('live')", timeout=10_000)
    assert not page.is_visible("#viewers-panel")
