"""Prometheus metrics of the service (one registry per app, so tests can build many apps).

Besides request counts and latency, the metrics watch what the model sees: the share of
negative predictions and of truncated reviews, overall (counters) and over the last 1,000
predictions (gauges). A shift in either is the first sign of drift — new kinds of reviews,
a client sending longer texts — before anyone labels data.
"""

from __future__ import annotations

import collections
import threading
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

RECENT_WINDOW = 1000
# Label values come from these fixed sets only: a client's method or path never becomes a
# label (each new value would be a new time series, unbounded memory in the server).
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"


def route_label(scope: dict) -> str:
    """The matched route's template (``/v1/flags/{flag_id}/resolve``), else "unmatched"."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    # Starlette sets scope['route'] only when one of the app's routes matched (not on a 404).
    return template if isinstance(template, str) and template else UNMATCHED


def method_label(scope: dict) -> str:
    method = scope.get("method", "")
    return method if method in METHODS else "OTHER"


class ServiceMetrics:
    """All metrics of one app instance."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "reviewsense_http_requests",
            "HTTP requests by route template, method and status code",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "reviewsense_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.batch_size = Histogram(
            "reviewsense_inference_batch_size",
            "Texts per model call (micro-batching)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.inference_seconds = Counter(
            "reviewsense_inference_seconds",
            "Wall seconds the model spent on micro-batches (its rate = share of time busy)",
            registry=r,
        )
        self.write_group_size = Histogram(
            "reviewsense_write_group_size",
            "Ingest requests committed per transaction (group commit)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.queue_depth = Gauge(
            "reviewsense_inference_queue_depth", "Texts waiting for inference", registry=r
        )
        self.rejected = Counter(
            "reviewsense_overload_rejections", "Requests refused with 503 (queue full)", registry=r
        )
        self.flags = Counter("reviewsense_flags_raised", "Reviews flagged as negative", registry=r)
        self.predictions = Counter(
            "reviewsense_predictions",
            "Predictions by label and source (ingest stores them, classify does not)",
            ["label", "source"],
            registry=r,
        )
        self.truncated = Counter(
            "reviewsense_truncated_texts",
            "Texts longer than the model's max_length (truncated per the model's settings)",
            ["source"],
            registry=r,
        )
        self.negative_rate = Gauge(
            "reviewsense_negative_rate_recent",
            f"Share of negative predictions among the last {RECENT_WINDOW}",
            registry=r,
        )
        self.truncated_share = Gauge(
            "reviewsense_truncated_share_recent",
            f"Share of truncated texts among the last {RECENT_WINDOW}",
            registry=r,
        )
        self.sse_clients = Gauge(
            "reviewsense_sse_clients", "Open /v1/stream connections", registry=r
        )
        self._recent: collections.deque[tuple[bool, bool]] = collections.deque(maxlen=RECENT_WINDOW)
        self._lock = threading.Lock()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_predictions(self, predictions, *, source: str) -> None:
        """Count labels and truncation and update the recent-window gauges."""
        with self._lock:
            for p in predictions:
                self.predictions.labels(p.label, source).inc()
                if p.truncated:
                    self.truncated.labels(source).inc()
                self._recent.append((p.label == "negative", bool(p.truncated)))
            n = len(self._recent)
            if n:
                self.negative_rate.set(sum(neg for neg, _ in self._recent) / n)
                self.truncated_share.set(sum(tr for _, tr in self._recent) / n)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware (streams pass through untouched, unlike BaseHTTPMiddleware).

    Labels requests by their route *template* (``/v1/flags/{flag_id}/resolve``), so the number
    of time series stays bounded whatever paths clients send.
    """

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def _send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            self.metrics.observe_request(
                route_label(scope), method_label(scope), status, time.perf_counter() - start
            )
