"""Inference benchmark: transformers pipeline (fp32) vs Predictor torch fp32 / bf16, ONNX fp32 / int8.

One model, one machine, the same IMDb test reviews for every variant. Each variant runs in its
own subprocess so peak RSS is honest. Measures throughput (reviews/s over all reviews),
single-review latency p50/p99, peak RSS, model size on disk, accuracy, and the fraction of the
machine's bf16 matmul peak (measured here) that the throughput reaches in useful FLOPs.

Usage (see BENCHMARKS.md "## inference" for the recorded runs):

    HF_HUB_OFFLINE=1 taskset -c 0,1 .venv/bin/python benchmarks/bench_inference.py \\
        --model runs/demo/model --n 2000 --threads 2 --json runs/bench_inference.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("pipeline", "torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "imdb" / "test.parquet"


def peak_rss_mb() -> float:
    """This process's peak resident memory (MiB).

    ``VmHWM`` rather than ``ru_maxrss``: on Linux the latter survives fork+exec, so every worker
    would report the driver's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB -> MiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def matmul_peak_tflops(threads: int, n: int = 2048, reps: int = 20) -> dict[str, float]:
    """Best-of-3 dense matmul throughput, bf16 and fp32, on ``threads`` threads (TFLOP/s)."""
    import torch

    torch.set_num_threads(threads)
    out = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        for _ in range(3):
            a @ b
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e12)
        out[name] = best
    return out


def model_flops(config: dict, n_tokens: list[int]) -> float:
    """Forward FLOPs for sequences of the given lengths (matmuls only, 2 FLOPs per MAC).

    Per layer and sequence of T tokens: QKV + output projections 4·T·H², feed-forward
    2·T·H·I, attention scores and mix 2·T²·H; times 2 FLOPs per multiply-add.
    """
    h = config.get("hidden_size") or config["dim"]
    inter = config.get("intermediate_size") or config["hidden_dim"]
    layers = config.get("num_hidden_layers") or config["n_layers"]
    per_layer = sum(2 * (4 * t * h * h + 2 * t * h * inter + 2 * t * t * h) for t in n_tokens)
    return float(layers * per_layer)


# ---------------------------------------------------------------------------- worker


def _worker(args: argparse.Namespace) -> None:
    """Run one variant and print its result as JSON (last stdout line)."""
    import numpy as np
    import pandas as pd

    df = pd.read_parquet(args.reviews)
    texts, labels = df["text"].tolist(), df["label"].to_numpy()
    rng = np.random.default_rng(0)
    lat_idx = rng.choice(len(texts), size=min(args.latency_n, len(texts)), replace=False)
    variant = args.worker
    t_load = time.perf_counter()
    if variant == "pipeline":
        import torch
        from transformers import pipeline

        torch.set_num_threads(args.threads)
        from reviewsense.rundir import read_model_settings

        max_length = read_model_settings(args.model_dir).max_length
        pipe = pipeline(
            "text-classification", model=str(args.model_dir), device="cpu", dtype=torch.float32
        )
        kw = {"truncation": True, "max_length": max_length}

        def predict(batch: list[str]) -> np.ndarray:  # P(positive) per text
            out = pipe(batch, **kw)
            return np.array(
                [o["score"] if o["label"] == "positive" else 1 - o["score"] for o in out]
            )

        size_mb = (Path(args.model_dir) / "model.safetensors").stat().st_size / 2**20
        extra = {"batching": "pipeline default (batch_size 1)", "truncation": "head"}
    else:
        from reviewsense.inference import Predictor

        backend, precision = variant.split("-")
        model_dir = args.model_dir if backend == "torch" else args.onnx_dirs[precision]
        kw_p = {"precision": precision} if backend == "torch" else {}
        pred = Predictor.from_pretrained(
            model_dir, backend=backend, num_threads=args.threads, batch_size=args.batch_size, **kw_p
        )

        def predict(batch: list[str]) -> np.ndarray:
            return np.array([p.prob_positive for p in pred.predict(batch)])

        weights = "model.safetensors" if backend == "torch" else "model.onnx"
        size_mb = (Path(pred.model_dir) / weights).stat().st_size / 2**20
        extra = {
            "batching": f"length-sorted, batch_size {args.batch_size}",
            "truncation": pred.settings.truncation,
        }
    load_s = time.perf_counter() - t_load

    predict(texts[:8])  # warm-up (allocators, kernels, ORT arena)
    t = time.perf_counter()
    p_pos = predict(texts)
    total_s = time.perf_counter() - t
    lat = []
    for i in lat_idx:
        t = time.perf_counter()
        predict([texts[i]])
        lat.append((time.perf_counter() - t) * 1e3)
    lat.sort()
    result = {
        "variant": variant,
        "n": len(texts),
        "load_s": load_s,
        "total_s": total_s,
        "reviews_per_s": len(texts) / total_s,
        "latency_ms_p50": statistics.median(lat),
        "latency_ms_p99": lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))],
        "peak_rss_mb": peak_rss_mb(),
        "model_mb": size_mb,
        "accuracy": float(((p_pos >= 0.5).astype(int) == labels).mean()),
        "p_positive": p_pos.tolist(),
        **extra,
    }
    print(json.dumps(result))


# ---------------------------------------------------------------------------- driver


def _run_variant(variant: str, args: argparse.Namespace, reviews: Path, onnx_dirs: dict) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        variant,
        "--model",
        str(args.model),
        "--reviews",
        str(reviews),
        "--threads",
        str(args.threads),
        "--batch-size",
        str(args.batch_size),
        "--latency-n",
        str(args.latency_n),
        "--onnx-json",
        json.dumps({k: str(v) for k, v in onnx_dirs.items()}),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"variant {variant} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="trained model folder or run directory")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="IMDb test.parquet")
    ap.add_argument("--n", type=int, default=2000, help="reviews (random sample, seed 0)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--latency-n", type=int, default=100, help="single-review calls timed")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--work-dir", type=Path, help="where ONNX exports go (default: tmp)")
    ap.add_argument("--json", type=Path, help="write all results here")
    # worker-only
    ap.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--reviews", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--onnx-json", help=argparse.SUPPRESS)
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from reviewsense.rundir import resolve_model_dir

    args.model_dir = resolve_model_dir(args.model)
    if args.worker:
        args.onnx_dirs = json.loads(args.onnx_json or "{}")
        _worker(args)
        return

    import numpy as np
    import pandas as pd

    from reviewsense.inference.export import export_onnx
    from reviewsense.inference.predictor import Predictor

    variants = [v for v in args.variants.split(",") if v]
    df = pd.read_parquet(args.data).sample(n=args.n, random_state=0)[["text", "label"]]
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-inference-"))
    work.mkdir(parents=True, exist_ok=True)
    reviews = work / "reviews.parquet"
    df.reset_index(drop=True).to_parquet(reviews)

    onnx_dirs = {}
    for q in ("fp32", "int8"):
        if f"onnx-{q}" in variants:
            out = work / f"onnx-{q}"
            if not (out / "model.onnx").is_file():
                export_onnx(args.model_dir, out, quantize=q if q == "int8" else None)
            onnx_dirs[q] = out

    peak = matmul_peak_tflops(args.threads)
    # Useful tokens under the model's own truncation (padding excluded) → FLOPs per pass.
    pred = Predictor.from_pretrained(args.model_dir, precision="fp32", num_threads=args.threads)
    seqs, _, _ = pred.encode(df["text"].tolist())
    n_tokens = [len(s) for s in seqs]
    config = json.loads((Path(args.model_dir) / "config.json").read_text())
    flops = model_flops(config, n_tokens)
    del pred

    results = []
    for v in variants:
        r = _run_variant(v, args, reviews, onnx_dirs)
        r["tflops"] = flops / r["total_s"] / 1e12
        r["frac_bf16_peak"] = r["tflops"] / peak["bf16"]
        results.append(r)
        print(f"{v}: {r['reviews_per_s']:.1f} reviews/s", file=sys.stderr)

    base = next((r for r in results if r["variant"] == "pipeline"), None)
    ref = next((r for r in results if r["variant"] == "torch-fp32"), None)
    for r in results:
        r["speedup_vs_pipeline"] = r["reviews_per_s"] / base["reviews_per_s"] if base else None
        if ref:
            a, b = np.array(r["p_positive"]), np.array(ref["p_positive"])
            r["max_abs_dp_vs_torch_fp32"] = float(np.abs(a - b).max())
            r["label_agreement_vs_torch_fp32"] = float(((a >= 0.5) == (b >= 0.5)).mean())
    for r in results:
        del r["p_positive"]

    meta = {
        "model": str(args.model_dir),
        "n": args.n,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "mean_tokens": float(np.mean(n_tokens)),
        "gflop_per_review": flops / len(n_tokens) / 1e9,
        "matmul_peak_tflops": peak,
        "loadavg_end": os.getloadavg(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")

    print(
        f"model {args.model_dir}, {args.n} IMDb test reviews, {args.threads} threads, mean "
        f"{meta['mean_tokens']:.0f} tokens/review ({meta['gflop_per_review']:.2f} GFLOP), "
        f"matmul peak bf16 {peak['bf16']:.3f} / fp32 {peak['fp32']:.3f} TFLOP/s\n"
    )
    print(
        "| variant | reviews/s | × pipeline | p50 ms | p99 ms | peak RSS MB | model MB | "
        "accuracy | max Δp vs fp32 | TFLOP/s | % bf16 peak |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        sp = f"{r['speedup_vs_pipeline']:.1f}" if r["speedup_vs_pipeline"] else "-"
        dp = r.get("max_abs_dp_vs_torch_fp32")
        print(
            f"| {r['variant']} | {r['reviews_per_s']:.1f} | {sp} | {r['latency_ms_p50']:.0f} | "
            f"{r['latency_ms_p99']:.0f} | {r['peak_rss_mb']:.0f} | {r['model_mb']:.0f} | "
            f"{100 * r['accuracy']:.2f} | {'-' if dp is None else f'{dp:.4f}'} | "
            f"{r['tflops']:.3f} | {100 * r['frac_bf16_peak']:.0f} |"
        )


if __name__ == "__main__":
    main()
