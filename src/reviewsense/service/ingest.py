"""The one ingestion path: reviews in → predictions → reviews + flags in one transaction.

Used by ``POST /v1/reviews`` (routes/reviews.py) and the Redis Streams consumer
(consumer.py), so both store, flag and count exactly the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from reviewsense.service import crud
from reviewsense.service.db import SQLITE_WRITE
from reviewsense.service.schemas import ReviewIn


class WriteTarget(Protocol):
    """What writing needs (ServiceState and the consumer both have it)."""

    sessionmaker: sessionmaker
    write_lock: threading.Lock | None
    threshold: float
    model_version: str | None


def text_over_limit(text: str, max_chars: int) -> str | None:
    """Why ``text`` is refused (None when it is fine): the hard cap on characters.

    Texts longer than the model's max_length are truncated, not refused; this cap only
    protects memory and the database.
    """
    if len(text) > max_chars:
        return f"{len(text)} characters, over the limit of {max_chars}"
    return None


def to_utc_naive(value: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """The storage convention (naive UTC); ``now`` when the client sent no time."""
    if value is None:
        return now
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def to_new_reviews(
    reviews: Sequence[ReviewIn],
    predictions: Sequence[Any],
    *,
    event_keys: Sequence[str | None] | None = None,
) -> list[crud.NewReview]:
    """Validated reviews + their predictions (same order) → rows ready to store."""
    now = crud.utcnow()
    keys = list(event_keys) if event_keys is not None else [None] * len(reviews)
    return [
        crud.NewReview(
            title_id=r.title_id,
            title_name=r.title_name,
            user_id=r.user_id,
            text=r.text,
            rating=r.rating,
            created_at=to_utc_naive(r.created_at, now),
            label=p.label,
            score=p.score,
            prob_negative=p.prob_negative,
            truncated=p.truncated,
            event_key=k,
        )
        for r, p, k in zip(reviews, predictions, keys, strict=True)
    ]


@contextlib.contextmanager
def write_session(target: WriteTarget) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its start (SQLite: BEGIN
    IMMEDIATE plus a process lock, so writers queue instead of failing with SQLITE_BUSY)."""
    lock = target.write_lock or contextlib.nullcontext()
    with lock, target.sessionmaker() as session:
        session.connection(execution_options={SQLITE_WRITE: True})
        yield session


def add_reviews(
    session: Session, target: WriteTarget, new: Sequence[crud.NewReview]
) -> list[tuple[Any, Any]]:
    """Insert reviews and their flags (the flag rule is metrics.is_flagged); no commit."""
    return crud.add_reviews(
        session, reviews=new, threshold=target.threshold, model_version=target.model_version or ""
    )
