"""Live feed of new flags for ``GET /v1/stream`` (Server-Sent Events).

The database is the only source of events: one poller per process reads the flags it has not
delivered yet and fans them out to this process's subscribers. That is what makes
replicas behind a load balancer see each other's flags (a subscriber on replica A gets a flag
committed by replica B within one poll interval) without a message broker. After a local
commit the poller is poked and polls at once, so a flag reaches local subscribers within
milliseconds of its POST returning; other replicas' flags within ``poll_s`` (0.25 s default).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 1000  # events buffered per slow client before it is disconnected
MAX_HOLES = 2000  # unseen ids below the newest one that a poll asks for by id


class Subscriber:
    """One SSE client's queue; ``overflowed`` when it fell too far behind."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        self.overflowed = False


class FlagBroadcaster:
    """Polls the database for new flags and fans them out to subscribers.

    Ids are not committed in id order on PostgreSQL (a transaction that took id 100 can commit
    after the one that took 101), so "id > the last one seen" would lose flags. The poller
    instead asks for the ids above the newest one seen *and* the holes below it: ids between a
    *safe* watermark (the newest id seen at least ``settle_s`` ago) and the newest one that it
    has not seen yet. Each poll so reads only new rows, however many flags the settle window
    holds (re-reading the whole window made every poll cost O(flags/s × settle_s) rows).

    Args:
        fetch_ids_after: ``(after_id, holes) -> list[int]``: flag ids above ``after_id`` or in
            ``holes`` (runs in a thread).
        fetch_flags: ``(ids) -> list[flag dict]`` oldest first (runs in a thread).
        fetch_max_id: ``() -> int``, the newest flag id (runs in a thread).
        poll_s: poll interval (the cross-replica delay).
        settle_s: longest expected time between a flag's insert and its commit.
    """

    def __init__(
        self,
        fetch_ids_after: Callable[[int], list[int]],
        fetch_flags: Callable[[list[int]], list[dict]],
        fetch_max_id: Callable[[], int],
        *,
        poll_s: float = 0.25,
        settle_s: float = 10.0,
    ) -> None:
        self._fetch_ids_after = fetch_ids_after
        self._fetch_flags = fetch_flags
        self._fetch_max_id = fetch_max_id
        self.poll_s = poll_s
        self.settle_s = settle_s
        self.subscribers: set[Subscriber] = set()
        self.safe_id: int | None = None  # every flag id <= this was seen by a poll
        self._delivered: set[int] = set()
        self._history: collections.deque[tuple[float, int]] = collections.deque()
        self._poke: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._poke = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="flag-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """A flag was just committed here: poll now instead of at the next tick."""
        if self._poke is not None:
            self._poke.set()

    def subscribe(self) -> Subscriber:
        sub = Subscriber()
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def backlog(self, after_id: int, limit: int = 500) -> list[dict]:
        """Delivered flags after ``after_id`` (a reconnecting client's Last-Event-ID)."""
        ids = [
            i
            for i in self._fetch_ids_after(after_id, [])
            if i in self._delivered or (self.safe_id is not None and i <= self.safe_id)
        ]
        return self._fetch_flags(ids[:limit]) if ids else []

    async def poll_once(self) -> None:
        """One poll: deliver flags committed since the last one."""
        now = time.monotonic()
        if self.safe_id is None:
            # Start from the present: the dashboard loads older flags with GET /v1/flags.
            self.safe_id = await asyncio.to_thread(self._fetch_max_id)
            self._history.append((now, self.safe_id))
            return
        top = max(self._delivered, default=self.safe_id)  # newest id seen
        if top - self.safe_id - len(self._delivered) <= MAX_HOLES:
            holes = [i for i in range(self.safe_id + 1, top) if i not in self._delivered]
            ids = await asyncio.to_thread(self._fetch_ids_after, top, holes)
        else:  # ids jumped far ahead (a sequence reset): re-read the window instead
            ids = await asyncio.to_thread(self._fetch_ids_after, self.safe_id, [])
        new = sorted(i for i in ids if i not in self._delivered)
        if new and self.subscribers:
            for flag in await asyncio.to_thread(self._fetch_flags, new):
                self._publish(flag)
        self._delivered.update(new)
        self._history.append((now, max(top, *ids) if ids else top))
        # Advance the watermark to what was seen settle_s ago; forget ids below it.
        while len(self._history) > 1 and self._history[1][0] <= now - self.settle_s:
            self._history.popleft()
        if self._history[0][0] <= now - self.settle_s and self._history[0][1] > self.safe_id:
            self.safe_id = self._history[0][1]
            self._delivered = {i for i in self._delivered if i > self.safe_id}

    async def _run(self) -> None:
        assert self._poke is not None
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.warning("flag stream: polling the database failed", exc_info=True)
                await asyncio.sleep(1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.poll_s)
            self._poke.clear()

    def _publish(self, flag: dict) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(flag)
            except asyncio.QueueFull:
                sub.overflowed = True


def format_sse(flag: dict[str, Any]) -> bytes:
    """One SSE ``flag`` event; ``id`` lets a reconnecting client resume (Last-Event-ID)."""
    data = json.dumps(flag, default=_json_default, separators=(",", ":"))
    return f"id: {flag['id']}\nevent: flag\ndata: {data}\n\n".encode()


def _json_default(o: Any) -> Any:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
