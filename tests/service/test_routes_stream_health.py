"""GET /v1/stream (SSE over real HTTP, across replicas), /healthz, /readyz and /metrics."""

from __future__ import annotations

import json
import queue
import threading
import time

import httpx
import pytest


def _listen(url: str, key: str, out: queue.Queue, stop: threading.Event, headers=None):
    """Read SSE events into ``out`` until ``stop``."""
    h = {"X-API-Key": key, **(headers or {})}
    try:
        with httpx.stream("GET", url + "/v1/stream", headers=h, timeout=30) as r:
            out.put(("status", r.status_code))
            buf = ""
            for chunk in r.iter_text():
                buf += chunk
                while "\n\n" in buf:
                    block, buf = buf.split("\n\n", 1)
                    data = [ln[6:] for ln in block.split("\n") if ln.startswith("data: ")]
                    if data:
                        out.put(("flag", json.loads(data[0])))
                if stop.is_set():
                    return
    except httpx.HTTPError:
        return  # the test's server stopped


def _start_listener(url, key, headers=None):
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    t = threading.Thread(target=_listen, args=(url, key, out, stop, headers), daemon=True)
    t.start()
    assert out.get(timeout=10) == ("status", 200)
    time.sleep(0.4)  # the poller's first tick fixes its starting point
    return out, stop


def _post(url, key, text, title="t"):
    r = httpx.post(
        url + "/v1/reviews",
        json={"title_id": title, "text": text},
        headers={"X-API-Key": key},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return r.json()["reviews"][0]


def test_new_flags_are_streamed_and_unflagged_reviews_are_not(thread_server, sqlite_url):
    srv, keys = thread_server(sqlite_url)
    out, stop = _start_listener(srv.url, keys["support"])
    _post(srv.url, keys["ingest"], "great show")  # not flagged: no event
    review = _post(srv.url, keys["ingest"], "bad show")
    kind, flag = out.get(timeout=5)
    stop.set()
    assert kind == "flag" and flag["review_id"] == review["id"] and flag["text"] == "bad show"
    assert out.empty()


def test_last_event_id_replays_missed_flags(thread_server, sqlite_url):
    srv, keys = thread_server(sqlite_url)
    out, stop = _start_listener(srv.url, keys["read"])
    _post(srv.url, keys["ingest"], "bad 1")
    _, flag = out.get(timeout=5)
    stop.set()
    _post(srv.url, keys["ingest"], "bad 2")
    time.sleep(0.5)
    out2, stop2 = _start_listener(srv.url, keys["read"], {"Last-Event-ID": str(flag["id"])})
    _, missed = out2.get(timeout=5)
    stop2.set()
    assert missed["text"] == "bad 2"


def test_replicas_see_each_others_flags(thread_server, pg_url):
    a, keys = thread_server(pg_url, flag_poll_s=0.2)
    b, _ = thread_server(pg_url, flag_poll_s=0.2)
    out, stop = _start_listener(a.url, keys["support"])
    review = _post(b.url, keys["ingest"], "bad on replica b")
    kind, flag = out.get(timeout=5)
    stop.set()
    assert kind == "flag" and flag["review_id"] == review["id"]
    assert flag["text"] == "bad on replica b"


def test_readyz_reports_model_and_database(make_client, sqlite_url, tmp_path, tiny_model_dir):
    from fastapi.testclient import TestClient

    from reviewsense.service.app import create_app
    from reviewsense.settings import ServiceSettings

    client, _ = make_client(sqlite_url)
    body = client.get("/readyz").json()
    assert body["status"] == "ready" and body["model_loaded"] and body["database"] == "ok"
    # Database gone (dispose + point at a folder that is not a database file).
    state = client.app.state.svc
    from reviewsense.service.db import make_engine

    state.engine = make_engine(f"sqlite:///{tmp_path}")  # a directory: cannot be opened
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["database"] != "ok"
    assert r.json()["failed"] == ["database"]
    assert "Error" not in r.text and str(tmp_path) not in r.text  # raw text goes to the log
    # Model still loading or failed: 503, and requests needing the model get 503 + Retry-After.
    app = create_app(
        ServiceSettings(db_url=f"sqlite:///{tmp_path / 'x.db'}"), model_dir=tiny_model_dir
    )
    app.state.svc.model_dir = tmp_path / "missing-model"
    with TestClient(app) as c:
        deadline = time.monotonic() + 10
        while app.state.svc.load_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        r = c.get("/readyz")
        assert r.status_code == 503 and not r.json()["model_loaded"] and r.json()["model_error"]
        assert r.json()["failed"] == ["model"] and "missing-model" not in r.text
        r = c.post("/v1/classify", json={"texts": ["x"]})  # no key needed to see the 401 first
        assert r.status_code == 401


def test_model_loads_in_the_background(tmp_path, tiny_model_dir):
    from fastapi.testclient import TestClient

    from reviewsense.service.app import create_app
    from reviewsense.settings import ServiceSettings

    app = create_app(
        ServiceSettings(db_url=f"sqlite:///{tmp_path / 'x.db'}", num_threads=1),
        model_dir=tiny_model_dir,
    )
    with TestClient(app) as c:
        deadline = time.monotonic() + 60
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert c.get("/readyz").json()["threshold_source"] == "default"


def test_metrics_cover_requests_batches_flags_and_drift(client_keys):
    client, keys = client_keys
    h = {"X-API-Key": keys["ingest"]}
    client.post(
        "/v1/reviews",
        json={"reviews": [{"title_id": "a", "text": "bad"}, {"title_id": "a", "text": "good"}]},
        headers=h,
    )
    client.get("/v1/flags/999")  # unmatched route
    text = client.get("/metrics").text
    for needle in [
        'reviewsense_http_requests_total{method="POST",route="/v1/reviews",status="201"} 1.0',
        'route="unmatched"',
        "reviewsense_http_request_duration_seconds_bucket",
        "reviewsense_inference_batch_size_count",
        "reviewsense_inference_queue_depth",
        "reviewsense_flags_raised_total 1.0",
        'reviewsense_predictions_total{label="negative",source="ingest"} 1.0',
        "reviewsense_negative_rate_recent 0.5",
        "reviewsense_truncated_share_recent 0.0",
    ]:
        assert needle in text, needle
    model_s = [
        ln for ln in text.splitlines() if ln.startswith("reviewsense_inference_seconds_total")
    ]
    assert len(model_s) == 1 and float(model_s[0].split()[1]) > 0, model_s  # the model ran


def test_metric_labels_come_from_fixed_sets_never_from_the_request(client_keys):
    client, _ = client_keys
    client.request("BREW", "/v1/coffee/" + "x" * 50)  # unknown method and path
    client.get("/v1/titles/some-title-id/sentiment")  # a template with a parameter
    text = client.get("/metrics").text
    assert "BREW" not in text and "coffee" not in text and "some-title-id" not in text
    assert 'method="OTHER",route="unmatched"' in text
    assert 'route="/v1/titles/{title_id}/sentiment"' in text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_health_routes_need_no_key(client_keys, path):
    client, _ = client_keys
    assert client.get(path).status_code == 200
