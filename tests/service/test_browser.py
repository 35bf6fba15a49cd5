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
