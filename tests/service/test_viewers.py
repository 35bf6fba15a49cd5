"""Viewer queries on SQLite and PostgreSQL (the HTTP side is in routes/test_users.py)."""

from __future__ import annotations

import pytest

from reviewsense.service import crud, viewers
from reviewsense.service.db import make_engine, make_sessionmaker, run_migrations


def _new(user, label, text="x"):
    neg = 0.9 if label == "negative" else 0.1
    return crud.NewReview(
        title_id="t",
        title_name=None,
        user_id=user,
        text=text,
        rating=None,
        created_at=crud.utcnow(),
        label=label,
        score=max(neg, 1 - neg),
        prob_negative=neg,
        truncated=False,
    )


def test_anonymous_reviews_are_left_out_and_ties_break_by_count(db_url):
    engine = make_engine(db_url)
    run_migrations(engine)
    try:
        with make_sessionmaker(engine)() as s:
            rows = [_new("a", "negative"), _new("b", "negative"), _new("b", "negative")]
            rows += [_new(None, "negative"), _new("c", "positive")]
            crud.add_reviews(s, reviews=rows, threshold=0.5, model_version="m")
            s.commit()
            out = viewers.user_stats(s, sort="negative_share", since=None, limit=10, offset=0)
            # a and b both at 100% negative: b has more negatives, so b first.
            assert [u["user_id"] for u in out] == ["b", "a", "c"]
            assert [u["open_flags"] for u in out] == [2, 1, 0]
            with pytest.raises(ValueError, match="sort"):
                viewers.user_stats(s, sort="bogus", since=None, limit=10, offset=0)
    finally:
        engine.dispose()
