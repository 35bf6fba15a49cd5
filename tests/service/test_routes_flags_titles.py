"""GET /v1/flags, POST /v1/flags/{id}/resolve, GET /v1/titles, GET /v1/titles/{id}/sentiment."""

from __future__ import annotations

import datetime as dt
import time

import pytest


@pytest.fixture()
def ck(make_client, db_url):
    return make_client(db_url)


def _post(client, key, reviews):
    r = client.post("/v1/reviews", json={"reviews": reviews}, headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    return r.json()["reviews"]


def test_flag_queue_pagination_and_resolve(ck):
    client, keys = ck
    _post(client, keys["ingest"], [{"title_id": "t", "text": f"bad {i}"} for i in range(5)])
    h = {"X-API-Key": keys["support"]}
    page = client.get("/v1/flags?status=open&limit=2", headers=h).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    page2 = client.get(f"/v1/flags?status=open&limit=2&cursor={page['next_cursor']}", headers=h)
    ids = [f["id"] for f in page["items"] + page2.json()["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    assert page["items"][0]["text"] == "bad 4"
    r = client.post(f"/v1/flags/{ids[0]}/resolve", json={"note": "refund sent"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert r.json()["note"] == "refund sent"
    assert r.json()["resolved_by"] == client.get("/v1/me", headers=h).json()["key_id"]
    open_ids = [f["id"] for f in client.get("/v1/flags?limit=50", headers=h).json()["items"]]
    assert ids[0] not in open_ids and len(open_ids) == 4
    resolved = client.get("/v1/flags?status=resolved", headers=h).json()["items"]
    assert [f["id"] for f in resolved] == [ids[0]]
    assert len(client.get("/v1/flags?status=all", headers=h).json()["items"]) == 5
    # read keys see the queue but cannot resolve
    assert client.get("/v1/flags", headers={"X-API-Key": keys["read"]}).status_code == 200
    r = client.post(f"/v1/flags/{ids[1]}/resolve", headers={"X-API-Key": keys["read"]})
    assert r.status_code == 403


def test_resolve_errors(client_keys):
    client, keys = client_keys
    h = {"X-API-Key": keys["support"]}
    assert client.post("/v1/flags/12345/resolve", headers=h).status_code == 404
    assert client.post("/v1/flags/abc/resolve", headers=h).status_code == 422
    _post(client, keys["ingest"], [{"title_id": "t", "text": "bad"}])
    r = client.post("/v1/flags/1/resolve", json={"note": 5}, headers=h)
    assert r.status_code == 422 and "note" in r.json()["detail"]
    r = client.post("/v1/flags/1/resolve", content=b"{", headers=h)
    assert r.status_code == 400


def test_titles_sorting_and_sentiment(ck):
    client, keys = ck
    today = dt.datetime.now(dt.UTC)
    old = (today - dt.timedelta(days=10)).isoformat()
    _post(
        client,
        keys["ingest"],
        [{"title_id": "hit", "title_name": "Hit Show", "text": "great", "rating": 9}] * 3
        + [{"title_id": "flop", "text": "bad"}] * 2
        + [{"title_id": "flop", "text": "fine", "created_at": old}],
    )
    time.sleep(0.01)
    _post(client, keys["ingest"], [{"title_id": "new", "text": "lovely"}])
    h = {"X-API-Key": keys["read"]}
    top = client.get("/v1/titles?sort=positive_share", headers=h).json()
    assert [t["title_id"] for t in top["items"]][-1] == "flop"
    hit = next(t for t in top["items"] if t["title_id"] == "hit")
    assert hit["name"] == "Hit Show" and hit["positive_share"] == 1.0 and hit["reviews"] == 3
    assert hit["daily"][-1]["reviews"] == 3
    by_count = client.get("/v1/titles?sort=reviews&limit=1", headers=h).json()["items"]
    assert by_count[0]["title_id"] in ("hit", "flop") and by_count[0]["reviews"] == 3
    trend = client.get("/v1/titles?sort=trend", headers=h).json()["items"]
    assert trend[0]["title_id"] == "flop" and trend[0]["trend_7d"] == pytest.approx(-1.0)
    newest = client.get("/v1/titles?sort=new&limit=1", headers=h).json()["items"]
    assert newest[0]["title_id"] == "new"
    assert (
        client.get("/v1/titles?min_reviews=3&days=0", headers=h).json()["items"][0]["daily"] == []
    )
    worst = client.get("/v1/titles?sort=positive_share&order=asc", headers=h).json()["items"]
    assert worst[0]["title_id"] == "flop"

    s = client.get("/v1/titles/flop/sentiment", headers=h).json()
    assert s["reviews"] == 3 and s["negative"] == 2 and s["open_flags"] == 2
    assert [d["reviews"] for d in s["daily"]] == [1, 2]
    s = client.get("/v1/titles/hit/sentiment?days=1", headers={"X-API-Key": keys["support"]})
    assert s.json()["mean_rating"] == 9
    assert client.get("/v1/titles/none/sentiment", headers=h).status_code == 404
    assert client.get("/v1/titles/hit/sentiment?days=0", headers=h).status_code == 422
