"""The shared ingestion path: limits, time conversion, rows with event keys, one transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy.exc import IntegrityError

from reviewsense.service import crud, ingest
from reviewsense.service.db import Review, make_engine, make_sessionmaker, run_migrations
from reviewsense.service.schemas import ReviewIn


@dataclass
class Pred:
    label: str
    score: float
    prob_negative: float
    truncated: bool


@dataclass
class Target:
    sessionmaker: object
    write_lock: object = None
    threshold: float = 0.5
    model_version: str = "m1"


def test_text_over_limit_and_utc_conversion():
    assert ingest.text_over_limit("abc", 3) is None
    assert ingest.text_over_limit("abcd", 3) == "4 characters, over the limit of 3"
    now = dt.datetime(2026, 1, 1, 12)
    aware = dt.datetime(2026, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert ingest.to_utc_naive(aware, now) == dt.datetime(2026, 1, 1, 12)
    assert ingest.to_utc_naive(None, now) is now


def test_reviews_and_flags_stored_once_per_event_key(db_url):
    engine = make_engine(db_url)
    run_migrations(engine)
    target = Target(make_sessionmaker(engine))
    reviews = [ReviewIn(title_id="t", text="awful"), ReviewIn(title_id="t", text="great")]
    preds = [Pred("negative", 0.9, 0.9, False), Pred("positive", 0.8, 0.2, True)]
    new = ingest.to_new_reviews(reviews, preds, event_keys=["stream:s:1-0", "stream:s:2-0"])
    try:
        with ingest.write_session(target) as s:
            stored = ingest.add_reviews(s, target, new)
            s.commit()
        assert [f is not None for _, f in stored] == [True, False]  # the flag rule
        with ingest.write_session(target) as s:
            assert crud.existing_event_keys(s, keys=["stream:s:1-0", "x"]) == {"stream:s:1-0"}
            flags = crud.flags_by_event_keys(s, keys=["stream:s:1-0", "stream:s:2-0"])
            assert [f["event_key"] for f in flags] == ["stream:s:1-0"]
            with pytest.raises(IntegrityError):  # the unique column is the last line of defence
                ingest.add_reviews(s, target, new[:1])
                s.commit()
    finally:
        engine.dispose()


def _job(key_id, idem, body_hash, text):
    new = ingest.to_new_reviews(
        [ReviewIn(title_id="t", text=text)], [Pred("negative", 0.9, 0.9, False)]
    )
    return ingest.StoreJob(key_id=key_id, idempotency_key=idem, request_hash=body_hash, new=new)


def test_a_group_commits_once_and_answers_each_job_on_its_own(db_url):
    """Group commit: one transaction; a retry in the same group replays, a reused key with a
    different body fails alone, and every other job is stored."""
    engine = make_engine(db_url)
    run_migrations(engine)
    target = Target(make_sessionmaker(engine))
    jobs = [
        _job("k1", "a", "h1", "awful one"),
        _job("k1", "a", "h1", "awful one"),  # the client's retry, in the same group
        _job("k1", "a", "h2", "something else"),  # same key, different body
        _job("k1", None, "h3", "awful three"),
        _job("k2", "a", "h4", "awful four"),  # another key's "a" is its own
    ]
    try:
        first, retry, reused, plain, other = ingest.store_group(target, jobs)
        assert (first.status, first.replayed, first.n_flags) == (201, False, 1)
        assert (retry.status, retry.body, retry.replayed) == (201, first.body, True)
        assert isinstance(reused, ingest.IdempotencyConflict)
        assert not plain.replayed and not other.replayed
        with target.sessionmaker() as s:
            texts = sorted(r.text for r in s.query(Review))
        assert texts == ["awful four", "awful one", "awful three"]  # nothing twice
    finally:
        engine.dispose()


def test_a_job_that_fails_in_the_database_is_undone_alone(db_url):
    """A job's IntegrityError rolls back its savepoint only; the group still commits."""
    engine = make_engine(db_url)
    run_migrations(engine)
    target = Target(make_sessionmaker(engine))
    good = _job("k1", None, "h1", "kept")
    dup_event = ingest.to_new_reviews(
        [ReviewIn(title_id="t", text="dup")] * 2,
        [Pred("negative", 0.9, 0.9, False)] * 2,
        event_keys=["e1", "e1"],  # the unique event key, twice in one job
    )
    bad = ingest.StoreJob(key_id="k1", idempotency_key=None, request_hash="h2", new=dup_event)
    try:
        res_good, res_bad, res_after = ingest.store_group(target, [good, bad, good])
        assert isinstance(res_bad, IntegrityError)
        assert res_good.status == res_after.status == 201
        with target.sessionmaker() as s:
            assert sorted(r.text for r in s.query(Review)) == ["kept", "kept"]
    finally:
        engine.dispose()
