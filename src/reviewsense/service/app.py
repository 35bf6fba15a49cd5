"""FastAPI application factory: ``create_app(settings, model_dir=...)``, and its lifespan.

Startup (lifespan): run Alembic migrations, start the micro-batcher, the group writer and the
flag poller, and load the model in the background (``/readyz`` answers 503 until it is
loaded). The app keeps no state that matters outside the database, so any number of replicas
can serve one PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from reviewsense.service.db import run_migrations
from reviewsense.service.errors import add_error_handlers
from reviewsense.service.metrics import MetricsMiddleware
from reviewsense.service.routes import (
    classify,
    flags,
    health,
    me,
    reviews,
    stream,
    titles,
    users,
)
from reviewsense.service.state import (
    ServiceState,
    build_state,
    close_predictor,
    load_in_background,
    set_predictor,
)
from reviewsense.settings import ServiceSettings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
ROUTERS = (reviews, classify, flags, titles, users, stream, me, health)

# The dashboard runs only its own files: no inline script or style, no framing (clickjacking).
DASHBOARD_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

API_DESCRIPTION = """
Real-time review sentiment for a streaming platform: store reviews with the model's
prediction, flag negative ones for the support team, follow per-title sentiment.

Authenticate with an `X-API-Key` header (create keys with `reviewsense keys create`).
Roles: **ingest** (POST /v1/reviews, /v1/classify), **read** (titles, flags, stream: the
dashboard's data), **support** (everything *read* may, plus resolving flags and the
per-viewer view).
"""


def create_app(
    settings: ServiceSettings,
    *,
    model_dir: str | Path | None = None,
    predictor: Any = None,
) -> FastAPI:
    """Build the app. Pass a loaded ``predictor`` (tests share one) or a ``model_dir``.

    Raises:
        ConfigError / ModelError: bad database URL, model folder or threshold.
    """
    if predictor is None and model_dir is None:
        raise ValueError("create_app needs model_dir or predictor")
    state = build_state(settings, model_dir=model_dir, predictor=predictor)
    app = FastAPI(
        title="reviewsense",
        version="1",
        description=API_DESCRIPTION,
        lifespan=_lifespan(state, predictor),
    )
    app.state.svc = state
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    add_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        # The page holds no data: it asks for a key and calls the API with it.
        return FileResponse(STATIC_DIR / "index.html", headers=DASHBOARD_HEADERS)

    return app


def _lifespan(state: ServiceState, predictor: Any):
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(run_migrations, state.engine)
        await state.batcher.start()
        await state.writer.start()
        await state.broadcaster.start()
        if predictor is not None:
            set_predictor(state, predictor)
        else:
            state.background.append(asyncio.create_task(load_in_background(state)))
        log.info(
            "serving with threshold %.4f (%s), database %s",
            state.threshold,
            state.threshold_source,
            state.engine.url,
        )
        try:
            yield
        finally:
            for t in state.background:
                t.cancel()
            await state.broadcaster.stop()
            await state.batcher.stop()
            await state.writer.stop()
            await asyncio.to_thread(close_predictor, state)
            state.engine.dispose()

    return lifespan
