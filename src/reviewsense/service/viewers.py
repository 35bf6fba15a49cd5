"""Support view by viewer: per-user counts, negative share, open flags; one user's reviews.

Reviews without a ``user_id`` are left out (anonymous reviews have no viewer to help).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from reviewsense.service.crud import share_of
from reviewsense.service.db import Flag, Review, Title

USER_SORTS = ("negative_share", "negative_count", "recent")


def user_stats(
    session: Session, *, sort: str, since: dt.datetime | None, limit: int, offset: int
) -> list[dict]:
    """Viewers (reviews with a user_id, since ``since``): counts, negative share, last review,
    open flags; worst first for the negative sorts, most recent first for ``recent``."""
    if sort not in USER_SORTS:
        raise ValueError(f"sort must be one of {', '.join(USER_SORTS)}")
    n = func.count(Review.id)
    neg = func.coalesce(func.sum(case((Review.label == "negative", 1), else_=0)), 0)
    is_open = and_(Flag.id.is_not(None), Flag.status == "open")
    open_flags = func.coalesce(func.sum(case((is_open, 1), else_=0)), 0)
    last = func.max(Review.created_at)
    share = share_of(neg, n)
    q = (
        select(
            Review.user_id,
            n.label("reviews"),
            neg.label("negative"),
            share.label("share"),
            last.label("last"),
            open_flags.label("open_flags"),
        )
        .outerjoin(Flag, Flag.review_id == Review.id)
        .where(Review.user_id.is_not(None))
        .group_by(Review.user_id)
    )
    if since is not None:
        q = q.where(Review.created_at >= since)
    keys = {"negative_share": (share, neg), "negative_count": (neg, share), "recent": (last, neg)}
    first, second = keys[sort]
    q = q.order_by(first.desc().nulls_last(), second.desc(), Review.user_id)
    return [
        {
            "user_id": row.user_id,
            "reviews": int(row.reviews),
            "negative": int(row.negative),
            "negative_share": row.share,
            "last_review_at": row.last,
            "open_flags": int(row.open_flags),
        }
        for row in session.execute(q.limit(limit).offset(offset))
    ]


def user_reviews(
    session: Session, *, user_id: str, limit: int, cursor: int | None
) -> tuple[list[dict], int | None]:
    """One viewer's reviews newest first (keyset by id), each with its flag, if any."""
    q = (
        select(Review, Title.name, Flag)
        .join(Title, Title.id == Review.title_id)
        .outerjoin(Flag, Flag.review_id == Review.id)
        .where(Review.user_id == user_id)
    )
    if cursor is not None:
        q = q.where(Review.id < cursor)
    rows = session.execute(q.order_by(Review.id.desc()).limit(limit + 1)).all()
    items = [
        {
            "id": r.id,
            "title_id": r.title_id,
            "title_name": name,
            "text": r.text,
            "rating": r.rating,
            "label": r.label,
            "prob_negative": r.prob_negative,
            "created_at": r.created_at,
            "flag_id": f.id if f is not None else None,
            "flag_status": f.status if f is not None else None,
        }
        for r, name, f in rows[:limit]
    ]
    return items, (items[-1]["id"] if len(rows) > limit else None)
