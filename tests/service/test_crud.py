"""Database operations on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from reviewsense.service import crud
from reviewsense.service.db import SQLITE_WRITE, make_engine, make_sessionmaker, run_migrations


@pytest.fixture()
def sm(db_url):
    engine = make_engine(db_url)
    run_migrations(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def review(title="t1", label="positive", p_neg=0.1, when=None, name=None, text="fine"):
    return crud.NewReview(
        title_id=title,
        title_name=name,
        user_id="u1",
        text=text,
        rating=None,
        created_at=when or crud.utcnow(),
        label=label,
        score=max(p_neg, 1 - p_neg),
        prob_negative=p_neg,
        truncated=False,
    )


def test_add_reviews_flags_at_or_above_threshold(sm):
    with sm() as s:
        out = crud.add_reviews(
            s,
            reviews=[review(p_neg=0.1), review(label="negative", p_neg=0.7), review(p_neg=0.6)],
            threshold=0.6,
            model_version="v1",
        )
        s.commit()
    assert [f is not None for _, f in out] == [False, True, True]
    assert all(r.id and r.model_version == "v1" for r, _ in out)
    with sm() as s:
        items, cursor = crud.list_flags(s, status="open", limit=10, cursor=None)
    assert [i["review_id"] for i in items] == [out[2][0].id, out[1][0].id]  # newest first
    assert cursor is None


def test_titles_created_once_and_named_later(sm):
    with sm() as s:
        crud.add_reviews(s, reviews=[review(), review()], threshold=0.5, model_version="v")
        crud.add_reviews(s, reviews=[review(name="Show")], threshold=0.5, model_version="v")
        s.commit()
        assert crud.get_title(s, title_id="t1").name == "Show"


def test_concurrent_first_reviews_of_a_new_title_do_not_conflict(sm):
    errors = []

    def _post(i):
        try:
            with sm() as s:
                s.connection(execution_options={SQLITE_WRITE: True})
                crud.add_reviews(s, reviews=[review(title="new")], threshold=0.5, model_version="v")
                s.commit()
        except Exception as e:  # asserted below
            errors.append(e)

    threads = [threading.Thread(target=_post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sm() as s:
        assert crud.count_reviews(s) == 8


def test_flag_pagination_and_resolve(sm):
    with sm() as s:
        crud.add_reviews(
            s,
            reviews=[review(label="negative", p_neg=0.9) for _ in range(5)],
            threshold=0.5,
            model_version="v",
        )
        s.commit()
        page1, cur = crud.list_flags(s, status="open", limit=2, cursor=None)
        page2, cur2 = crud.list_flags(s, status="open", limit=2, cursor=cur)
        page3, cur3 = crud.list_flags(s, status="open", limit=2, cursor=cur2)
        ids = [f["id"] for f in page1 + page2 + page3]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5 and cur3 is None
        done = crud.resolve_flag(s, flag_id=ids[0], resolved_by="k1", note="called them")
        s.commit()
        assert done["status"] == "resolved" and done["resolved_by"] == "k1"
        again = crud.resolve_flag(s, flag_id=ids[0], resolved_by="k2", note=None)
        assert again["resolved_by"] == "k1"  # the first resolution stands
        assert crud.resolve_flag(s, flag_id=999_999, resolved_by="k", note=None) is None
        open_now, _ = crud.list_flags(s, status="open", limit=10, cursor=None)
        assert len(open_now) == 4
        assert crud.flag_ids_after(s, after_id=ids[1]) == [ids[0]]
        assert crud.flag_ids_after(s, after_id=ids[0], holes=[ids[2]]) == [ids[2]]
        assert [f["id"] for f in crud.flags_by_ids(s, ids=[ids[0]])] == [ids[0]]
        assert crud.max_flag_id(s) == ids[0]


def test_title_stats_sorting_trend_and_daily_series(sm):
    now = crud.utcnow()
    old = now - dt.timedelta(days=10)
    rows = (
        # "rising": 0/2 positive 10 days ago, 2/2 now
        [review("rising", "negative", 0.9, old) for _ in range(2)]
        + [review("rising", "positive", 0.1, now) for _ in range(2)]
        # "steady": 3/3 positive now
        + [review("steady", "positive", 0.1, now) for _ in range(3)]
        # "falling": 1/1 positive 10 days ago, 0/1 now
        + [review("falling", "positive", 0.1, old), review("falling", "negative", 0.9, now)]
    )
    with sm() as s:
        crud.add_reviews(s, reviews=rows, threshold=0.99, model_version="v")
        s.commit()

        def order(sort, **kw):
            args = dict(descending=True, limit=10, offset=0, min_reviews=1, now=now) | kw
            return [t["title_id"] for t in crud.title_stats(s, sort=sort, **args)]

        assert order("positive_share")[0] == "steady"
        by_share = crud.title_stats(
            s, sort="positive_share", descending=True, limit=10, offset=0, min_reviews=1, now=now
        )
        assert by_share[0]["title_id"] == "steady" and by_share[0]["positive_share"] == 1.0
        assert order("reviews")[:2] == ["rising", "steady"]
        trend = order("trend")
        assert (
            trend[0] == "rising" and trend[-1] == "steady"
        )  # steady has no previous week: NULL last
        assert order("reviews", min_reviews=4) == ["rising"]
        assert order("positive_share", descending=False)[0] in ("rising", "falling")
        rising = crud.title_stats(
            s,
            sort="reviews",
            descending=True,
            limit=1,
            offset=0,
            min_reviews=1,
            now=now,
            title_id="rising",
        )[0]
        assert rising["trend_7d"] == pytest.approx(1.0)
        assert rising["reviews_7d"] == 2 and rising["negative"] == 2
        series = crud.daily_series(s, title_ids=["rising"], since=old - dt.timedelta(days=1))
        assert [d["reviews"] for d in series["rising"]] == [2, 2]
        assert series["rising"][0]["date"] == old.date()
        assert crud.title_extra(s, title_id="falling")["open_flags"] == 0


def test_idempotency_records_round_trip(sm):
    with sm() as s:
        crud.add_idempotency(
            s, api_key_id="k", key="abc", request_hash="h", status_code=201, response_json="{}"
        )
        s.commit()
        rec = crud.get_idempotency(s, api_key_id="k", key="abc")
        assert rec.status_code == 201 and rec.request_hash == "h"
        assert crud.get_idempotency(s, api_key_id="other", key="abc") is None
