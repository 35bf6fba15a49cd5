"""Per-title sentiment: GET /v1/titles and GET /v1/titles/{title_id}/sentiment."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from reviewsense.service import crud
from reviewsense.service.deps import State, require_role
from reviewsense.service.schemas import DailyPoint, TitleOut, TitlePage, TitleSentiment
from reviewsense.service.security import Principal

router = APIRouter(prefix="/v1/titles", tags=["titles"])

# The support team gets title context too: "is this complaint about a show that is tanking?"
READERS = ("read", "support")


@router.get("", response_model=TitlePage, summary="Titles by positive share, volume or trend")
async def list_titles(
    state: State,
    principal: Annotated[Principal, Depends(require_role(*READERS))],
    sort: Annotated[
        Literal["positive_share", "reviews", "trend", "new"],
        Query(
            description="positive_share (top-rated), reviews (most reviewed), trend (positive "
            "share of the last 7 days minus the 7 before), new (first seen most recently)"
        ),
    ] = "positive_share",
    order: Annotated[Literal["desc", "asc"], Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    min_reviews: Annotated[int, Query(ge=1, description="hide titles with fewer reviews")] = 1,
    days: Annotated[int, Query(ge=0, le=90, description="daily series length (sparkline)")] = 14,
) -> TitlePage:
    now = crud.utcnow()

    def _query():
        with state.sessionmaker() as session:
            items = crud.title_stats(
                session,
                sort=sort,
                descending=order == "desc",
                limit=limit,
                offset=offset,
                min_reviews=min_reviews,
                now=now,
            )
            series = {}
            if days:
                series = crud.daily_series(
                    session,
                    title_ids=[i["title_id"] for i in items],
                    since=_day_start(now, days),
                )
            return items, series

    items, series = await run_in_threadpool(_query)
    return TitlePage(
        sort=sort,
        limit=limit,
        offset=offset,
        items=[
            TitleOut(**i, daily=[DailyPoint(**d) for d in series.get(i["title_id"], [])])
            for i in items
        ],
    )


@router.get(
    "/{title_id}/sentiment",
    response_model=TitleSentiment,
    summary="Counts, positive share and daily series of one title",
    responses={404: {"description": "no reviews for this title"}},
)
async def title_sentiment(
    title_id: str,
    state: State,
    principal: Annotated[Principal, Depends(require_role(*READERS))],
    days: Annotated[int, Query(ge=1, le=365, description="daily series length")] = 30,
) -> TitleSentiment:
    now = crud.utcnow()

    def _query():
        with state.sessionmaker() as session:
            rows = crud.title_stats(
                session,
                sort="reviews",
                descending=True,
                limit=1,
                offset=0,
                min_reviews=1,
                now=now,
                title_id=title_id,
            )
            if not rows:
                return None
            extra = crud.title_extra(session, title_id=title_id)
            series = crud.daily_series(session, title_ids=[title_id], since=_day_start(now, days))
            return rows[0], extra, series[title_id]

    found = await run_in_threadpool(_query)
    if found is None:
        raise HTTPException(404, f"title {title_id!r} has no reviews")
    row, extra, series = found
    return TitleSentiment(
        title_id=row["title_id"],
        name=row["name"],
        first_seen_at=row["first_seen_at"],
        reviews=row["reviews"],
        positive=row["positive"],
        negative=row["negative"],
        positive_share=row["positive_share"],
        mean_rating=extra["mean_rating"],
        open_flags=extra["open_flags"],
        daily=[DailyPoint(**d) for d in series],
    )


def _day_start(now: dt.datetime, days: int) -> dt.datetime:
    """Midnight (UTC) ``days - 1`` days ago: a series of ``days`` whole days including today."""
    return dt.datetime.combine(now.date() - dt.timedelta(days=days - 1), dt.time())
