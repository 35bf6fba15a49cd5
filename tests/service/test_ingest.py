"""The shared ingestion path: limits, time conversion, rows with event keys, one transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy.exc import IntegrityError

from reviewsense.service import crud, ingest
from reviewsense.service.db import make_engine, make_sessionmaker, run_migrations
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
