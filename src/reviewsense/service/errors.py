"""HTTP error bodies of the service: ``{"detail": ..., ...}`` and the app's exception handlers.

Raw exception text (database, model loading) goes to the log, never to clients.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from reviewsense.service.batcher import InferenceFailed, NotReady, Overloaded
from reviewsense.service.writer import WriterStopped

log = logging.getLogger(__name__)


def error_response(status: int, detail: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def format_loc(loc: tuple | list) -> str:
    """('body', 'reviews', 3, 'text') → 'reviews[3].text'."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header") and not out:
            if part != "body":
                out = f"{part} parameter "
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out and not out.endswith(" ") else "") + str(part)
    return out or "body"


def validation_errors(errors: list[dict]) -> tuple[str, list[dict]]:
    """pydantic errors → (one-line detail naming each field, [{"field", "message"}])."""
    items = [
        # pydantic prefixes messages of custom validators with "Value error, ": noise to users.
        {
            "field": format_loc(e.get("loc", ())),
            "message": e.get("msg", "").replace("Value error, ", ""),
        }
        for e in errors
    ]
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in items[:10])
    return detail, items


def add_error_handlers(app: FastAPI) -> None:
    """422 for validation, 503 (+ Retry-After) for overload / model / database, 500 inference."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, items = validation_errors(list(exc.errors()))
        return error_response(422, detail, errors=items)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        request.app.state.svc.metrics.rejected.inc()
        return error_response(
            503, f"overloaded: {exc}; retry later", {"Retry-After": str(exc.retry_after)}
        )

    @app.exception_handler(NotReady)
    async def _not_ready(request: Request, exc: NotReady) -> JSONResponse:
        state = request.app.state.svc
        msg = "the model failed to load (see the server log)" if state.load_error else str(exc)
        return error_response(503, msg, {"Retry-After": "5"})

    @app.exception_handler(OperationalError)
    async def _db_down(request: Request, exc: OperationalError) -> JSONResponse:
        # Database unreachable or locked: a transient condition, not a bug in the request.
        log.warning("database error: %s", exc.orig)
        return error_response(503, "database unavailable; retry later", {"Retry-After": "2"})

    @app.exception_handler(WriterStopped)
    async def _stopping(request: Request, exc: WriterStopped) -> JSONResponse:
        return error_response(503, f"{exc}; nothing was stored, retry", {"Retry-After": "1"})

    @app.exception_handler(InferenceFailed)
    async def _inference(request: Request, exc: InferenceFailed) -> JSONResponse:
        return error_response(500, f"inference failed: {exc}")
