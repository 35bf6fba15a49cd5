"""The support team's queue: GET /v1/flags and POST /v1/flags/{id}/resolve."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from reviewsense.service import crud, ingest
from reviewsense.service.deps import State, parse_json, read_body, require_role, validate
from reviewsense.service.schemas import FlagOut, FlagPage, ResolveIn
from reviewsense.service.security import Principal

router = APIRouter(prefix="/v1/flags", tags=["flags"])


@router.get("", response_model=FlagPage, summary="Flagged reviews, newest first")
async def list_flags(
    state: State,
    principal: Annotated[Principal, Depends(require_role("support", "read"))],
    status: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Query(ge=1, description="next_cursor of the last page")] = None,
) -> FlagPage:
    def _query():
        with state.sessionmaker() as session:
            return crud.list_flags(
                session, status=None if status == "all" else status, limit=limit, cursor=cursor
            )

    items, next_cursor = await run_in_threadpool(_query)
    return FlagPage(items=[FlagOut(**i) for i in items], next_cursor=next_cursor)


@router.post(
    "/{flag_id}/resolve",
    response_model=FlagOut,
    summary='Mark a flag handled (optional body: {"note": "..."})',
    responses={404: {"description": "no such flag"}},
)
async def resolve_flag(
    flag_id: int,
    request: Request,
    state: State,
    principal: Annotated[Principal, Depends(require_role("support"))],
) -> FlagOut:
    data = parse_json(
        await read_body(request, max_bytes=state.settings.max_body_bytes), required=False
    )
    note = validate(ResolveIn, data).note if data is not None else None

    def _resolve():
        with ingest.write_session(state) as session:
            flag = crud.resolve_flag(
                session, flag_id=flag_id, resolved_by=principal.key_id, note=note
            )
            session.commit()
            return flag

    flag = await run_in_threadpool(_resolve)
    if flag is None:
        raise HTTPException(404, f"flag {flag_id} not found")
    return FlagOut(**flag)
