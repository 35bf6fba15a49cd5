"""Benchmark `reviewsense consume`: events/s end to end and lag from XADD to the DB commit.

Starts a throwaway redis-server (tests/service/redis_server.py) and runs the real
``StreamConsumer`` (same code as `reviewsense consume`) in this process against a SQLite file:

1. **throughput**: ``--events`` IMDb test reviews are XADDed first (a back-fill), then the
   consumer drains them; events/s = events / (first read → last commit), next to the same
   Predictor's offline rate on the same texts (measured right after, same process);
2. **lag at steady state**: a producer thread XADDs at ``--rate`` events/s (default: half the
   measured throughput) for ``--duration`` seconds while the consumer runs; the lag of each
   event is commit time minus the time in its stream id (set by Redis at XADD).

Model: --model DIR, or all-MiniLM-L6-v2's encoder with a random head (same cost as the
fine-tuned model; see benchmarks/bench_service.py).

Usage:
    .venv/bin/python benchmarks/bench_consumer.py [--model DIR] [--events 400]
        [--duration 20] [--rate R] [--batch-size 32] [--json out.json]

``--json`` writes ``{"events", "events_per_s", "offline_reviews_per_s", "ratio_to_offline", "rate", "lag_events", "lag_p50_ms",
"lag_p99_ms", "lag_mean_ms", "batch_size", "threads", "cpu", "bf16_path", "environment",
"stats"}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "service"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: MiniLM with a random head)")
    p.add_argument("--events", type=int, default=400, help="back-fill size for throughput")
    p.add_argument("--duration", type=float, default=20.0, help="steady-state seconds")
    p.add_argument("--rate", type=float, help="steady-state events/s (default: half the max)")
    p.add_argument("--batch-size", type=int, default=32, help="events per read / model call")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: all cores)")
    p.add_argument("--json", help="write the results here")
    return p.parse_args(argv)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def make_consumer(model: Path, redis_url: str, db_url: str, args, until_idle: float):
    from reviewsense.service.consumer import ConsumerConfig, StreamConsumer
    from reviewsense.service.state import load_predictor, resolve_threshold
    from reviewsense.settings import ServiceSettings

    settings = ServiceSettings(db_url=db_url, num_threads=args.threads)
    predictor = load_predictor(model, settings)
    threshold, _ = resolve_threshold(settings, model, predictor)
    config = ConsumerConfig(
        redis_url=redis_url, batch_size=args.batch_size, block_ms=50, until_idle_s=until_idle
    )
    return StreamConsumer(config, predictor, db_url=db_url, threshold=threshold)


def throughput(consumer, r, texts: list[str], n: int) -> float:
    """Back-fill ``n`` events, drain them; events/s from the first read to the last commit."""
    pipe = r.pipeline()
    for i in range(n):
        pipe.xadd("reviews", {"data": json.dumps({"title_id": "t", "text": texts[i % len(texts)]})})
    pipe.execute()
    consumer.start()
    consumer.predictor.predict(texts[: consumer.config.batch_size])  # warm-up (first call)
    t0 = time.perf_counter()
    consumer.run()
    elapsed = time.perf_counter() - t0 - consumer.config.until_idle_s
    return consumer.stats.stored / elapsed


def offline(consumer, texts: list[str], n: int) -> float:
    """Reviews/s of the same Predictor alone on the same texts (the consumer's ceiling)."""
    b = consumer.config.batch_size
    t0 = time.perf_counter()
    for i in range(0, n, b):
        consumer.predictor.predict(texts[i : min(n, i + b)])
    return n / (time.perf_counter() - t0)


def steady_lag(consumer, r, texts: list[str], rate: float, duration: float) -> list[float]:
    """Produce at ``rate`` for ``duration`` s while consuming; the lags of those events (s)."""
    consumer.lags_s.clear()
    stop = threading.Event()

    def produce() -> None:
        t_next, i = time.perf_counter(), 0
        while not stop.is_set():
            body = {"title_id": "t", "user_id": f"u{i % 100}", "text": texts[i % len(texts)]}
            r.xadd("reviews", {"data": json.dumps(body)})
            i += 1
            t_next += 1.0 / rate
            time.sleep(max(0.0, t_next - time.perf_counter()))

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    timer = threading.Timer(duration, stop.set)
    timer.start()
    consumer.run()  # until_idle: returns once the producer stopped and the stream is drained
    producer.join()
    return list(consumer.lags_s)


def main(argv=None) -> int:
    import redis
    from bench_service import imdb_texts, minilm_random_head
    from redis_server import start_redis

    from reviewsense.runtime import bf16_path, environment_facts

    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-consumer-"))
    model = Path(args.model) if args.model else minilm_random_head(tmp / "model")
    texts = imdb_texts(max(args.events, 500))
    server = start_redis()
    r = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        c = make_consumer(model, server.url, f"sqlite:///{tmp / 'bench.db'}", args, 1.0)
        events_per_s = throughput(c, r, texts, args.events)
        offline_rate = offline(c, texts, args.events)
        print(
            f"throughput: {events_per_s:.1f} events/s ({args.events} events); the Predictor "
            f"alone: {offline_rate:.1f} reviews/s (ratio {events_per_s / offline_rate:.2f})",
            flush=True,
        )
        rate = args.rate or max(1.0, events_per_s / 2)
        lags = steady_lag(c, r, texts, rate, args.duration)
        p50, p99 = percentile(lags, 0.5) * 1000, percentile(lags, 0.99) * 1000
        print(f"steady state at {rate:.1f} events/s: lag p50 {p50:.0f} ms, p99 {p99:.0f} ms")
        out = {
            "events": args.events,
            "events_per_s": events_per_s,
            "offline_reviews_per_s": offline_rate,
            "ratio_to_offline": events_per_s / offline_rate,
            "rate": rate,
            "lag_events": len(lags),
            "lag_p50_ms": p50,
            "lag_p99_ms": p99,
            "lag_mean_ms": statistics.fmean(lags) * 1000,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "bf16_path": bf16_path(),
            "cpu": environment_facts(threads=args.threads)["cpu"],
            "environment": environment_facts(threads=args.threads),
            "stats": {k: getattr(c.stats, k) for k in ("read", "stored", "duplicates", "dead")},
        }
        c.close()
    finally:
        r.close()
        server.stop()
    if args.json:
        from reviewsense.jsonio import write_json

        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
