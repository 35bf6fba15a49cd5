"""Batch-scoring benchmark: `reviewsense score --engine local` vs `--engine ray`, side by side.

Samples ``--n`` IMDb reviews (default 100,000) from train + test + unsupervised (seed 0) into
one Parquet file, then scores it with each engine in its own subprocess (fresh output folder,
same model, blocks, batch size and precision). Measures rows/s over the whole run (model
loading and, for Ray, starting the local runtime included: what a user waits for) and the peak
RSS of the whole process tree (the scorer plus its children: Ray's GCS, raylet and actors),
sampled every 0.2 s; shared pages are counted once per process, so Ray's figure is an upper
bound. The ratio is ray rows/s / local rows/s.

Without ``--model`` the model is all-MiniLM-L6-v2 with a random 2-class head (128 tokens,
head_tail; ``tests/inference/models.py``): right for speed, meaningless for accuracy.

``--json FILE`` writes ``{"n", "block_rows", "batch_size", "runs": [{"engine", "rows",
"errors", "seconds", "rows_per_s", "peak_rss_mb"}], "rows_per_s" (median per engine),
"ratio_ray_vs_local", "environment"}``.

Usage (see BENCHMARKS.md "## batch scoring"):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_score.py --n 2000 \\
        --json runs/bench_score.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "test", "unsupervised")


def sample_reviews(n: int, out: Path) -> Path:
    """``n`` reviews drawn from the three IMDb splits (seed 0) -> one Parquet file."""
    import pandas as pd

    from reviewsense.data.sources import resolve_imdb_dir

    imdb = resolve_imdb_dir()
    if imdb is None:
        raise SystemExit("no local IMDb data: set REVIEWSENSE_IMDB_DIR")
    frames = [pd.read_parquet(imdb / f"{s}.parquet", columns=["text"]) for s in SPLITS]
    pool = pd.concat(frames, ignore_index=True)
    if n > len(pool):
        raise SystemExit(f"--n {n} is more than the {len(pool):,} IMDb reviews available")
    sample = pool.sample(n=n, random_state=0).reset_index(drop=True)
    sample.insert(0, "review_id", range(n))
    sample.to_parquet(out, row_group_size=4096)
    return out


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (MiB)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def run_engine(engine: str, args: argparse.Namespace, data: Path, out: Path) -> dict:
    """Score ``data`` in a subprocess; return its summary plus the tree's peak RSS."""
    cmd = [sys.executable, __file__, "--child", engine, "--model", str(args.model)]
    cmd += ["--data", str(data), "--out", str(out), "--block-rows", str(args.block_rows)]
    cmd += ["--batch-size", str(args.batch_size), "--precision", args.precision]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.actors:
        cmd += ["--actors", str(args.actors)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak, done = [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{engine} run failed (exit {proc.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    return result | {"engine": engine, "peak_rss_mb": round(peak[0], 1)}


def child(args: argparse.Namespace) -> None:
    """One scoring run in this process; prints its summary as the last stdout line."""
    import logging

    from reviewsense.score.run import ScoreConfig, score

    logging.basicConfig(level=logging.WARNING)
    config = ScoreConfig(
        model=str(args.model),
        input=str(args.data),
        output=Path(args.out),
        engine=args.child,
        batch_size=args.batch_size,
        block_rows=args.block_rows,
        actors=args.actors if args.child == "ray" else None,
        threads_per_actor=args.threads,
        precision=args.precision,
    )
    s = score(config)
    summary = {"rows": s.rows, "errors": s.n_errors, "seconds": round(s.seconds, 2)}
    print(json.dumps(summary | {"rows_per_s": round(s.rows_per_s, 1)}))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="IMDb reviews to score")
    p.add_argument("--model", type=Path, help="model folder (default: random-head MiniLM)")
    p.add_argument(
        "--engines", default="local,ray", help="comma-separated, run in this order (may repeat)"
    )
    p.add_argument("--block-rows", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument("--threads", type=int, help="threads per Predictor (default: engine's)")
    p.add_argument("--actors", type=int, help="Ray actors (default: engine's)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        child(args)
        return
    from reviewsense.jsonio import write_json
    from reviewsense.runtime import environment_facts

    with tempfile.TemporaryDirectory(prefix="bench_score_") as tmp:
        tmp = Path(tmp)
        if args.model is None:
            sys.path.insert(0, str(ROOT / "tests"))
            from inference.models import build_minilm

            args.model = build_minilm(tmp / "minilm")
        data = sample_reviews(args.n, tmp / "reviews.parquet")
        runs = []
        for i, engine in enumerate(args.engines.split(",")):
            t0 = time.perf_counter()
            runs.append(run_engine(engine, args, data, tmp / f"out-{i}-{engine}"))
            print(f"{engine}: {json.dumps(runs[-1])} ({time.perf_counter() - t0:.1f} s)")
    # Median per engine: under CPU contention, repeat in alternating order (ray,local,local,ray).
    rate = {
        e: statistics.median(r["rows_per_s"] for r in runs if r["engine"] == e)
        for e in {r["engine"] for r in runs}
    }
    ratio = rate["ray"] / rate["local"] if {"ray", "local"} <= rate.keys() else None
    report = {
        "n": args.n,
        "block_rows": args.block_rows,
        "batch_size": args.batch_size,
        "runs": runs,
        "rows_per_s": rate,
        "ratio_ray_vs_local": None if ratio is None else round(ratio, 3),
        "environment": environment_facts(precision=args.precision, threads=args.threads),
    }
    print(f"ray / local rows/s: {report['ratio_ray_vs_local']}")
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
