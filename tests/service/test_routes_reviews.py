"""POST /v1/reviews and POST /v1/classify: storage, flags, idempotency and every input error."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from reviewsense.service.db import Flag, Review


def _count(client, model):
    with client.app.state.svc.sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.fixture()
def ck(make_client, db_url):
    return make_client(db_url)


def test_single_review_is_stored_with_prediction_and_flag(ck):
    client, keys = ck
    h = {"X-API-Key": keys["ingest"]}
    r = client.post(
        "/v1/reviews",
        json={
            "title_id": "s1",
            "title_name": "Show",
            "user_id": "u",
            "text": "Bad pacing",
            "rating": 2,
            "created_at": "2024-05-01T12:00:00+02:00",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    (out,) = r.json()["reviews"]
    assert out["label"] == "negative" and out["flagged"] and out["flag_id"]
    assert out["prob_negative"] == pytest.approx(0.9) and out["model_version"]
    assert out["created_at"].startswith("2024-05-01T10:00:00")  # stored as UTC
    with client.app.state.svc.sessionmaker() as s:
        row = s.get(Review, out["id"])
        assert row.text == "Bad pacing" and row.label == "negative" and row.rating == 2
        assert s.scalars(select(Flag)).one().review_id == out["id"]


def test_batch_of_reviews(ck):
    client, keys = ck
    body = {"reviews": [{"title_id": "a", "text": "great"}, {"title_id": "b", "text": "bad"}]}
    r = client.post("/v1/reviews", json=body, headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 201
    assert [x["flagged"] for x in r.json()["reviews"]] == [False, True]
    assert _count(client, Review) == 2 and _count(client, Flag) == 1


def test_idempotency_key_replays_without_storing_twice(ck):
    client, keys = ck
    h = {"X-API-Key": keys["ingest"], "Idempotency-Key": "req-1"}
    body = {"title_id": "a", "text": "bad one"}
    first = client.post("/v1/reviews", json=body, headers=h)
    second = client.post("/v1/reviews", json=body, headers=h)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert _count(client, Review) == 1 and _count(client, Flag) == 1
    # Same key, different body: refused, nothing stored.
    other = client.post("/v1/reviews", json={"title_id": "a", "text": "other"}, headers=h)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert _count(client, Review) == 1
    # Keys are scoped per API key: another client may use the same string.
    from helpers import make_key

    h2 = {
        "X-API-Key": make_key(
            str(client.app.state.svc.engine.url.render_as_string(False)), "ingest"
        ),
        "Idempotency-Key": "req-1",
    }
    assert "idempotent-replayed" not in client.post("/v1/reviews", json=body, headers=h2).headers
    assert _count(client, Review) == 2


def test_bad_idempotency_key(client_keys):
    client, keys = client_keys
    h = {"X-API-Key": keys["ingest"], "Idempotency-Key": "x" * 201}
    r = client.post("/v1/reviews", json={"title_id": "a", "text": "t"}, headers=h)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"title_id": "a", "text": ', 400, "malformed JSON"),
        (b'{"title_id": "a", "text": "caf\xe9"}', 400, "UTF-8"),
        (b"", 400, "body"),
        (b"[1, 2]", 422, "body"),
        (b'{"title_id": "a", "text": ""}', 422, "text"),
        (b'{"title_id": "a", "text": "   "}', 422, "text"),
        (b'{"title_id": "a", "text": 5}', 422, "text"),
        (b'{"title_id": 5, "text": "x"}', 422, "title_id"),
        (b'{"text": "x"}', 422, "title_id"),
        (b'{"title_id": "a", "text": "x", "rating": "5"}', 422, "rating"),
        (b'{"title_id": "a", "text": "x", "rating": 11}', 422, "rating"),
        (b'{"title_id": "a", "text": "x", "created_at": "yesterday"}', 422, "created_at"),
        (b'{"title_id": "a", "text": "x", "colour": "red"}', 422, "colour"),
        (b'{"title_id": "a", "text": "\\ud800"}', 422, "text"),
        (b'{"title_id": "a", "text": "a\\u0000b"}', 422, "text"),
        (b'{"reviews": []}', 422, "reviews"),
        (
            b'{"reviews": [{"title_id": "a", "text": "ok"}, {"title_id": "a", "text": ""}]}',
            422,
            "reviews[1].text",
        ),
    ],
)
def test_invalid_input_names_the_field(client_keys, body, status, field):
    client, keys = client_keys
    r = client.post(
        "/v1/reviews",
        content=body,
        headers={"X-API-Key": keys["ingest"], "Content-Type": "application/json"},
    )
    assert r.status_code == status, r.text
    assert field in r.json()["detail"]
    assert _count(client, Review) == 0


def test_size_limits(make_client, sqlite_url):
    client, keys = make_client(
        sqlite_url, max_body_bytes=5000, max_text_chars=1000, max_batch_reviews=3
    )
    h = {"X-API-Key": keys["ingest"]}
    r = client.post("/v1/reviews", json={"title_id": "a", "text": "x" * 6000}, headers=h)
    assert r.status_code == 413 and "body" in r.json()["detail"]
    r = client.post("/v1/reviews", json={"title_id": "a", "text": "x" * 1001}, headers=h)
    assert r.status_code == 413 and "text" in r.json()["detail"]
    many = {"reviews": [{"title_id": "a", "text": "x"}] * 4}
    r = client.post("/v1/reviews", json=many, headers=h)
    assert r.status_code == 413 and "reviews" in r.json()["detail"]
    r = client.post("/v1/classify", json={"texts": ["x"] * 4}, headers=h)
    assert r.status_code == 413 and "texts" in r.json()["detail"]
    r = client.post("/v1/classify", json={"texts": ["x" * 1001]}, headers=h)
    assert r.status_code == 413 and "texts[0]" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/v1/reviews", content=chunks(), headers=h)
    assert r.status_code == 413
    assert _count(client, Review) == 0


def test_long_reviews_are_truncated_and_counted(client_keys):
    client, keys = client_keys
    long_text = "word " * 500  # the tiny model's max_length is 64 tokens
    r = client.post(
        "/v1/reviews",
        json={"title_id": "a", "text": long_text},
        headers={"X-API-Key": keys["ingest"]},
    )
    assert r.status_code == 201 and r.json()["reviews"][0]["truncated"] is True
    metrics = client.get("/metrics").text
    assert 'reviewsense_truncated_texts_total{source="ingest"} 1.0' in metrics


def test_classify_stores_nothing(client_keys):
    client, keys = client_keys
    r = client.post(
        "/v1/classify", json={"texts": ["bad", "good"]}, headers={"X-API-Key": keys["ingest"]}
    )
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert [p["label"] for p in preds] == ["negative", "positive"]
    assert preds[0]["flagged"] and not preds[1]["flagged"]
    assert _count(client, Review) == 0 and _count(client, Flag) == 0
    r = client.post(
        "/v1/classify", json={"texts": ["ok", ""]}, headers={"X-API-Key": keys["ingest"]}
    )
    assert r.status_code == 422 and "texts[1]" in r.json()["detail"]
    r = client.post("/v1/classify", content=b"{", headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 400


def test_threshold_override_changes_flagging(make_client, sqlite_url):
    client, keys = make_client(sqlite_url, threshold=0.95)
    r = client.post(
        "/v1/reviews", json={"title_id": "a", "text": "bad"}, headers={"X-API-Key": keys["ingest"]}
    )
    assert r.json()["threshold"] == 0.95 and not r.json()["reviews"][0]["flagged"]


def test_json_body_is_hashed_canonically_for_idempotency(client_keys):
    client, keys = client_keys
    h = {"X-API-Key": keys["ingest"], "Idempotency-Key": "k", "Content-Type": "application/json"}
    a = json.dumps({"title_id": "a", "text": "x"}).encode()
    b = json.dumps({"text": "x", "title_id": "a"}, indent=2).encode()
    assert client.post("/v1/reviews", content=a, headers=h).status_code == 201
    assert client.post("/v1/reviews", content=b, headers=h).headers["idempotent-replayed"] == "true"


def test_a_failed_or_stopped_write_is_a_503_and_stores_nothing(client_keys, tmp_path):
    """Writes go through the group writer: a database that fails the commit, or a writer
    that is shutting down, answers 503 + Retry-After (never 500) and the client may retry."""
    from reviewsense.service.db import make_engine, make_sessionmaker

    client, keys = client_keys
    h = {"X-API-Key": keys["ingest"]}
    r = client.post("/v1/reviews", json={"title_id": "t", "text": "ok"}, headers=h)
    assert r.status_code == 201
    state = client.app.state.svc
    working = state.sessionmaker
    state.sessionmaker = make_sessionmaker(make_engine(f"sqlite:///{tmp_path}"))  # a directory
    r = client.post("/v1/reviews", json={"title_id": "t", "text": "lost?"}, headers=h)
    assert r.status_code == 503 and r.headers["Retry-After"] == "2", r.text
    state.sessionmaker = working
    client.portal.call(state.writer.stop)  # what the lifespan does at shutdown
    r = client.post("/v1/reviews", json={"title_id": "t", "text": "late"}, headers=h)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
    client.portal.call(state.writer.start)
    assert _count(client, Review) == 1
