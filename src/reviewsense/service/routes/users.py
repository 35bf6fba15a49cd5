"""The support view by viewer: GET /v1/users and GET /v1/users/{user_id}/reviews."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from reviewsense.service import crud, viewers
from reviewsense.service.deps import State, require_role
from reviewsense.service.ingest import to_utc_naive
from reviewsense.service.schemas import UserOut, UserPage, UserReviewOut, UserReviewPage
from reviewsense.service.security import Principal

router = APIRouter(prefix="/v1/users", tags=["users"])

# Per-viewer data is personal: support only (a read key sees titles and flags, not people).
SUPPORT = "support"


@router.get("", response_model=UserPage, summary="Viewers having a bad time, worst first")
async def list_users(
    state: State,
    principal: Annotated[Principal, Depends(require_role(SUPPORT))],
    sort: Annotated[
        Literal["negative_share", "negative_count", "recent"],
        Query(
            description="negative_share (share of negative reviews), negative_count, recent "
            "(latest review first)"
        ),
    ] = "negative_share",
    since: Annotated[
        dt.datetime | None, Query(description="only reviews written at or after (ISO 8601)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> UserPage:
    since_utc = to_utc_naive(since, crud.utcnow()) if since is not None else None

    def _query():
        with state.sessionmaker() as session:
            return viewers.user_stats(
                session, sort=sort, since=since_utc, limit=limit, offset=offset
            )

    items = await run_in_threadpool(_query)
    return UserPage(
        items=[UserOut(**i) for i in items], sort=sort, since=since_utc, limit=limit, offset=offset
    )


@router.get(
    "/{user_id}/reviews",
    response_model=UserReviewPage,
    summary="One viewer's reviews, newest first, with their flags",
)
async def user_reviews(
    user_id: str,
    state: State,
    principal: Annotated[Principal, Depends(require_role(SUPPORT))],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Query(ge=1, description="next_cursor of the last page")] = None,
) -> UserReviewPage:
    def _query():
        with state.sessionmaker() as session:
            return viewers.user_reviews(session, user_id=user_id, limit=limit, cursor=cursor)

    items, next_cursor = await run_in_threadpool(_query)
    return UserReviewPage(
        user_id=user_id, items=[UserReviewOut(**i) for i in items], next_cursor=next_cursor
    )
