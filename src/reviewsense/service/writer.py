"""Group commit: write jobs that arrive while a write runs share the next transaction.

Every ``POST /v1/reviews`` answers only after its reviews are durably committed, and a durable
commit costs an fsync (SQLite ``synchronous=FULL``; PostgreSQL with ``fsync`` on) plus a
transaction's worth of Python. One writer task takes every job that is waiting (up to
``max_group``), runs them in one transaction in a worker thread, and answers each caller with
its own result. An idle service writes a lone job at once (no wait, no added latency); under
load the jobs that piled up during one commit go together in the next. On PostgreSQL too, a
replica so runs one write transaction at a time. Measured on 2 cores, 8 clients, SQLite on
disk: BENCHMARKS.md ("Group commit").

``write_group(jobs)`` returns one result per job, in order: a value, or the exception that
job alone raised (its caller gets it; the other jobs are unaffected). If ``write_group``
itself raises (the commit failed), every job of the group gets that exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)


class WriterStopped(Exception):
    """The service is shutting down; the job was not written."""


class GroupWriter:
    """One writer task; ``await submit(job)`` returns the job's result once it is committed.

    Args:
        write_group: ``(jobs) -> results`` (one per job; an exception instance for a failed
            job), run in a worker thread, one group at a time.
        max_group: most jobs per transaction.
        on_group: called with each group's size (a metric).
    """

    def __init__(
        self,
        write_group: Callable[[Sequence[Any]], list[Any]],
        *,
        max_group: int = 64,
        on_group: Callable[[int], None] | None = None,
    ) -> None:
        if max_group < 1:
            raise ValueError(f"max_group must be at least 1, got {max_group}")
        self.write_group = write_group
        self.max_group = max_group
        self.on_group = on_group
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="group-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue is not None and not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(WriterStopped("the service is shutting down"))

    async def submit(self, job: Any) -> Any:
        """Queue ``job`` and wait until its group is committed; its result or exception."""
        if self._queue is None or self._task is None:
            raise WriterStopped("the writer is not running")
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, fut))
        return await fut

    def _take_group(self, first: tuple[Any, asyncio.Future]) -> list[tuple[Any, asyncio.Future]]:
        assert self._queue is not None
        group = [first]
        while len(group) < self.max_group and not self._queue.empty():
            group.append(self._queue.get_nowait())
        return group

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            group = self._take_group(await self._queue.get())
            if self.on_group is not None:
                self.on_group(len(group))
            jobs = [job for job, _ in group]
            try:
                results = await asyncio.to_thread(self.write_group, jobs)
                if len(results) != len(jobs):
                    raise RuntimeError(f"write_group returned {len(results)} for {len(jobs)}")
            except asyncio.CancelledError:  # stop() during a write: its callers learn it
                for _, fut in group:
                    if not fut.done():
                        fut.set_exception(WriterStopped("the service is shutting down"))
                raise
            except Exception as e:  # the transaction failed: every job of it did
                log.warning("group write of %d job(s) failed: %s", len(jobs), e)
                results = [e] * len(jobs)
            for (_, fut), res in zip(group, results, strict=True):
                if fut.done():  # the caller went away (client disconnected)
                    continue
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
