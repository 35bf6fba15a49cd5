"""Micro-batching: shared batches, limits, overload and failure isolation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from reviewsense.service.batcher import InferenceFailed, MicroBatcher, NotReady, Overloaded


class Echo:
    """Predicts len(text) for each text; records batch sizes; optional delay and bad text."""

    def __init__(self, delay: float = 0.0, bad: str | None = None) -> None:
        self.delay, self.bad = delay, bad
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, texts):
        self.batches.append(len(texts))
        self.threads.add(threading.current_thread().name)
        if self.bad is not None and self.bad in texts:
            raise ValueError("bad text")
        time.sleep(self.delay)
        return [len(t) for t in texts]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_batches_and_keep_order():
    echo = Echo(delay=0.02)

    async def main():
        b = MicroBatcher(echo, max_batch=16, max_wait_ms=20)
        await b.start()
        try:
            results = await asyncio.gather(*(b.submit(["x" * i, "yy"]) for i in range(1, 9)))
        finally:
            await b.stop()
        return results

    results = run(main())
    assert results == [[i, 2] for i in range(1, 9)]
    assert max(echo.batches) > 2  # requests were combined
    assert all(n <= 16 for n in echo.batches)
    assert echo.threads == {next(iter(echo.threads))} and "inference" in next(iter(echo.threads))


def test_batches_never_exceed_max_batch():
    echo = Echo()

    async def main():
        b = MicroBatcher(echo, max_batch=4, max_wait_ms=5)
        await b.start()
        try:
            return await b.submit([str(i) for i in range(10)])
        finally:
            await b.stop()

    assert run(main()) == [1] * 10
    assert max(echo.batches) <= 4 and sum(echo.batches) == 10


def test_full_queue_is_refused_at_once():
    echo = Echo(delay=0.2)

    async def main():
        b = MicroBatcher(echo, max_batch=1, max_wait_ms=0, max_queue=2)
        await b.start()
        try:
            first = asyncio.create_task(b.submit(["a", "b"]))
            await asyncio.sleep(0.01)
            with pytest.raises(Overloaded) as e:
                await b.submit(["c", "d"])
            assert e.value.retry_after >= 1
            # Refused, not queued: the first request is still in progress and "c"/"d" never
            # reach the model.
            assert not first.done()
            assert await first == [1, 1]
            assert sum(echo.batches) == 2
        finally:
            await b.stop()

    run(main())


def test_slow_inference_times_out_as_overloaded():
    async def main():
        b = MicroBatcher(Echo(delay=0.5), max_batch=1, timeout_s=0.1)
        await b.start()
        try:
            with pytest.raises(Overloaded):
                await b.submit(["a"])
        finally:
            await b.stop()

    run(main())


def test_a_failing_text_fails_alone():
    async def main():
        b = MicroBatcher(Echo(bad="boom"), max_batch=8, max_wait_ms=20)
        await b.start()
        try:
            good = asyncio.create_task(b.submit(["fine"]))
            with pytest.raises(InferenceFailed):
                await b.submit(["boom"])
            assert await good == [4]
        finally:
            await b.stop()

    run(main())


def test_not_ready_without_a_model():
    async def main():
        b = MicroBatcher(None)
        await b.start()
        try:
            with pytest.raises(NotReady):
                await b.submit(["a"])
        finally:
            await b.stop()

    run(main())


def test_an_idle_batcher_runs_a_lone_text_without_waiting_for_company():
    echo = Echo()

    async def main():
        # A fixed wait would hold this text for 60 s; the adaptive one sees no load and runs it.
        b = MicroBatcher(echo, max_batch=32, max_wait_ms=60_000)
        await b.start()
        try:
            first = await asyncio.wait_for(b.submit(["alone"]), 30)
            await asyncio.sleep(0.05)
            second = await asyncio.wait_for(b.submit(["later"]), 30)
            return first, second
        finally:
            await b.stop()

    assert run(main()) == ([5], [5])
    assert echo.batches == [1, 1]


async def single_texts_together(predict, n: int, **batcher_args) -> list:
    """``n`` single-text requests ("0", "1", ...) arriving together at a fresh batcher."""
    b = MicroBatcher(predict, **batcher_args)
    await b.start()
    try:
        return await asyncio.gather(*(b.submit([str(i)]) for i in range(n)))
    finally:
        await b.stop()


def test_under_load_batches_fill_up_to_max_batch():
    echo = Echo(delay=0.05)
    # 40 single-text requests arriving together: the model sees full batches.
    results = run(single_texts_together(echo, 40, max_batch=8, max_wait_ms=1000, split=False))
    assert results == [[len(str(i))] for i in range(40)]
    assert echo.batches == [8] * 5


def test_split_leaves_half_the_queue_for_the_next_call():
    echo = Echo(delay=0.05)
    # 8 clients' single-text requests arriving together
    results = run(single_texts_together(echo, 8, max_batch=32, max_wait_ms=1000, split=True))
    assert results == [[1]] * 8
    assert echo.batches == [4, 4]  # the model has the second half while the first is answered
    echo.batches.clear()
    results = run(single_texts_together(echo, 8, max_batch=32, max_wait_ms=1000, split=False))
    assert results == [[1]] * 8
    assert echo.batches == [8]


def test_split_never_goes_below_split_min_nor_above_max_batch():
    echo = Echo(delay=0.02)
    results = run(single_texts_together(echo, 40, max_batch=8, max_wait_ms=1000))
    assert results == [[len(str(i))] for i in range(40)]
    assert echo.batches == [8, 8, 8, 8, 4, 4]  # 8 waiting: 4 + 4; never 2 or 1 while 4 wait
