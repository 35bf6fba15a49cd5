"""GET /v1/stream: Server-Sent Events of new flags (event ``flag``, id = flag id).

Authenticated like every route, by the ``X-API-Key`` header. Browsers' EventSource cannot
send headers, so the dashboard reads the stream with ``fetch()`` instead — the key never goes
into a URL. A client reconnecting with ``Last-Event-ID`` first gets the flags it missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from reviewsense.service.deps import State, require_role
from reviewsense.service.events import format_sse
from reviewsense.service.security import Principal

router = APIRouter(prefix="/v1", tags=["stream"])

HEARTBEAT_S = 15.0  # keeps proxies from closing an idle stream


@router.get(
    "/stream",
    summary="Server-Sent Events: one `flag` event per new flag",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    state: State,
    principal: Annotated[Principal, Depends(require_role("support", "read"))],
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    broadcaster = state.broadcaster
    sub = broadcaster.subscribe()  # before the backlog query: nothing falls in between
    backlog: list[dict] = []
    if last_event_id and last_event_id.isdigit():
        backlog = await run_in_threadpool(broadcaster.backlog, int(last_event_id))

    async def events() -> AsyncIterator[bytes]:
        state.metrics.sse_clients.inc()
        sent: set[int] = set()
        try:
            yield b"retry: 2000\n: connected\n\n"
            for flag in backlog:
                sent.add(flag["id"])
                yield format_sse(flag)
            while not sub.overflowed:
                try:
                    flag = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if flag["id"] in sent:
                    continue
                yield format_sse(flag)
            # Fell too far behind: end the stream; the client reconnects with Last-Event-ID.
        finally:
            broadcaster.unsubscribe(sub)
            state.metrics.sse_clients.dec()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
