"""GET /v1/users (support view by viewer) and GET /v1/users/{user_id}/reviews."""

from __future__ import annotations

import datetime as dt

import pytest


@pytest.fixture()
def ck(make_client, db_url):
    """SQLite and PostgreSQL, with reviews from three viewers (FixedPredictor: "bad" = neg)."""
    client, keys = make_client(db_url)
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=60)).isoformat()
    reviews = [
        {"title_id": "a", "user_id": "ann", "text": "bad"},
        {"title_id": "a", "user_id": "ann", "text": "bad again"},
        {"title_id": "b", "user_id": "ann", "text": "fine"},
        {"title_id": "a", "user_id": "bob", "text": "bad"},
        {"title_id": "b", "user_id": "cat", "text": "lovely"},
        {"title_id": "b", "user_id": "cat", "text": "bad, long ago", "created_at": old},
        {"title_id": "b", "text": "bad but anonymous"},
    ]
    r = client.post("/v1/reviews", json={"reviews": reviews}, headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 201, r.text
    return client, keys


def test_viewers_sorted_by_negative_share_count_and_recency(ck):
    client, keys = ck
    h = {"X-API-Key": keys["support"]}
    by_share = client.get("/v1/users", headers=h).json()["items"]
    assert [u["user_id"] for u in by_share] == ["bob", "ann", "cat"]
    ann = by_share[1]
    assert (ann["reviews"], ann["negative"], ann["open_flags"]) == (3, 2, 2)
    assert ann["negative_share"] == pytest.approx(2 / 3)
    assert ann["last_review_at"].endswith(("Z", "+00:00"))  # UTC, explicitly
    by_count = client.get("/v1/users?sort=negative_count", headers=h).json()["items"]
    assert [u["user_id"] for u in by_count][:2] == ["ann", "bob"]
    by_recent = client.get("/v1/users?sort=recent&limit=1", headers=h).json()["items"]
    assert len(by_recent) == 1
    # since= drops cat's old negative review: cat is then all positive, last.
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).isoformat()
    recent = client.get("/v1/users", params={"since": since}, headers=h).json()
    cat = [u for u in recent["items"] if u["user_id"] == "cat"][0]
    assert (cat["reviews"], cat["negative"]) == (1, 0)


def test_resolving_a_flag_lowers_open_flags(ck):
    client, keys = ck
    h = {"X-API-Key": keys["support"]}
    flag = client.get("/v1/users/bob/reviews", headers=h).json()["items"][0]["flag_id"]
    assert client.post(f"/v1/flags/{flag}/resolve", headers=h).status_code == 200
    bob = [u for u in client.get("/v1/users", headers=h).json()["items"] if u["user_id"] == "bob"]
    assert bob[0]["open_flags"] == 0


def test_one_viewers_reviews_newest_first_with_pagination(ck):
    client, keys = ck
    h = {"X-API-Key": keys["support"]}
    page = client.get("/v1/users/ann/reviews?limit=2", headers=h).json()
    assert page["user_id"] == "ann" and [r["text"] for r in page["items"]] == ["fine", "bad again"]
    assert page["items"][1]["flag_status"] == "open" and page["items"][0]["flag_id"] is None
    rest = client.get(f"/v1/users/ann/reviews?cursor={page['next_cursor']}", headers=h).json()
    assert [r["text"] for r in rest["items"]] == ["bad"] and rest["next_cursor"] is None
    assert client.get("/v1/users/nobody/reviews", headers=h).json()["items"] == []


def test_viewer_data_is_for_support_keys_only_and_params_are_checked(ck):
    client, keys = ck
    assert client.get("/v1/users", headers={"X-API-Key": keys["read"]}).status_code == 403
    h = {"X-API-Key": keys["support"]}
    r = client.get("/v1/users?sort=bogus", headers=h)
    assert r.status_code == 422 and "sort" in r.json()["detail"]
    r = client.get("/v1/users?since=yesterday", headers=h)
    assert r.status_code == 422 and "since" in r.json()["detail"]
