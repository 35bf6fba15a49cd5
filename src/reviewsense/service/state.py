"""What a running service holds (``ServiceState`` on ``app.state.svc``) and how it is built.

Only core modules are imported here (db, batcher, writer, events, ingest, metrics, security,
settings): the app factory, the routes and the dependencies all import this module, never the
reverse.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from reviewsense import rundir
from reviewsense.metrics import DEFAULT_THRESHOLD
from reviewsense.service import crud, ingest
from reviewsense.service.batcher import MicroBatcher
from reviewsense.service.db import is_sqlite, make_engine, make_sessionmaker
from reviewsense.service.events import FlagBroadcaster
from reviewsense.service.metrics import ServiceMetrics
from reviewsense.service.security import KeyVerifier
from reviewsense.service.writer import GroupWriter
from reviewsense.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    """Everything the routes need, kept on ``app.state.svc``."""

    settings: ServiceSettings
    engine: Any
    sessionmaker: sessionmaker
    verifier: KeyVerifier
    metrics: ServiceMetrics
    batcher: MicroBatcher
    writer: GroupWriter  # POSTs' reviews, committed in groups
    broadcaster: FlagBroadcaster
    threshold: float
    threshold_source: str
    model_dir: Path | None
    predictor: Any = None
    model_version: str | None = None
    load_error: str | None = None  # full text for the log; clients get a generic message
    # SQLite has one writer: queue writers here instead of in SQLite's sleeping busy handler.
    write_lock: threading.Lock | None = None
    background: list[asyncio.Task] = field(default_factory=list)

    @property
    def model_ready(self) -> bool:
        return self.predictor is not None


def resolve_threshold(
    settings: ServiceSettings, model_dir: Path | None, predictor: Any
) -> tuple[float, str]:
    """``--threshold`` / REVIEWSENSE_THRESHOLD, else the model folder's, else the default.

    Flags and env are range-checked by ServiceSettings; the model folder's value here.

    Returns:
        (threshold, where it came from: "override" | "model" | "default")
    """
    if settings.threshold is not None:
        return float(settings.threshold), "override"
    ms = None
    if predictor is not None:
        ms = getattr(predictor, "settings", None)
    elif model_dir is not None:
        ms = rundir.read_model_settings(model_dir)
    if ms is not None and ms.threshold is not None:
        if not 0.0 <= float(ms.threshold) <= 1.0:  # flags and env are checked by the settings
            from reviewsense.errors import ModelError

            raise ModelError(
                f"config.json of the model folder: reviewsense.threshold must be between 0 and 1,"
                f" got {ms.threshold}; rerun `reviewsense threshold` or pass --threshold"
            )
        return float(ms.threshold), "model"
    return DEFAULT_THRESHOLD, "default"


def build_state(
    settings: ServiceSettings, *, model_dir: str | Path | None, predictor: Any
) -> ServiceState:
    """Engine, batcher, flag broadcaster and key verifier for one app (nothing started yet).

    Raises:
        ConfigError / ModelError: bad database URL or model folder.
    """
    mdir = rundir.resolve_model_dir(model_dir) if model_dir is not None else None
    threshold, source = resolve_threshold(settings, mdir, predictor)
    engine = make_engine(settings.db_url)
    sm = make_sessionmaker(engine)
    metrics = ServiceMetrics()
    batcher = MicroBatcher(
        None,
        max_batch=settings.batch_max_texts,
        max_wait_ms=settings.batch_wait_ms,
        split=settings.batch_split,
        max_queue=settings.queue_size,
        timeout_s=settings.queue_timeout_s,
        on_batch=metrics.batch_size.observe,
        on_depth=metrics.queue_depth.set,
        on_model_seconds=metrics.inference_seconds.inc,
    )

    def store_group(jobs):  # late-bound: the state is the write target (its model version)
        return ingest.store_group(state, jobs)

    state = ServiceState(
        settings=settings,
        engine=engine,
        sessionmaker=sm,
        verifier=KeyVerifier(sm, cache_s=settings.key_cache_s),
        metrics=metrics,
        batcher=batcher,
        writer=GroupWriter(store_group, on_group=metrics.write_group_size.observe),
        broadcaster=_broadcaster(sm, settings.flag_poll_s),
        threshold=threshold,
        threshold_source=source,
        model_dir=mdir,
        write_lock=threading.Lock() if is_sqlite(engine) else None,
    )
    return state


def _broadcaster(sm: sessionmaker, poll_s: float) -> FlagBroadcaster:
    def _ids_after(after_id: int, holes: list[int]) -> list[int]:
        with sm() as s:
            return crud.flag_ids_after(s, after_id=after_id, holes=holes)

    def _flags(ids: list[int]) -> list[dict]:
        with sm() as s:
            return crud.flags_by_ids(s, ids=ids)

    def _max_id() -> int:
        with sm() as s:
            return crud.max_flag_id(s)

    return FlagBroadcaster(_ids_after, _flags, _max_id, poll_s=poll_s)


# The service's attention kernel: "packed" (``inference.packed``: the micro-batch's real tokens
# in one row, each review attending to itself), not ``predict``'s "auto". The service's
# micro-batches hold ~4 unequal reviews in arrival order (18% of their tokens padding): packed
# skips the padding in every layer, varlen (SDPA per review on its exact length) only in
# attention. The chunked kernel "auto" picks on avx512_bf16 CPUs runs ~5 small multi-threaded
# ops per review and layer; while the HTTP and database work shares the cores, each op's thread
# barrier waits on a preempted thread. Measured (AMD EPYC, 8 clients, SQLite, IMDb reviews,
# alternated): packed 38.0 / 38.8 / 36.4 reviews/s vs varlen 34.8 / 35.0 / 31.2 (paired 1.11x
# median, every pair faster; results/inference/service-packed-amd/); varlen had been 1.08x
# SDPA, and chunked slower than SDPA (BENCHMARKS.md, "Inference attention in the service").
# Models without BERT's layout run varlen.
SERVICE_ATTENTION = "packed"


def load_predictor(model_dir: Path, settings: ServiceSettings) -> Any:
    """The model folder's Predictor with the service's backend, threads and batch size; in a
    child process with ``settings.inference_process``."""
    kwargs = {
        "backend": settings.backend,
        "num_threads": settings.num_threads,
        "batch_size": settings.batch_max_texts,
        "attention": SERVICE_ATTENTION,
    }
    if settings.inference_process:
        from reviewsense.inference.process import ProcessPredictor

        predictor = ProcessPredictor(model_dir, **kwargs)
    else:
        from reviewsense.inference.predictor import Predictor

        predictor = Predictor.from_pretrained(model_dir, **kwargs)
    _suggest_export(predictor, model_dir)
    return predictor


def _suggest_export(predictor: Any, model_dir: Path) -> None:
    """Say so when a CPU serves PyTorch weights: the OpenVINO export served 1.2-1.7x the
    reviews/s of the same PyTorch folder side by side, with AMX and without (docs/SERVICE.md)."""
    from reviewsense.runtime import default_device

    if predictor.backend == "torch" and default_device() == "cpu":
        log.info(
            "PyTorch weights on a CPU: their OpenVINO export (`reviewsense export %s --format "
            "openvino --output DIR`, then give DIR) served 1.2-1.7x the reviews/s (docs/SERVICE.md)",
            model_dir,
        )


def close_predictor(state: ServiceState) -> None:
    """Stop the model's child process, if it has one."""
    close = getattr(state.predictor, "close", None)
    if close is not None:
        close()


def set_predictor(state: ServiceState, predictor: Any) -> None:
    state.predictor = predictor
    state.model_version = str(predictor.model_version)
    state.batcher.predict = predictor.predict


async def load_in_background(state: ServiceState) -> None:
    """Load the model off the event loop; a failure is logged and kept for /readyz."""
    assert state.model_dir is not None
    try:
        predictor = await asyncio.to_thread(load_predictor, state.model_dir, state.settings)
    except Exception as e:  # ModelError or anything torch raises: keep serving health
        state.load_error = f"{type(e).__name__}: {e}"
        log.error("cannot load the model from %s: %s", state.model_dir, state.load_error)
        return
    set_predictor(state, predictor)
    log.info("model %s loaded from %s", state.model_version, state.model_dir)
