"""Real HTTP against `reviewsense serve` subprocesses: load, overload, crash, two replicas.

Every review that got a 2xx must be in the database exactly once, retries with the same
Idempotency-Key must not store twice, and no request may get a 500. All traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import time
import uuid

import httpx
import pytest
from helpers import make_key
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.slow


class Load:
    """Client threads posting single reviews with unique texts; records what was acknowledged.

    Every third request carries an Idempotency-Key and is sent twice (the second time to the
    next server, when there are several) — a client retrying after a lost response.
    """

    def __init__(self, urls: list[str], key: str, clients: int) -> None:
        self.urls, self.key, self.clients = urls, key, clients
        self.acked: dict[str, int] = {}  # text -> review id from the 2xx response
        self.statuses: collections.Counter = collections.Counter()
        self.retry_after_missing = 0
        self.errors = 0  # connection errors (expected only when a server is killed)
        # Failures seen in client threads: an assert there cannot fail the test, so they are
        # collected here and asserted in the main thread (assert_acked_stored_once).
        self.failures: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        # Daemon threads: a failing assertion must not leave clients running forever.
        self.threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)
        ]

    def _client(self, n: int) -> None:
        with httpx.Client(timeout=10) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                body = {"title_id": f"title-{i % 7}", "text": f"review {n}-{i} {uuid.uuid4()}"}
                headers = {"X-API-Key": self.key}
                tries = 1
                if i % 3 == 0:
                    headers["Idempotency-Key"] = str(uuid.uuid4())
                    tries = 2
                for t in range(tries):
                    url = self.urls[(n + i + t) % len(self.urls)]
                    try:
                        r = http.post(url + "/v1/reviews", json=body, headers=headers)
                    except httpx.HTTPError:
                        with self._lock:
                            self.errors += 1
                        time.sleep(0.05)
                        continue
                    with self._lock:
                        self.statuses[r.status_code] += 1
                        if r.status_code in (429, 503) and "retry-after" not in r.headers:
                            self.retry_after_missing += 1
                        if 200 <= r.status_code < 300:
                            rid = r.json()["reviews"][0]["id"]
                            first = self.acked.setdefault(body["text"], rid)
                            if first != rid:
                                self.failures.append(f"{body['text']}: ids {first} and {rid}")
                    if r.status_code in (429, 503):
                        time.sleep(0.01)

    def run(self, seconds: float) -> Load:
        for t in self.threads:
            t.start()
        time.sleep(seconds)
        return self.finish()

    def finish(self) -> Load:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        return self


def stored_counts(db_url: str) -> collections.Counter:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT text, count(*) FROM reviews GROUP BY text")).all()
    engine.dispose()
    return collections.Counter({t: n for t, n in rows})


def assert_acked_stored_once(load: Load, db_url: str) -> None:
    # Snapshot the acknowledgements *before* reading the database: while clients still run,
    # reviews acknowledged after the query would otherwise look lost.
    with load._lock:
        acked = dict(load.acked)
        failures = list(load.failures)
    assert failures == [], f"a retry got a different review id: {failures[:3]}"
    counts = stored_counts(db_url)
    assert acked, "no request succeeded"
    missing = [t for t in acked if counts[t] == 0]
    assert missing == [], f"{len(missing)} acknowledged reviews lost"
    dupes = {t: n for t, n in counts.items() if n > 1}
    assert dupes == {}, f"stored twice: {list(dupes)[:3]}"


def test_overload_is_refused_with_retry_after_never_500(tiny_model_dir, sqlite_url, start_server):
    key = make_key(sqlite_url, "ingest")
    srv = start_server(
        tiny_model_dir, sqlite_url, "--queue-size", "1", "--batch-max", "1", "--batch-wait-ms", "0"
    )
    load = Load([srv.url], key, clients=24).run(3.0)
    assert load.statuses[500] == 0, load.statuses
    assert load.statuses[503] + load.statuses[429] > 0, load.statuses
    assert set(load.statuses) <= {201, 429, 503}, load.statuses
    assert load.retry_after_missing == 0
    assert load.errors == 0  # refused quickly with a status, never a dropped connection
    assert_acked_stored_once(load, sqlite_url)


def test_load_with_retries_then_sigkill_loses_nothing(tiny_model_dir, sqlite_url, start_server):
    """Concurrent clients (some retrying) for a few seconds, then SIGKILL and restart."""
    key = make_key(sqlite_url, "ingest")
    srv = start_server(tiny_model_dir, sqlite_url)
    load = Load([srv.url], key, clients=6)
    for t in load.threads:
        t.start()
    time.sleep(3.0)
    # Before the kill: only 201s, every acknowledged review stored exactly once.
    try:
        with load._lock:
            assert set(load.statuses) == {201} and load.errors == 0, load.statuses
        assert_acked_stored_once(load, sqlite_url)
    except AssertionError:
        load.finish()
        raise
    srv.kill()  # SIGKILL mid-load: no shutdown hooks, requests in flight
    acked_before_restart = len(load.acked)
    srv2 = start_server(tiny_model_dir, sqlite_url)
    load.urls[0] = srv2.url
    time.sleep(1.0)
    load.finish()
    assert load.statuses[500] == 0, load.statuses
    assert len(load.acked) > acked_before_restart  # the restarted server took traffic
    assert_acked_stored_once(load, sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_replicas_on_one_postgresql(tiny_model_dir, pg_url, start_server):
    key = make_key(pg_url, "ingest")
    a = start_server(tiny_model_dir, pg_url, wait=False)
    b = start_server(tiny_model_dir, pg_url, wait=False)
    a.wait_ready(), b.wait_ready()
    load = Load([a.url, b.url], key, clients=8).run(3.0)
    assert load.statuses[500] == 0 and set(load.statuses) <= {201}, load.statuses
    assert load.errors == 0
    assert_acked_stored_once(load, pg_url)


def test_inference_process_serves_load_and_stops_with_the_server(
    tiny_model_dir, sqlite_url, start_server
):
    """`serve --inference-process`: the model runs in a child process; under concurrent load
    every review is answered 201 and stored once; stopping the server stops the child."""
    import os
    import re

    key = make_key(sqlite_url, "ingest")
    srv = start_server(tiny_model_dir, sqlite_url, "--inference-process")
    load = Load([srv.url], key, clients=8).run(2.0)
    assert set(load.statuses) == {201}, load.statuses
    assert load.errors == 0
    assert_acked_stored_once(load, sqlite_url)
    found = re.search(r"runs in process (\d+)", srv.log_path.read_text())
    assert found, srv.log_path.read_text()[-2000:]
    child = int(found.group(1))
    assert child != srv.proc.pid
    os.kill(child, 0)  # alive while the server runs
    srv.stop()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the inference process {child} outlived the server")
