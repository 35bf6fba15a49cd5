"""Redis Streams consumer against a real redis-server and a real SQLite DB.

Ordering, idempotency, dead letters, flags stream, and SIGKILL of a consumer mid-batch
followed by another consumer's reclaim: every event exactly once in the database.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from sqlalchemy import create_engine, text

from reviewsense.service.consumer import ConsumerConfig, StreamConsumer, parse_entry


def review(i: int, **extra) -> dict:
    body = {"title_id": f"t{i % 3}", "user_id": f"u{i % 4}", "text": f"review number {i}"}
    return {"data": json.dumps({**body, **extra})}


def rows(db_url: str, sql: str) -> list:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).all()
    finally:
        engine.dispose()


def consumer(redis_url, db_url, predictor, **options) -> StreamConsumer:
    config = ConsumerConfig(redis_url=redis_url, until_idle_s=0.3, block_ms=50, **options)
    return StreamConsumer(config, predictor, db_url=db_url, threshold=0.5)


@pytest.fixture()
def r(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def test_parse_entry_gives_the_reason_for_malformed_events():
    assert "missing field 'data'" in parse_entry("s", "1-0", {"text": "x"}, 100)
    assert "malformed JSON" in parse_entry("s", "1-0", {"data": "{nope"}, 100)
    assert "JSON object" in parse_entry("s", "1-0", {"data": "[1]"}, 100)
    assert parse_entry("s", "1-0", {"data": '{"title_id": "t"}'}, 100) == "text: missing"
    assert "over the limit of 5" in parse_entry("s", "1-0", review(1), 5)
    assert "rating" in parse_entry("s", "1-0", review(1, rating=99), 100)
    event = parse_entry("s", "7-1", review(1), 100)
    assert event.event_key == "stream:s:7-1" and event.review.text == "review number 1"
    keyed = parse_entry("s", "7-1", {**review(1), "idempotency_key": "abc"}, 100)
    assert keyed.event_key == "key:abc"


def test_events_are_stored_in_stream_order_with_flags_published(
    r, redis_url, sqlite_url, fixed_predictor
):
    texts = [f"bad {i}" if i % 5 == 0 else f"good {i}" for i in range(23)]
    ids = [r.xadd("reviews", {"data": json.dumps({"title_id": "t", "text": t})}) for t in texts]
    c = consumer(redis_url, sqlite_url, fixed_predictor, batch_size=4)
    try:
        stats = c.run()
    finally:
        c.close()
    assert (stats.read, stats.stored, stats.duplicates, stats.dead, stats.acked) == (
        23,
        23,
        0,
        0,
        23,
    )
    stored = rows(sqlite_url, "SELECT text, event_key FROM reviews ORDER BY id")
    assert [t for t, _ in stored] == texts  # ids ascend in stream order
    assert [k for _, k in stored] == [f"stream:reviews:{i}" for i in ids]
    assert max(fixed_predictor.calls) <= 4
    flags = r.xrange("flags")
    assert [f[1]["event_key"] for f in flags] == [
        f"stream:reviews:{ids[i]}" for i in range(0, 23, 5)
    ]
    assert r.xpending("reviews", "reviewsense")["pending"] == 0


def test_redelivered_and_resent_events_are_stored_once(r, redis_url, sqlite_url, fixed_predictor):
    for i in range(6):
        r.xadd("reviews", review(i))
    r.xadd("reviews", {**review(100), "idempotency_key": "order-100"})
    r.xadd("reviews", {**review(100), "idempotency_key": "order-100"})  # producer re-sent it
    c = consumer(redis_url, sqlite_url, fixed_predictor)
    try:
        first = dataclasses.replace(c.run())  # a snapshot: run() returns the live counters
        # Replay the whole stream to the group (as after a crash between commit and XACK).
        r.xgroup_setid("reviews", "reviewsense", id="0")
        second = c.run()
    finally:
        c.close()
    assert (first.stored, first.duplicates) == (7, 1)
    # Cumulative: the replay read all 8 again and found every one already stored.
    assert (second.read, second.stored, second.duplicates) == (16, 7, 9)
    counts = rows(sqlite_url, "SELECT event_key, count(*) FROM reviews GROUP BY event_key")
    assert len(counts) == 7 and all(n == 1 for _, n in counts)


def test_malformed_events_go_to_the_dead_stream_acked_and_counted(
    r, redis_url, sqlite_url, fixed_predictor
):
    from prometheus_client import generate_latest

    r.xadd("reviews", review(1))
    bad = [
        r.xadd("reviews", {"data": "{not json"}),
        r.xadd("reviews", {"data": json.dumps({"title_id": "t"})}),
        r.xadd("reviews", {"data": json.dumps({"title_id": "t", "text": "x" * 50})}),
        r.xadd("reviews", {"nothing": "here"}),
    ]
    r.xadd("reviews", review(2))
    c = consumer(redis_url, sqlite_url, fixed_predictor, max_text_chars=40)
    try:
        stats = c.run()
        metrics = generate_latest(c.metrics.registry).decode()
    finally:
        c.close()
    assert (stats.stored, stats.dead, stats.acked) == (2, 4, 6)
    dead = r.xrange("reviews-dead")
    assert [d[1]["source_id"] for d in dead] == bad
    reasons = [d[1]["reason"] for d in dead]
    assert "malformed JSON" in reasons[0] and reasons[1] == "text: missing"
    assert "over the limit of 40" in reasons[2] and "data" in reasons[3]
    assert 'reviewsense_consumer_events_total{outcome="dead"} 4.0' in metrics
    assert r.xpending("reviews", "reviewsense")["pending"] == 0


def stored_count(db_url: str) -> int:
    try:
        return rows(db_url, "SELECT count(*) FROM reviews")[0][0]
    except Exception:  # table not created yet (the consumer migrates at start)
        return 0


def start_consumer(model_dir, redis_url, db_url, name, *extra) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", REVIEWSENSE_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "reviewsense", "consume", str(model_dir), "--redis", redis_url]
    cmd += ["--db", db_url, "--consumer", name, "--batch-size", "16", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_mid_batch_then_reclaim_stores_every_event_exactly_once(
    r, redis_url, sqlite_url, tiny_model_dir, tmp_path
):
    n = 1500
    pipe = r.pipeline()
    for i in range(n):
        pipe.xadd("reviews", review(i))
    pipe.execute()
    a = start_consumer(tiny_model_dir, redis_url, sqlite_url, "a")
    procs = [a]
    try:
        # Kill only while "a" holds a batch it has read but not acknowledged.
        deadline = time.monotonic() + 120
        while True:
            assert a.poll() is None and time.monotonic() < deadline, a.stderr.read().decode()
            groups = r.xinfo_groups("reviews")
            pending = groups[0]["pending"] if groups else 0
            if pending and stored_count(sqlite_url) >= 32:
                break
            time.sleep(0.05)
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        left_pending = r.xpending("reviews", "reviewsense")["pending"]
        stats_b, stats_c = tmp_path / "b.json", tmp_path / "c.json"
        # Two consumers share the rest of the work; they reclaim a's pending after 1 s idle.
        extra = ("--claim-idle", "1", "--until-idle", "3")
        b = start_consumer(
            tiny_model_dir, redis_url, sqlite_url, "b", *extra, "--stats-json", str(stats_b)
        )
        c = start_consumer(
            tiny_model_dir, redis_url, sqlite_url, "c", *extra, "--stats-json", str(stats_c)
        )
        procs += [b, c]
        for p in (b, c):  # communicate drains stderr: a full pipe cannot stall the consumer
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err.decode()[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert left_pending > 0  # the kill really happened mid-batch
    sb, sc = json.loads(stats_b.read_text()), json.loads(stats_c.read_text())
    assert sb["read"] > 0 and sc["read"] > 0  # the group shared the work
    counts = rows(sqlite_url, "SELECT event_key, count(*) FROM reviews GROUP BY event_key")
    # enough on failure to tell a lost event from a dead-lettered or still-pending one
    # (this test failed once in a full local run and has not been reproduced since)
    state = (
        f"b {sb}, c {sc}, left pending by a {left_pending}, "
        f"dead letters {r.xlen('reviews-dead') if r.exists('reviews-dead') else 0}, "
        f"pending now {r.xpending('reviews', 'reviewsense')['pending']}"
    )
    assert len(counts) == n, f"{n - len(counts)} events missing; {state}"
    assert max(cnt for _, cnt in counts) == 1, state
    assert r.xpending("reviews", "reviewsense")["pending"] == 0, state


class PoisonPredictor:
    """The real (fixed) predictor, except that it raises on texts containing "poison"."""

    def __init__(self, inner) -> None:
        self.inner, self.model_version = inner, inner.model_version

    def predict(self, texts):
        if any("poison" in t for t in texts):
            raise RuntimeError("model crashed")
        return self.inner.predict(texts)


def test_a_text_the_model_fails_on_is_dead_lettered_alone(
    r, redis_url, sqlite_url, fixed_predictor
):
    r.xadd("reviews", review(1))
    poison = r.xadd("reviews", {"data": json.dumps({"title_id": "t", "text": "poison pill"})})
    r.xadd("reviews", review(2))
    c = consumer(redis_url, sqlite_url, PoisonPredictor(fixed_predictor))
    try:
        stats = c.run()
    finally:
        c.close()
    assert (stats.stored, stats.dead, stats.acked) == (2, 1, 3)
    dead = r.xrange("reviews-dead")
    assert [(d[1]["source_id"], d[1]["reason"]) for d in dead] == [(poison, "inference failed")]
