"""FastAPI application factory: ``create_app(settings, model_dir=...)``.

Startup (lifespan): run Alembic migrations, start the micro-batcher and the flag poller, and
load the model in the background (``/readyz`` answers 503 until it is loaded). The app keeps no
state that matters outside the database, so any number of replicas can serve one PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from reviewsense import rundir
from reviewsense.metrics import DEFAULT_THRESHOLD
from reviewsense.service import crud
from reviewsense.service.batcher import InferenceFailed, MicroBatcher, NotReady, Overloaded
from reviewsense.service.db import is_sqlite, make_engine, make_sessionmaker, run_migrations
from reviewsense.service.events import FlagBroadcaster
from reviewsense.service.metrics import MetricsMiddleware, ServiceMetrics
from reviewsense.service.security import KeyVerifier
from reviewsense.settings import ServiceSettings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


API_DESCRIPTION = """
Real-time review sentiment for a streaming platform: store reviews with the model's
prediction, flag negative ones for the support team, follow per-title sentiment.

Authenticate with an `X-API-Key` header (create keys with `reviewsense keys create`).
Roles: **ingest** (POST /v1/reviews, /v1/classify), **read** (titles, flags, stream: the
dashboard's data), **support** (everything *read* may, plus resolving flags).
"""


@dataclass
class ServiceState:
    """Everything the routes need, kept on ``app.state.svc``."""

    settings: ServiceSettings
    engine: Any
    sessionmaker: sessionmaker
    verifier: KeyVerifier
    metrics: ServiceMetrics
    batcher: MicroBatcher
    broadcaster: FlagBroadcaster
    threshold: float
    threshold_source: str
    model_dir: Path | None
    predictor: Any = None
    model_version: str | None = None
    load_error: str | None = None
    # SQLite has one writer: queue writers here instead of in SQLite's sleeping busy handler.
    write_lock: threading.Lock | None = None
    background: list[asyncio.Task] = field(default_factory=list)

    @property
    def model_ready(self) -> bool:
        return self.predictor is not None


def resolve_threshold(settings: ServiceSettings, model_dir: Path | None, predictor: Any) -> tuple:
    """``--threshold`` / REVIEWSENSE_THRESHOLD, else the model folder's, else 0.5.

    Returns:
        (threshold, where it came from)
    """
    if settings.threshold is not None:
        return float(settings.threshold), "override"
    ms = None
    if predictor is not None:
        ms = getattr(predictor, "settings", None)
    elif model_dir is not None:
        ms = rundir.read_model_settings(model_dir)
    if ms is not None and ms.threshold is not None:
        return float(ms.threshold), "model"
    return DEFAULT_THRESHOLD, "default"


def _load_predictor(model_dir: Path, settings: ServiceSettings):
    from reviewsense.inference.predictor import Predictor

    return Predictor.from_pretrained(
        model_dir,
        backend=settings.backend,
        num_threads=settings.num_threads,
        batch_size=settings.batch_max_texts,
    )


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
    from reviewsense.errors import ConfigError

    if predictor is None and model_dir is None:
        raise ValueError("create_app needs model_dir or predictor")
    mdir = rundir.resolve_model_dir(model_dir) if model_dir is not None else None
    threshold, source = resolve_threshold(settings, mdir, predictor)
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be between 0 and 1, got {threshold}")
    engine = make_engine(settings.db_url)
    sm = make_sessionmaker(engine)
    metrics = ServiceMetrics()
    batcher = MicroBatcher(
        None,
        max_batch=settings.batch_max_texts,
        max_wait_ms=settings.batch_wait_ms,
        max_queue=settings.queue_size,
        timeout_s=settings.queue_timeout_s,
        on_batch=metrics.batch_size.observe,
        on_depth=metrics.queue_depth.set,
    )

    def _ids_after(after_id: int) -> list[int]:
        with sm() as s:
            return crud.flag_ids_after(s, after_id=after_id)

    def _flags(ids: list[int]) -> list[dict]:
        with sm() as s:
            return crud.flags_by_ids(s, ids=ids)

    def _max_id() -> int:
        with sm() as s:
            return crud.max_flag_id(s)

    broadcaster = FlagBroadcaster(_ids_after, _flags, _max_id, poll_s=settings.flag_poll_s)
    state = ServiceState(
        settings=settings,
        engine=engine,
        sessionmaker=sm,
        verifier=KeyVerifier(sm, cache_s=settings.key_cache_s),
        metrics=metrics,
        batcher=batcher,
        broadcaster=broadcaster,
        threshold=threshold,
        threshold_source=source,
        model_dir=mdir,
        write_lock=threading.Lock() if is_sqlite(engine) else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(run_migrations, engine)
        await batcher.start()
        await broadcaster.start()
        if predictor is not None:
            _set_predictor(state, predictor)
        else:
            state.background.append(asyncio.create_task(_load_in_background(state)))
        log.info("serving with threshold %.4f (%s), database %s", threshold, source, engine.url)
        try:
            yield
        finally:
            for t in state.background:
                t.cancel()
            await broadcaster.stop()
            await batcher.stop()
            engine.dispose()

    app = FastAPI(
        title="reviewsense",
        version="1",
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.svc = state
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _add_error_handlers(app)

    from reviewsense.service.api.routes import classify, flags, health, me, reviews, stream, titles

    for module in (reviews, classify, flags, titles, stream, me, health):
        app.include_router(module.router)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        # The page holds no data: it asks for a key and calls the API with it.
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    return app


def _set_predictor(state: ServiceState, predictor: Any) -> None:
    state.predictor = predictor
    state.model_version = str(predictor.model_version)
    state.batcher.predict = predictor.predict


async def _load_in_background(state: ServiceState) -> None:
    assert state.model_dir is not None
    try:
        predictor = await asyncio.to_thread(_load_predictor, state.model_dir, state.settings)
    except Exception as e:  # ModelError or anything torch raises: keep serving health
        state.load_error = str(e)
        log.error("cannot load the model from %s: %s", state.model_dir, e)
        return
    _set_predictor(state, predictor)
    log.info("model %s loaded from %s", state.model_version, state.model_dir)


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


def _add_error_handlers(app: FastAPI) -> None:
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
        msg = f"model failed to load: {state.load_error}" if state.load_error else str(exc)
        return error_response(503, msg, {"Retry-After": "5"})

    @app.exception_handler(OperationalError)
    async def _db_down(request: Request, exc: OperationalError) -> JSONResponse:
        # Database unreachable or locked: a transient condition, not a bug in the request.
        log.warning("database error: %s", exc.orig)
        return error_response(503, "database unavailable; retry later", {"Retry-After": "2"})

    @app.exception_handler(InferenceFailed)
    async def _inference(request: Request, exc: InferenceFailed) -> JSONResponse:
        return error_response(500, f"inference failed: {exc}")
