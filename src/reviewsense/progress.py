"""Progress with an ETA for long loops, as log lines: the same text in a terminal and in a
run's log file (a rich bar would vanish from the log)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def eta_text(seconds: float | None) -> str:
    """``HH:MM:SS`` for a number of seconds, ``-`` when unknown."""
    if seconds is None or seconds < 0:
        return "-"
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


class LogProgress:
    """Logs ``<what> done/total (pct), rate <unit>/s, ETA`` at most every ``every_s`` seconds,
    and always on the first and the last update.

    Usage: ``p = LogProgress("test pass", 25_000, "reviews"); p.update(done)`` after each chunk.
    """

    def __init__(
        self,
        what: str,
        total: int,
        unit: str = "reviews",
        every_s: float = 30.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
        self.log = logger or log
        self.t0 = time.perf_counter()
        self._last: float | None = None

    def update(self, done: int) -> None:
        now = time.perf_counter()
        last = done >= self.total
        if self._last is not None and not last and now - self._last < self.every_s:
            return
        self._last = now
        elapsed = now - self.t0
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        left = (self.total - done) / rate if rate else None
        self.log.info(
            "%s %d/%d (%.0f%%), %s %s/s, %s %s",
            self.what,
            done,
            self.total,
            100 * done / max(self.total, 1),
            f"{rate:,.1f}" if rate else "-",
            self.unit,
            "took" if last else "ETA",
            eta_text(elapsed if last else left),
        )
