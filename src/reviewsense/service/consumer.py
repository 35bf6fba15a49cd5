"""Redis Streams feed: review events → the service's ingestion path, exactly once in the DB.

One event = one stream entry with a ``data`` field holding the review as JSON (the body of
``POST /v1/reviews`` for one review) and optionally an ``idempotency_key`` field. The loop:

1. ``XAUTOCLAIM`` entries another consumer of the group left pending for ``claim_idle_s``
   (it died mid-batch), else ``XREADGROUP`` new ones (``>``), up to ``batch_size``;
2. malformed events (no/bad JSON, missing ``text``, text over the limit, invalid field) go to
   the dead-letter stream with the reason;
3. the rest are scored in one model call and stored with ``ingest`` (same code as the HTTP
   route): events whose key (``key:<idempotency_key>`` or ``stream:<stream>:<id>``) is already
   in ``reviews.event_key`` are duplicates and skipped; the unique column makes a lost race
   an IntegrityError, retried, so the DB holds each event once;
4. only after the commit: flags go to the flags stream, and every entry is ``XACK``ed.

A crash between commit and XACK redelivers the batch; it is then found in the DB (duplicates)
and its flags are published again (at-least-once for the flags stream, exactly-once in the DB).
Never imports training code.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from reviewsense.service import crud, ingest
from reviewsense.service.db import make_engine, make_sessionmaker, run_migrations
from reviewsense.service.errors import validation_errors
from reviewsense.service.schemas import ReviewIn

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 200
DEAD_PAYLOAD_CHARS = 2000  # keep dead letters small: enough to see what was wrong


class ConsumerConfig(BaseModel):
    """Options of `reviewsense consume` (validated on creation)."""

    model_config = ConfigDict(extra="forbid")

    redis_url: str
    stream: str = Field(default="reviews", min_length=1)
    group: str = Field(default="reviewsense", min_length=1)
    consumer: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    dead_stream: str = Field(default="reviews-dead", min_length=1)
    flags_stream: str = Field(default="flags", min_length=1)
    batch_size: int = Field(default=32, ge=1, le=10_000)  # entries per XREADGROUP
    block_ms: int = Field(default=500, ge=1)  # how long one XREADGROUP waits for entries
    claim_idle_s: float = Field(default=30.0, gt=0)  # reclaim entries pending this long
    until_idle_s: float | None = Field(default=None, gt=0)  # exit after this long without events
    max_text_chars: int = Field(default=100_000, ge=1)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)  # Prometheus; None = off


@dataclass
class ConsumerStats:
    read: int = 0  # entries received (new or reclaimed)
    stored: int = 0  # reviews committed to the DB
    duplicates: int = 0  # entries already in the DB (redelivered or re-sent)
    dead: int = 0  # malformed entries sent to the dead-letter stream
    acked: int = 0  # entries acknowledged (after the commit)


@dataclass
class _Event:
    entry_id: str
    review: ReviewIn
    event_key: str


class ConsumerMetrics:
    """Prometheus counters of one consumer (served by ``serve_metrics``)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.events = Counter(
            "reviewsense_consumer_events",
            "Stream entries by outcome (stored, duplicate, dead)",
            ["outcome"],
            registry=self.registry,
        )
        self.lag = Histogram(
            "reviewsense_consumer_lag_seconds",
            "From XADD (the entry id's time) to the DB commit",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        from prometheus_client import start_http_server

        start_http_server(port, addr=addr, registry=self.registry)


def parse_entry(stream: str, entry_id: str, fields: dict, max_chars: int) -> _Event | str:
    """One stream entry → an event, or the reason it is malformed (for the dead letter)."""
    raw = fields.get("data")
    if raw is None:
        return "missing field 'data' (the review as a JSON object)"
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as e:
        return f"data: malformed JSON: {getattr(e, 'msg', 'nested too deeply')}"
    if not isinstance(data, dict):
        return f"data: expected a JSON object, got {type(data).__name__}"
    key = fields.get("idempotency_key", data.pop("idempotency_key", None))
    if key is not None and (
        not isinstance(key, str) or not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable()
    ):
        return f"idempotency_key: must be 1-{MAX_IDEMPOTENCY_KEY} printable characters"
    if "text" not in data:
        return "text: missing"
    try:
        review = ReviewIn.model_validate(data)
    except ValidationError as e:
        return validation_errors(list(e.errors()))[0]
    reason = ingest.text_over_limit(review.text, max_chars)
    if reason is not None:
        return f"text: {reason}"
    return _Event(entry_id, review, f"key:{key}" if key else f"stream:{stream}:{entry_id}")


def entry_time_s(entry_id: str) -> float:
    """The XADD time encoded in an auto-generated entry id (``<ms>-<seq>``), in seconds."""
    return int(entry_id.split("-", 1)[0]) / 1000.0


class StreamConsumer:
    """Reads, scores, stores and acknowledges review events; see the module docstring.

    Args:
        config: stream names, batch size, claim and idle times.
        predictor: ``predict(list[str]) -> list[Prediction]`` (the model folder's Predictor).
        db_url: the service's database (migrated on start).
        threshold: the flag threshold (state.resolve_threshold).
        metrics: its Prometheus counters (a new set when None; pass one already served to
            expose them before the consumer exists).
    """

    def __init__(
        self,
        config: ConsumerConfig,
        predictor: Any,
        *,
        db_url: str,
        threshold: float,
        metrics: ConsumerMetrics | None = None,
    ):
        import redis

        self.config = config
        self.predictor = predictor
        self.threshold = threshold
        self.model_version = str(predictor.model_version)
        self.engine = make_engine(db_url)
        self.sessionmaker = make_sessionmaker(self.engine)
        # Across processes SQLite's BEGIN IMMEDIATE serialises writers; no process lock needed.
        self.write_lock = None
        self.redis = redis.Redis.from_url(config.redis_url, decode_responses=True)
        self.stats = ConsumerStats()
        self.metrics = metrics if metrics is not None else ConsumerMetrics()
        self.lags_s: collections.deque[float] = collections.deque(maxlen=100_000)
        self._claim_cursor = "0-0"

    def start(self) -> None:
        """Migrate the DB and create the group (at the stream's start) if it does not exist."""
        import redis

        run_migrations(self.engine)
        try:
            self.redis.xgroup_create(self.config.stream, self.config.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def run(self) -> ConsumerStats:
        """Consume until ``until_idle_s`` without events (forever when None)."""
        self.start()
        last_event = time.monotonic()
        while True:
            entries = self._claim() or self._read()
            if entries:
                try:
                    self.process(entries)
                except OperationalError as e:  # DB down or locked: not acked, so retried
                    log.warning("database unavailable (%s); entries stay pending", e.orig)
                    time.sleep(1.0)
                last_event = time.monotonic()
            elif self.config.until_idle_s is not None:
                if time.monotonic() - last_event >= self.config.until_idle_s:
                    return self.stats

    def close(self) -> None:
        self.redis.close()
        self.engine.dispose()

    def _claim(self) -> list[tuple[str, dict]]:
        c = self.config
        reply = self.redis.xautoclaim(
            c.stream,
            c.group,
            c.consumer,
            min_idle_time=int(c.claim_idle_s * 1000),
            start_id=self._claim_cursor,
            count=c.batch_size,
        )
        self._claim_cursor = reply[0]
        claimed = [(i, f) for i, f in reply[1] if f is not None]
        if claimed:
            log.info("reclaimed %d entries pending longer than %gs", len(claimed), c.claim_idle_s)
        return claimed

    def _read(self) -> list[tuple[str, dict]]:
        c = self.config
        reply = self.redis.xreadgroup(
            c.group, c.consumer, {c.stream: ">"}, count=c.batch_size, block=c.block_ms
        )
        return [entry for _, entries in reply or [] for entry in entries]

    def process(self, entries: list[tuple[str, dict]]) -> None:
        """Dead-letter, score, store (one transaction), publish flags, then XACK all."""
        self.stats.read += len(entries)
        events: list[_Event] = []
        for entry_id, fields in entries:
            parsed = parse_entry(self.config.stream, entry_id, fields, self.config.max_text_chars)
            if isinstance(parsed, str):
                self._dead(entry_id, fields, parsed)
            else:
                events.append(parsed)
        events, predictions = self._predict(events, dict(entries))
        if events:
            new = ingest.to_new_reviews(
                [e.review for e in events], predictions, event_keys=[e.event_key for e in events]
            )
            flags = self._store(new)
            committed = time.time()
            for e in events:
                lag = committed - entry_time_s(e.entry_id)
                self.lags_s.append(lag)
                self.metrics.lag.observe(max(lag, 0.0))
            self._publish_flags(flags)
        ids = [entry_id for entry_id, _ in entries]
        self.stats.acked += int(self.redis.xack(self.config.stream, self.config.group, *ids))

    def _predict(self, events: list[_Event], fields: dict) -> tuple[list[_Event], list[Any]]:
        """Score the batch; if the model raises, text by text, dead-lettering the ones that fail
        (a poison event must not block the stream by crashing every consumer that claims it)."""
        if not events:
            return [], []
        try:
            return events, list(self.predictor.predict([e.review.text for e in events]))
        except Exception:
            if len(events) == 1:
                log.exception("inference failed on event %s", events[0].entry_id)
                self._dead(events[0].entry_id, fields[events[0].entry_id], "inference failed")
                return [], []
        kept: list[_Event] = []
        predictions: list[Any] = []
        for e in events:
            ok, preds = self._predict([e], fields)
            kept += ok
            predictions += preds
        return kept, predictions

    def _store(self, new: list[crud.NewReview], attempts: int = 3) -> list[dict]:
        """Store the events not yet in the DB; returns the flags of the whole batch."""
        keys = [n.event_key for n in new if n.event_key]
        for attempt in range(attempts):
            try:
                with ingest.write_session(self) as session:
                    seen = crud.existing_event_keys(session, keys=keys)
                    fresh, batch_keys = [], set()
                    for n in new:  # the same key twice in one batch: keep the first
                        if n.event_key not in seen and n.event_key not in batch_keys:
                            fresh.append(n)
                            batch_keys.add(n.event_key)
                    ingest.add_reviews(session, self, fresh)
                    session.commit()
                    flags = crud.flags_by_event_keys(session, keys=keys)
                break
            except IntegrityError:  # another consumer committed one of these keys meanwhile
                if attempt == attempts - 1:
                    raise
                log.info("lost an insert race on event keys; retrying the batch")
        self.stats.stored += len(fresh)
        self.stats.duplicates += len(new) - len(fresh)
        self.metrics.events.labels("stored").inc(len(fresh))
        self.metrics.events.labels("duplicate").inc(len(new) - len(fresh))
        return flags

    def _dead(self, entry_id: str, fields: dict, reason: str) -> None:
        payload = json.dumps(fields, ensure_ascii=False)[:DEAD_PAYLOAD_CHARS]
        self.redis.xadd(
            self.config.dead_stream,
            {
                "source_stream": self.config.stream,
                "source_id": entry_id,
                "reason": reason,
                "payload": payload,
            },
        )
        log.warning("dead letter %s: %s", entry_id, reason)
        self.stats.dead += 1
        self.metrics.events.labels("dead").inc()

    def _publish_flags(self, flags: list[dict]) -> None:
        for f in flags:
            fields = {k: "" if v is None else str(v) for k, v in f.items()}
            self.redis.xadd(self.config.flags_stream, fields)


def stats_dict(stats: ConsumerStats) -> dict[str, int]:
    return asdict(stats)
