"""The one ingestion path: reviews in → predictions → reviews + flags in one transaction.

Used by ``POST /v1/reviews`` (routes/reviews.py) and the Redis Streams consumer
(consumer.py), so both store, flag and count exactly the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reviewsense.service import crud
from reviewsense.service.db import SQLITE_WRITE
from reviewsense.service.schemas import IngestResponse, ReviewIn, ReviewOut


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


@dataclass(frozen=True)
class StoreJob:
    """One POST's write: its predicted reviews and, for retries, its idempotency record."""

    key_id: str  # the API key that sent it
    idempotency_key: str | None
    request_hash: str  # sha256 of the canonical JSON body
    new: list[crud.NewReview]


@dataclass(frozen=True)
class Stored:
    """What the POST answers: status, response JSON, replayed?, flags raised."""

    status: int
    body: str
    replayed: bool
    n_flags: int


class IdempotencyConflict(Exception):
    """The Idempotency-Key was already used for a different request body."""


def replay(rec: Any, request_hash: str) -> Stored:
    """The stored answer of an earlier request with the same key (same body required)."""
    if rec.request_hash != request_hash:
        raise IdempotencyConflict(
            "Idempotency-Key: already used for a different request body; use a new key"
        )
    return Stored(rec.status_code, rec.response_json, True, 0)


def store_group(target: WriteTarget, jobs: Sequence[StoreJob]) -> list[Stored | Exception]:
    """Write several POSTs in one transaction (one commit, one fsync); a result per job.

    Each job runs in its own SAVEPOINT, so a job that fails (a concurrent retry that committed
    the same idempotency key first, on PostgreSQL) is undone alone and answered on its own.
    """
    results: list[Stored | Exception] = []
    with write_session(target) as session:
        for job in jobs:
            try:
                with session.begin_nested():
                    results.append(_store_one(session, target, job))
            except IntegrityError as e:
                rec = None
                if job.idempotency_key is not None:
                    rec = crud.get_idempotency(
                        session, api_key_id=job.key_id, key=job.idempotency_key
                    )
                results.append(_replay_or(rec, job, e))
            except Exception as e:  # this job's own failure, answered to its caller
                results.append(e)
        session.commit()
    return results


def _replay_or(rec: Any, job: StoreJob, error: Exception) -> Stored | Exception:
    if rec is None:
        return error
    try:
        return replay(rec, job.request_hash)
    except IdempotencyConflict as e:
        return e


def _store_one(session: Session, target: WriteTarget, job: StoreJob) -> Stored:
    if job.idempotency_key is not None:
        rec = crud.get_idempotency(session, api_key_id=job.key_id, key=job.idempotency_key)
        if rec is not None:  # a retry that lost the race to the first attempt's commit
            return replay(rec, job.request_hash)
    stored = add_reviews(session, target, job.new)
    body = IngestResponse(
        threshold=target.threshold,
        reviews=[
            ReviewOut(
                id=r.id,
                title_id=r.title_id,
                label=r.label,
                score=r.score,
                prob_negative=r.prob_negative,
                flagged=f is not None,
                flag_id=f.id if f is not None else None,
                truncated=r.truncated,
                model_version=r.model_version,
                created_at=r.created_at,
            )
            for r, f in stored
        ],
    ).model_dump_json()
    if job.idempotency_key is not None:
        crud.add_idempotency(
            session,
            api_key_id=job.key_id,
            key=job.idempotency_key,
            request_hash=job.request_hash,
            status_code=201,
            response_json=body,
        )
        session.flush()  # a duplicate key fails here, inside this job's savepoint
    return Stored(201, body, False, sum(f is not None for _, f in stored))
