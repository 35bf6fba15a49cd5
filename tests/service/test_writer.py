"""The group writer: jobs waiting during a write share the next one; failures stay per job."""

from __future__ import annotations

import asyncio
import threading

import pytest

from reviewsense.service.writer import GroupWriter, WriterStopped


class Recorder:
    """A write_group that records its groups and can be held mid-write."""

    def __init__(self) -> None:
        self.groups: list[list] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, jobs):
        self.release.wait(5)
        self.groups.append(list(jobs))
        return [ValueError(f"bad {j}") if str(j).startswith("bad") else f"ok {j}" for j in jobs]


def test_jobs_that_arrive_during_a_write_share_the_next_group():
    rec = Recorder()

    async def main():
        w = GroupWriter(rec, max_group=3)
        await w.start()
        rec.release.clear()  # the first write is slow (an fsync)
        first = asyncio.create_task(w.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(w.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        rec.release.set()
        out = await asyncio.gather(first, *rest)
        await w.stop()
        return out

    assert asyncio.run(main()) == [f"ok {i}" for i in range(6)]
    assert rec.groups == [[0], [1, 2, 3], [4, 5]]  # a lone job at once; then max_group each


def test_a_failed_job_fails_alone_and_a_failed_write_fails_its_group():
    rec = Recorder()
    calls = []

    def flaky(jobs):
        calls.append(list(jobs))
        if len(calls) == 2:
            raise OSError("disk full")
        return rec(jobs)

    async def main():
        w = GroupWriter(flaky)
        await w.start()
        ok, bad = await asyncio.gather(w.submit("a"), w.submit("bad"), return_exceptions=True)
        lost = await asyncio.gather(w.submit("b"), w.submit("c"), return_exceptions=True)
        again = await w.submit("d")
        await w.stop()
        return ok, bad, lost, again

    ok, bad, lost, again = asyncio.run(main())
    assert ok == "ok a" and isinstance(bad, ValueError)
    assert [type(e) for e in lost] == [OSError, OSError]  # the commit failed: both jobs did
    assert again == "ok d"  # the writer keeps going


def test_stop_answers_every_waiting_job():
    rec = Recorder()

    async def main():
        w = GroupWriter(rec)
        await w.start()
        rec.release.clear()
        tasks = [asyncio.create_task(w.submit(i)) for i in range(3)]
        await asyncio.sleep(0.05)
        await w.stop()
        rec.release.set()
        out = await asyncio.gather(*tasks, return_exceptions=True)
        with pytest.raises(WriterStopped):
            await w.submit(9)
        return out

    out = asyncio.run(main())
    assert all(isinstance(e, WriterStopped) for e in out)


def test_max_group_is_validated():
    with pytest.raises(ValueError, match="max_group"):
        GroupWriter(Recorder(), max_group=0)
