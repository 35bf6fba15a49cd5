"""Database operations of the service: keyword-only functions over a SQLAlchemy session.

Every statement is built with the ORM / SQL expression language, so all values travel as bound
parameters. Functions do not commit unless their name says so; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Float, and_, case, cast, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reviewsense.metrics import is_flagged
from reviewsense.service.db import ROLES, ApiKey, Flag, IdempotencyRecord, Review, Title, utcnow
from reviewsense.service.security import generate_key, hash_key, parse_key_id

TITLE_SORTS = ("positive_share", "reviews", "trend", "new")


# --------------------------------------------------------------------------- API keys


def create_api_key(session: Session, *, role: str) -> tuple[str, str]:
    """Store a new key's hash; return ``(key_id, full_key)`` (the key is not stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    key_id, key = generate_key()
    session.add(ApiKey(key_id=key_id, key_hash=hash_key(key), role=role))
    return key_id, key


def find_api_keys(session: Session, *, key_id_or_prefix: str) -> list[ApiKey]:
    """Keys whose id starts with the given prefix (a full key is reduced to its id)."""
    ident = parse_key_id(key_id_or_prefix) or key_id_or_prefix.strip().lower()
    if not ident:
        return []
    # LIKE with a bound, escaped pattern: '%' or '_' typed by the user match literally.
    pattern = ident.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.key_id.like(pattern, escape="\\")).order_by(ApiKey.id)
        )
    )


def revoke_api_key(session: Session, *, key: ApiKey) -> bool:
    """Mark the key revoked; False when it already was."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    return True


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


# --------------------------------------------------------------------------- idempotency


def get_idempotency(session: Session, *, api_key_id: str, key: str) -> IdempotencyRecord | None:
    return session.get(IdempotencyRecord, (api_key_id, key))


def add_idempotency(
    session: Session,
    *,
    api_key_id: str,
    key: str,
    request_hash: str,
    status_code: int,
    response_json: str,
) -> None:
    session.add(
        IdempotencyRecord(
            api_key_id=api_key_id,
            key=key,
            request_hash=request_hash,
            status_code=status_code,
            response_json=response_json,
        )
    )


# --------------------------------------------------------------------------- reviews


@dataclass
class NewReview:
    """A review ready to be stored: the input plus its prediction."""

    title_id: str
    title_name: str | None
    user_id: str | None
    text: str
    rating: float | None
    created_at: dt.datetime  # naive UTC
    label: str
    score: float
    prob_negative: float
    truncated: bool
    event_key: str | None = None  # stream id / idempotency_key of an event (unique)


def ensure_titles(session: Session, *, titles: dict[str, str | None]) -> None:
    """Create missing titles (race-free across replicas) and fill in new names.

    ``INSERT ... ON CONFLICT DO NOTHING`` instead of read-then-insert: two replicas seeing a new
    show at the same moment must not fail one request with a duplicate key.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    # Sorted: concurrent transactions lock titles in the same order, so they cannot deadlock.
    for title_id in sorted(titles):
        name = titles[title_id]
        stmt = insert(Title).values(id=title_id, name=name, first_seen_at=now)
        session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))
        if name is not None:
            # Only touches (and row-locks) the title when the name actually changes.
            session.execute(
                update(Title)
                .where(Title.id == title_id, or_(Title.name.is_(None), Title.name != name))
                .values(name=name)
            )


def add_reviews(
    session: Session,
    *,
    reviews: Sequence[NewReview],
    threshold: float,
    model_version: str,
) -> list[tuple[Review, Flag | None]]:
    """Insert reviews (and flags for those with P(negative) ≥ threshold); flushes for ids."""
    titles: dict[str, str | None] = {}
    for r in reviews:
        if titles.get(r.title_id) is None:
            titles[r.title_id] = r.title_name
    ensure_titles(session, titles=titles)
    now = utcnow()
    rows = [
        Review(
            title_id=r.title_id,
            user_id=r.user_id,
            text=r.text,
            rating=r.rating,
            created_at=r.created_at,
            received_at=now,
            label=r.label,
            score=r.score,
            prob_negative=r.prob_negative,
            truncated=r.truncated,
            model_version=model_version,
            event_key=r.event_key,
        )
        for r in reviews
    ]
    session.add_all(rows)
    session.flush()
    out: list[tuple[Review, Flag | None]] = []
    flags: list[Flag] = []
    for row in rows:
        flag = None
        if is_flagged(row.prob_negative, threshold):
            flag = Flag(
                review_id=row.id,
                title_id=row.title_id,
                prob_negative=row.prob_negative,
                threshold=threshold,
                status="open",
                created_at=now,
            )
            flags.append(flag)
        out.append((row, flag))
    if flags:
        session.add_all(flags)
        session.flush()
    return out


def existing_event_keys(session: Session, *, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` are already stored (redelivered or re-sent events)."""
    if not keys:
        return set()
    q = select(Review.event_key).where(Review.event_key.in_(list(keys)))
    return {k for k in session.scalars(q) if k is not None}


def flags_by_event_keys(session: Session, *, keys: Sequence[str]) -> list[dict]:
    """Flags of the reviews stored for these event keys (what the consumer publishes)."""
    if not keys:
        return []
    q = (
        select(Flag, Review.event_key, Review.user_id)
        .join(Review, Review.id == Flag.review_id)
        .where(Review.event_key.in_(list(keys)))
        .order_by(Flag.id)
    )
    return [
        {
            "flag_id": f.id,
            "review_id": f.review_id,
            "title_id": f.title_id,
            "user_id": user_id,
            "prob_negative": f.prob_negative,
            "threshold": f.threshold,
            "event_key": key,
        }
        for f, key, user_id in session.execute(q)
    ]


def count_reviews(session: Session) -> int:
    return int(session.scalar(select(func.count(Review.id))) or 0)


# --------------------------------------------------------------------------- flags


def _flag_query():
    return (
        select(Flag, Review, Title.name)
        .join(Review, Review.id == Flag.review_id)
        .join(Title, Title.id == Flag.title_id)
    )


def flag_to_dict(flag: Flag, review: Review, title_name: str | None) -> dict:
    """The API's view of a flag: the flag plus what support needs from the review."""
    return {
        "id": flag.id,
        "review_id": flag.review_id,
        "title_id": flag.title_id,
        "title_name": title_name,
        "user_id": review.user_id,
        "text": review.text,
        "rating": review.rating,
        "prob_negative": flag.prob_negative,
        "threshold": flag.threshold,
        "status": flag.status,
        "created_at": flag.created_at,
        "resolved_at": flag.resolved_at,
        "resolved_by": flag.resolved_by,
        "note": flag.note,
    }


def list_flags(
    session: Session, *, status: str | None, limit: int, cursor: int | None
) -> tuple[list[dict], int | None]:
    """Flags newest first; keyset pagination by id (stable while new flags arrive).

    Returns:
        (flags, cursor for the next older page or None)
    """
    q = _flag_query()
    if status is not None:
        q = q.where(Flag.status == status)
    if cursor is not None:
        q = q.where(Flag.id < cursor)
    rows = session.execute(q.order_by(Flag.id.desc()).limit(limit + 1)).all()
    items = [flag_to_dict(f, r, n) for f, r, n in rows[:limit]]
    next_cursor = items[-1]["id"] if len(rows) > limit else None
    return items, next_cursor


def max_flag_id(session: Session) -> int:
    return int(session.scalar(select(func.max(Flag.id))) or 0)


def resolve_flag(
    session: Session, *, flag_id: int, resolved_by: str, note: str | None
) -> dict | None:
    """Resolve a flag (resolving twice keeps the first resolution); None when not found."""
    row = session.execute(_flag_query().where(Flag.id == flag_id)).first()
    if row is None:
        return None
    flag, review, name = row
    if flag.status != "resolved":
        flag.status = "resolved"
        flag.resolved_at = utcnow()
        flag.resolved_by = resolved_by
        flag.note = note
        session.flush()
    return flag_to_dict(flag, review, name)


# --------------------------------------------------------------------------- titles


def share_of(pos, n):
    """pos / n as a float, NULL when n is 0 (portable across SQLite and PostgreSQL)."""
    return cast(pos, Float) / func.nullif(n, 0)


def title_stats(
    session: Session,
    *,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
    min_reviews: int,
    now: dt.datetime,
    title_id: str | None = None,
) -> list[dict]:
    """Per-title counts, positive share and 7-day trend, sorted in SQL."""
    if sort not in TITLE_SORTS:
        raise ValueError(f"sort must be one of {', '.join(TITLE_SORTS)}")
    d7, d14 = now - dt.timedelta(days=7), now - dt.timedelta(days=14)
    is_pos = Review.label == "positive"
    last7 = Review.created_at >= d7
    prev7 = and_(Review.created_at >= d14, Review.created_at < d7)
    n = func.count(Review.id)
    pos = func.coalesce(func.sum(case((is_pos, 1), else_=0)), 0)
    n7 = func.coalesce(func.sum(case((last7, 1), else_=0)), 0)
    p7 = func.coalesce(func.sum(case((and_(last7, is_pos), 1), else_=0)), 0)
    nprev = func.coalesce(func.sum(case((prev7, 1), else_=0)), 0)
    pprev = func.coalesce(func.sum(case((and_(prev7, is_pos), 1), else_=0)), 0)
    share = share_of(pos, n)
    share7, share_prev = share_of(p7, n7), share_of(pprev, nprev)
    trend = share7 - share_prev
    q = (
        select(
            Title.id,
            Title.name,
            Title.first_seen_at,
            n.label("reviews"),
            pos.label("positive"),
            n7.label("n7"),
            share.label("share"),
            share7.label("share7"),
            share_prev.label("share_prev"),
            trend.label("trend"),
        )
        .join(Review, Review.title_id == Title.id)
        .group_by(Title.id, Title.name, Title.first_seen_at)
        .having(n >= min_reviews)
    )
    if title_id is not None:
        q = q.where(Title.id == title_id)
    key = {"positive_share": share, "reviews": n, "trend": trend, "new": Title.first_seen_at}[sort]
    order = key.desc() if descending else key.asc()
    q = q.order_by(order.nulls_last(), Title.id).limit(limit).offset(offset)
    out = []
    for row in session.execute(q):
        out.append(
            {
                "title_id": row.id,
                "name": row.name,
                "first_seen_at": row.first_seen_at,
                "reviews": int(row.reviews),
                "positive": int(row.positive),
                "negative": int(row.reviews) - int(row.positive),
                "positive_share": row.share,
                "reviews_7d": int(row.n7),
                "positive_share_7d": row.share7,
                "positive_share_prev_7d": row.share_prev,
                "trend_7d": row.trend,
            }
        )
    return out


def daily_series(
    session: Session, *, title_ids: Sequence[str], since: dt.datetime
) -> dict[str, list[dict]]:
    """Reviews and positive counts per title and UTC day since ``since`` (days with none omitted)."""
    if not title_ids:
        return {}
    day = func.date(Review.created_at)  # SQLite returns 'YYYY-MM-DD', PostgreSQL a date
    q = (
        select(
            Review.title_id,
            day.label("day"),
            func.count(Review.id).label("n"),
            func.coalesce(func.sum(case((Review.label == "positive", 1), else_=0)), 0).label("p"),
        )
        .where(Review.title_id.in_(list(title_ids)), Review.created_at >= since)
        .group_by(Review.title_id, day)
        .order_by(Review.title_id, day)
    )
    out: dict[str, list[dict]] = {t: [] for t in title_ids}
    for row in session.execute(q):
        d = row.day if isinstance(row.day, dt.date) else dt.date.fromisoformat(str(row.day))
        n, p = int(row.n), int(row.p)
        out[row.title_id].append(
            {"date": d, "reviews": n, "positive": p, "positive_share": p / n if n else None}
        )
    return out


def title_extra(session: Session, *, title_id: str) -> dict:
    """Mean rating and open flags of one title."""
    mean_rating = session.scalar(select(func.avg(Review.rating)).where(Review.title_id == title_id))
    open_flags = session.scalar(
        select(func.count(Flag.id)).where(Flag.title_id == title_id, Flag.status == "open")
    )
    return {
        "mean_rating": float(mean_rating) if mean_rating is not None else None,
        "open_flags": int(open_flags or 0),
    }


def get_title(session: Session, *, title_id: str) -> Title | None:
    return session.get(Title, title_id)


def flag_ids_after(
    session: Session, *, after_id: int, holes: Sequence[int] = (), limit: int = 5000
) -> list[int]:
    """Ids of flags above ``after_id`` or in ``holes``, ascending (index-only: the poller's
    cheap query)."""
    where = Flag.id > after_id
    if holes:
        where = or_(where, Flag.id.in_(list(holes)))
    return list(session.scalars(select(Flag.id).where(where).order_by(Flag.id).limit(limit)))


def flags_by_ids(session: Session, *, ids: Sequence[int]) -> list[dict]:
    """Full flag views for the given ids, oldest first."""
    if not ids:
        return []
    rows = session.execute(_flag_query().where(Flag.id.in_(list(ids))).order_by(Flag.id)).all()
    return [flag_to_dict(f, r, n) for f, r, n in rows]
