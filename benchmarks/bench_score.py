"""Batch-scoring benchmark: `reviewsense score --engine local` vs `--engine ray`, side by side.

Samples ``--n`` IMDb reviews (default 100,000) from train + test + unsupervised (seed 0) into
one Parquet file, then scores it with each engine in its own subprocess (fresh output folder,
same model, blocks, batch size and precision). Measures rows/s over the whole run (model
loading and, for Ray, starting the local runtime included: what a user waits for) and the peak
RSS of the whole process tree (the scorer plus its children: Ray's GCS, raylet and actors),
sampled every 0.2 s; shared pages are counted once per process, so Ray's figure is an upper
bound. The ratio is ray rows/s / local rows/s, paired: the i-th run of each engine in
``--engines`` form round i (run back to back), and ``ratio_ray_vs_local`` is the median over
rounds of the per-round ratio (``ratio_rounds``); list both engines equally often, e.g.
``local,ray,ray,local``. Each child logs its progress (blocks, ETA) at INFO.

Without ``--model`` the model is all-MiniLM-L6-v2 with a random 2-class head (128 tokens,
head_tail; ``tests/inference/models.py``): right for speed, meaningless for accuracy.

``--json FILE`` writes ``{"n", "block_rows", "batch_size", "runs": [{"engine", "rows",
"errors", "seconds", "rows_per_s", "precision", "peak_rss_mb"}], "rows_per_s" (median per
engine), "ratio_ray_vs_local", "ratio_rounds", "environment"}`` (``precision``: what ``auto``
resolved to, as the Predictor does; the environment's is the set of them).

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


def resolved_precision(requested: str, model: str) -> str:
    """The precision a torch Predictor runs ``model`` at for ``requested`` (load_runner's rule:
    ``auto`` is bf16 where the CPU/GPU is fast at it, fp32 where the folder's bf16 check
    failed); an exported folder's backend picks its own (named, not resolved here)."""
    from reviewsense import rundir
    from reviewsense.inference.backends import folder_backend
    from reviewsense.runtime import resolve_precision

    model_dir = rundir.resolve_model_dir(model)
    backend = folder_backend(model_dir)
    if backend != "torch":
        return f"{requested} ({backend} backend's choice)"
    precision = resolve_precision(requested)
    check = rundir.read_model_settings(model_dir).bf16_verification
    if requested == "auto" and precision == "bf16" and check and check.get("passed") is False:
        return "fp32"
    return precision


def child(args: argparse.Namespace) -> None:
    """One scoring run in this process; prints its summary as the last stdout line."""
    import logging

    from reviewsense.progress import LogProgress
    from reviewsense.score.run import ScoreConfig, score

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    progress: dict = {"done": 0}

    def on_start(pending: int, _done: int) -> None:
        progress["bar"] = LogProgress(f"score --engine {args.child}", pending, "blocks")

    def on_block(_result) -> None:
        progress["done"] += 1
        progress["bar"].update(progress["done"])

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
    s = score(config, on_block=on_block, on_start=on_start)
    summary = {"rows": s.rows, "errors": s.n_errors, "seconds": round(s.seconds, 2)}
    summary["precision"] = resolved_precision(args.precision, str(args.model))
    print(json.dumps(summary | {"rows_per_s": round(s.rows_per_s, 1)}))


ENGINES = ("local", "ray")


def engines_problem(engines: list[str]) -> str | None:
    """Why ``--engines`` cannot be run and paired (one line), or None."""
    bad = [e for e in engines if e not in ENGINES]
    if bad:
        return f"--engines: unknown engine {bad[0]!r}; use {', '.join(ENGINES)}"
    counts = {e: engines.count(e) for e in ENGINES}
    if all(counts.values()) and counts["local"] != counts["ray"]:
        return (
            f"--engines lists local {counts['local']}x and ray {counts['ray']}x: list both "
            "equally often (run i of each engine forms round i of the paired ratio)"
        )
    return None


def paired_engine_ratio(runs: list[dict]) -> tuple[float | None, list[float]]:
    """(median over rounds of ray rows/s / local rows/s, the per-round ratios): round i pairs
    the i-th run of each engine, which ran back to back; (None, []) without both engines."""
    local = [r["rows_per_s"] for r in runs if r["engine"] == "local"]
    ray = [r["rows_per_s"] for r in runs if r["engine"] == "ray"]
    rounds = [y / x for x, y in zip(local, ray, strict=False) if x > 0]
    return (statistics.median(rounds) if rounds else None), rounds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--n", type=int, default=100_000, help="IMDb reviews to score (rows)")
    p.add_argument(
        "--model", type=Path, help="model folder; unset: all-MiniLM-L6-v2 with a random head"
    )
    p.add_argument(
        "--engines",
        default="local,ray",
        help="comma-separated, run in this order; repeat both equally often for more rounds "
        "(e.g. local,ray,ray,local)",
    )
    p.add_argument(
        "--block-rows", type=int, default=1024, help="rows per Parquet block (one task each)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="reviews per forward pass")
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16"),
        help="model precision; auto: bf16 where the CPU has a fast bf16 path, else fp32 "
        "(the resolved one is recorded)",
    )
    p.add_argument("--threads", type=int, help="threads per Predictor; unset: the engine's choice")
    p.add_argument("--actors", type=int, help="Ray actors; unset: the engine's choice")
    p.add_argument("--json", type=Path, help="write the results here (a JSON file)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return args
    problem = engines_problem(args.engines.split(","))
    if problem is None and args.n < 1:
        problem = f"--n must be at least 1, got {args.n}"
    if problem:
        p.error(problem)
    return args


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
    rate = {
        e: statistics.median(r["rows_per_s"] for r in runs if r["engine"] == e)
        for e in {r["engine"] for r in runs}
    }
    ratio, rounds = paired_engine_ratio(runs)
    precisions = ", ".join(sorted({r["precision"] for r in runs}))
    report = {
        "n": args.n,
        "block_rows": args.block_rows,
        "batch_size": args.batch_size,
        "runs": runs,
        "rows_per_s": rate,
        "ratio_ray_vs_local": None if ratio is None else round(ratio, 3),
        "ratio_rounds": [round(x, 3) for x in rounds],
        "environment": environment_facts(precision=precisions, threads=args.threads),
    }
    print(f"ray / local rows/s (median of {len(rounds)} paired rounds): {ratio}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, report)


if __name__ == "__main__":
    main()
