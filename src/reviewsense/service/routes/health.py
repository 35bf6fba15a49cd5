"""/healthz (process alive), /readyz (model loaded + database reachable), /metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from reviewsense.service.deps import State

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready for traffic: model loaded and database reachable (503 otherwise)",
    responses={503: {"description": "not ready; the body says why"}},
)
async def readyz(state: State) -> JSONResponse:
    """Names the failed checks; the raw errors go to the server log, never to the client."""

    def _ping() -> bool:
        try:
            with state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception as e:  # any failure means "not ready"; the reason is for the log
            log.warning("readyz: database check failed: %s", f"{type(e).__name__}: {e}")
            return False

    db_ok = await run_in_threadpool(_ping)
    failed = [name for name, ok in (("model", state.model_ready), ("database", db_ok)) if not ok]
    body = {
        "status": "not ready" if failed else "ready",
        "failed": failed,
        "model_loaded": state.model_ready,
        "model_version": state.model_version,
        "model_error": "failed to load (see the server log)" if state.load_error else None,
        "database": "ok" if db_ok else "unreachable (see the server log)",
        "threshold": state.threshold,
        "threshold_source": state.threshold_source,
    }
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: State) -> Response:
    data, content_type = state.metrics.render()
    return Response(data, media_type=content_type)
