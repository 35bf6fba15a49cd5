"""The flag broadcaster: polling, fan-out and flags committed out of id order."""

from __future__ import annotations

import asyncio

from reviewsense.service.events import FlagBroadcaster, format_sse


class FakeFlags:
    """Stands in for the database: a set of committed flag ids."""

    def __init__(self) -> None:
        self.committed: set[int] = set()
        self.rows_read: list[int] = []  # ids returned per query

    def ids_after(self, after_id, holes=()):
        ids = sorted(i for i in self.committed if i > after_id or i in set(holes))
        self.rows_read.append(len(ids))
        return ids

    def flags(self, ids):
        return [{"id": i} for i in sorted(ids)]

    def max_id(self):
        return max(self.committed, default=0)


def test_delivers_each_flag_once_even_when_committed_out_of_order():
    db = FakeFlags()
    db.committed = {1, 2}

    async def main():
        b = FlagBroadcaster(db.ids_after, db.flags, db.max_id, poll_s=10, settle_s=0.05)
        sub = b.subscribe()
        await b.poll_once()  # starts from the present: 1 and 2 are old
        db.committed |= {4}  # id 3 is still in an open transaction
        await b.poll_once()
        await asyncio.sleep(0.06)
        db.committed |= {3}  # ... and commits later
        await b.poll_once()
        await b.poll_once()
        got = []
        while not sub.queue.empty():
            got.append(sub.queue.get_nowait()["id"])
        return got

    assert asyncio.run(main()) == [4, 3]


def test_a_poll_reads_only_new_ids_and_holes_not_the_settle_window():
    """With 400 flags inside the settle window a poll still reads only what is new."""
    db = FakeFlags()

    async def main():
        b = FlagBroadcaster(db.ids_after, db.flags, db.max_id, poll_s=10, settle_s=60)
        sub = b.subscribe()
        await b.poll_once()  # the present: no flags yet
        db.committed |= set(range(1, 401)) - {200}  # 200: an open transaction
        await b.poll_once()
        db.committed |= {200, 401}
        await b.poll_once()
        await b.poll_once()
        got = [sub.queue.get_nowait()["id"] for _ in range(sub.queue.qsize())]
        return got

    got = asyncio.run(main())
    assert sorted(got) == list(range(1, 402)) and len(got) == 401  # each once, none lost
    assert db.rows_read == [399, 2, 0]  # not 400+ rows per poll


def test_poke_makes_the_poller_deliver_at_once():
    db = FakeFlags()

    async def main():
        b = FlagBroadcaster(db.ids_after, db.flags, db.max_id, poll_s=30)
        await b.start()
        sub = b.subscribe()
        await asyncio.sleep(0.05)  # first poll happened
        db.committed.add(1)
        b.poke()
        flag = await asyncio.wait_for(sub.queue.get(), 1.0)
        await b.stop()
        return flag

    assert asyncio.run(main()) == {"id": 1}


def test_sse_format():
    out = format_sse({"id": 7, "text": "a\nb"}).decode()
    assert out.startswith("id: 7\nevent: flag\ndata: ") and out.endswith("\n\n")
    assert out.count("\n") == 4  # newlines inside data are JSON-escaped
