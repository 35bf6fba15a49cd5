"""/healthz (process alive), /readyz (model loaded + database reachable), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from reviewsense.service.deps import State

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
    def _ping() -> str | None:
        try:
            with state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return None
        except Exception as e:  # any failure means "not ready", with the reason
            return f"{type(e).__name__}: {e}".splitlines()[0]

    db_error = await run_in_threadpool(_ping)
    body = {
        "model_loaded": state.model_ready,
        "model_version": state.model_version,
        "model_error": state.load_error,
        "database": "ok" if db_error is None else db_error,
        "threshold": state.threshold,
        "threshold_source": state.threshold_source,
    }
    ready = state.model_ready and db_error is None
    body["status"] = "ready" if ready else "not ready"
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: State) -> Response:
    data, content_type = state.metrics.render()
    return Response(data, media_type=content_type)
