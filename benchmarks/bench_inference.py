"""Inference benchmark: transformers pipeline (fp32 batch 1; bf16 at --batch-size, default 32)
vs the Predictor's backends (torch fp32 / bf16 / bf16+torch.compile, ONNX fp32 / int8,
OpenVINO fp32 / bf16).

One model, one machine, the same IMDb test reviews, the same threads and a warm-up for every
variant. Each variant runs in its own subprocess so peak RSS is honest, with the allocator setting
``predict`` uses (``runtime.tune_allocator``; ``torch-bf16-glibc`` without it; ``-unfused``
variants keep torch's linear layers instead of ``inference.fused``). Measures throughput
(reviews/s over all reviews), single-review latency p50/p99, peak RSS, accuracy, max |Δp| vs
torch fp32, and the fraction of the machine's bf16 matmul peak (measured in the same run) that
the torch bf16 variant reaches in useful FLOPs.

``--json FILE`` writes ``{"variants": [{"name", "reviews_per_s", "accuracy", "p50_ms",
"p99_ms", "peak_rss_mb", "max_dp", "p99_dp", "mean_dp", "label_agreement", "verified",
"verify_failures", "batch_size"}], "best", "speedup_vs_pipeline", "speedup_vs_pipeline_bf16",
"peak_fraction", "environment", "refused_exports"}`` (``batch_size``: texts per forward, 1 for
the plain pipeline; ``refused_exports``: export name, one of :data:`EXPORTS`, -> why its own
verification refused it; the variants on it are left out, every ``openvino-*`` for
"openvino"). ``best`` is the fastest non-pipeline variant that passes the export verification
limits (``inference.verify``) against torch fp32 on the same reviews and whose accuracy is
within 0.3 pt of torch fp32's. ``--rounds N`` runs
every variant N times in alternating order and adds ``"reviews_per_s_rounds"`` per variant and
``"rounds"``, ``"spread"`` ({key: [min, max]}) and ``"rounds_detail"`` at the top; the
headline values are then medians of the rounds' ratios (``inference_summary.py``).
``--work-dir`` keeps the exports: one there is reused only if its ``export_report.json`` says
it passed and was made from the same model (``source_version``), else it is exported again.

Without ``--model`` the model is all-MiniLM-L6-v2 with a random 2-class head at the demo's
settings (256 tokens, head_tail): right for speed; its accuracy is meaningless, compare
``max_dp`` instead.

Usage (see BENCHMARKS.md "## inference" for the recorded runs):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_inference.py \\
        --model runs/demo/model --n 1000 --threads 2 --json runs/bench_inference.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inference_exports import drop_refused, export_of, prepare_exports
from inference_summary import combine, matmul_peak_tflops, model_flops, print_table, verify

VARIANTS = (
    "pipeline",
    "pipeline-bf16",
    "torch-fp32",
    "torch-bf16",
    "torch-bf16-compile",
    "onnx-fp32",
    "onnx-int8",
    "onnx-int8-static",
    "openvino-fp32",
    "openvino-bf16",
    "torch-bf16-2x1",  # two worker processes x 1 thread, each on half the reviews
    "pipeline-bf16-2x1",  # the tuned pipeline the same way: the like-for-like baseline of -2x1
    "torch-bf16-sdpa",  # PyTorch's SDPA kernel instead of the one "auto" picks
    "torch-bf16-glibc",  # glibc's malloc defaults (REVIEWSENSE_MALLOC=default)
    "torch-bf16-unfused",  # torch's linear layers instead of oneDNN's fused ones
    "torch-fp32-unfused",
)
DEFAULT_VARIANTS = ("pipeline", "pipeline-bf16", "torch-fp32", "torch-bf16", "onnx-fp32")
DEFAULT_VARIANTS += ("onnx-int8", "openvino-fp32", "openvino-bf16")
ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_inference")


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


# ---------------------------------------------------------------------------- worker


def _pipeline(args: argparse.Namespace, bf16: bool):
    """transformers.pipeline as a user runs it: defaults (fp32, batch 1) or tuned (bf16,
    ``--batch-size`` texts per call, default 32: the Predictor variants' batch)."""
    import numpy as np
    import torch
    from transformers import pipeline

    from reviewsense.rundir import read_model_settings

    torch.set_num_threads(args.threads)
    max_length = read_model_settings(args.model_dir).max_length
    dtype = torch.bfloat16 if bf16 else torch.float32
    pipe = pipeline(
        "text-classification", model=str(args.model_dir), device=args.device, dtype=dtype
    )
    kw = {"truncation": True, "max_length": max_length}
    if bf16:
        kw["batch_size"] = args.batch_size

    def predict(batch: list[str]) -> np.ndarray:  # P(positive) per text
        out = pipe(batch, **kw)
        return np.array([o["score"] if o["label"] == "positive" else 1 - o["score"] for o in out])

    return predict


def _predictor(args: argparse.Namespace, variant: str):
    import numpy as np

    from reviewsense.inference import Predictor

    backend, precision = variant.split("-")[:2]
    export = export_of(variant)  # never the PyTorch folder for an ONNX / OpenVINO variant
    model_dir = args.export_dirs[export] if export else args.model_dir
    load_precision = precision if precision != "int8" else "auto"
    pred = Predictor.from_pretrained(
        model_dir,
        backend=backend,
        num_threads=args.threads,
        batch_size=args.batch_size,
        precision=load_precision,
        compile=variant.endswith("-compile"),
        device=args.device if backend == "torch" else None,
        attention="sdpa" if variant.endswith("-sdpa") else "auto",
        linear="torch" if variant.endswith("-unfused") else "auto",
    )

    def predict(batch: list[str]) -> np.ndarray:
        return np.array([p.prob_positive for p in pred.predict(batch)])

    return predict


def _worker(args: argparse.Namespace) -> None:
    """Run one variant and print its result as JSON (last stdout line)."""
    import numpy as np
    import pandas as pd

    from reviewsense.runtime import tune_allocator

    tune_allocator()  # as `predict` does; "-glibc" variants run with REVIEWSENSE_MALLOC=default

    df = pd.read_parquet(args.reviews)
    texts, labels = df["text"].tolist(), df["label"].to_numpy()
    rng = np.random.default_rng(0)
    lat_idx = rng.choice(len(texts), size=min(args.latency_n, len(texts)), replace=False)
    variant = args.worker
    t_load = time.perf_counter()
    if variant.startswith("pipeline"):
        predict = _pipeline(args, bf16=variant == "pipeline-bf16")
    else:
        predict = _predictor(args, variant)
    load_s = time.perf_counter() - t_load
    # Warm-up: a full batch of the longest reviews plus a single one (kernels, arenas, graphs).
    longest = sorted(texts, key=len, reverse=True)[: args.batch_size]
    predict(longest)
    predict(texts[:1])
    if variant.endswith("-compile"):  # compile every shape the timed passes will see, first
        predict(texts)
        for i in lat_idx:
            predict([texts[i]])
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
        "name": variant,
        "batch_size": 1 if variant == "pipeline" else args.batch_size,  # texts per forward
        "reviews_per_s": len(texts) / total_s,
        "accuracy": float(((p_pos >= 0.5).astype(int) == labels).mean()),
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))],
        "peak_rss_mb": peak_rss_mb(),
        "load_s": load_s,
        "total_s": total_s,
        "p_positive": p_pos.tolist(),
    }
    print(json.dumps(result))


# ---------------------------------------------------------------------------- driver


def _run_variant(variant: str, args: argparse.Namespace, reviews: Path, export_dirs: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", variant, "--model", str(args.model_dir)]
    cmd += ["--reviews", str(reviews), "--threads", str(args.threads)]
    cmd += ["--batch-size", str(args.batch_size), "--latency-n", str(args.latency_n)]
    cmd += ["--device", args.device]
    cmd += ["--export-json", json.dumps({k: str(v) for k, v in export_dirs.items()})]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if variant.endswith("-glibc"):
        env["REVIEWSENSE_MALLOC"] = "default"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"variant {variant} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run_two_workers(
    variant: str, args: argparse.Namespace, df, work: Path, export_dirs: dict
) -> dict:
    """``variant`` minus "-2x1" as 2 concurrent processes x 1 thread on the two halves.

    Throughput: all reviews over the longer of the two timed passes (the passes overlap; model
    loading does not count). Latency and RSS: the first worker's.
    """
    import concurrent.futures

    base = variant.removesuffix("-2x1")
    half = (len(df) + 1) // 2
    paths = [work / "reviews-half0.parquet", work / "reviews-half1.parquet"]
    df.iloc[:half].reset_index(drop=True).to_parquet(paths[0])
    df.iloc[half:].reset_index(drop=True).to_parquet(paths[1])
    one = argparse.Namespace(**{**vars(args), "threads": 1})
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futs = [pool.submit(_run_variant, base, one, p, export_dirs) for p in paths]
        a, b = (f.result() for f in futs)
    total_s = max(a["total_s"], b["total_s"])
    n = len(a["p_positive"]) + len(b["p_positive"])
    acc = (a["accuracy"] * len(a["p_positive"]) + b["accuracy"] * len(b["p_positive"])) / n
    return {
        **a,
        "name": variant,
        "reviews_per_s": n / total_s,
        "total_s": total_s,
        "accuracy": acc,
        "p_positive": a["p_positive"] + b["p_positive"],
    }


def _round(k: int, variants, args, df, reviews: Path, work: Path, export_dirs: dict, progress):
    """Round ``k``: every variant once (reversed order when k is odd) and the matmul peak
    after the first; returns (verified results in ``variants`` order, peak). ``progress``: a
    ``LogProgress`` over all rounds' variant runs."""
    by = {}
    for i, v in enumerate(variants if k % 2 == 0 else variants[::-1]):
        if v.endswith("-2x1"):
            r = _run_two_workers(v, args, df, work, export_dirs)
        else:
            r = _run_variant(v, args, reviews, export_dirs)
        by[v] = r
        log.info("round %d/%d: %s: %.1f reviews/s", k + 1, args.rounds, v, r["reviews_per_s"])
        progress.update(k * len(variants) + i + 1)
        if i == 0:  # the matmul peak between variants, under the same load as they run
            peak = matmul_peak_tflops(args.threads, device=args.device)
    results = [by[v] for v in variants]
    verify(results)
    return results, peak


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model folder or run directory (default: MiniLM + random head)")
    ap.add_argument(
        "--data",
        type=Path,
        help="IMDb test.parquet (default: the local IMDb folder's: REVIEWSENSE_IMDB_DIR, else "
        "../shared/data/imdb)",
    )
    ap.add_argument(
        "--n", type=int, default=1000, help="reviews (random sample, seed 0; default %(default)s)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="intra-op threads of every variant and of the matmul peak (default %(default)s)",
    )
    ap.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="texts per forward pass of the Predictor variants and of pipeline-bf16 (the plain "
        "pipeline keeps its default, 1) (default %(default)s)",
    )
    ap.add_argument(
        "--latency-n",
        type=int,
        default=100,
        help="single-review calls timed for p50/p99 (default %(default)s)",
    )
    ap.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from {', '.join(VARIANTS)} (default %(default)s)",
    )
    ap.add_argument(
        "--device",
        default="cpu",
        help="cpu, or cuda for a GPU run (pipeline, torch variants and the matmul peak on it) "
        "(default %(default)s)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every variant N times, alternating the order (inference_summary.py); the "
        "headline is the median of the rounds' ratios (default %(default)s)",
    )
    ap.add_argument(
        "--work-dir",
        type=Path,
        help="where the reviews, the default model and the exports go; a verified export of "
        "the same model found there is reused (default: a new temporary folder)",
    )
    ap.add_argument("--json", type=Path, help="write the results here")
    # worker-only
    ap.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--reviews", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--export-json", help=argparse.SUPPRESS)
    return ap


def check_args(args: argparse.Namespace) -> list[str]:
    """The variants to run (torch-fp32, the max_dp reference, first if not given).

    Raises:
        SystemExit: with a one-line message, for a count below 1 or an unknown variant.
    """
    for flag in ("n", "threads", "batch_size", "latency_n", "rounds"):
        if getattr(args, flag) < 1:
            raise SystemExit(f"--{flag.replace('_', '-')} must be at least 1")
    variants = list(dict.fromkeys(v for v in args.variants.split(",") if v))
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if "torch-fp32" not in variants:
        variants.insert(0, "torch-fp32")  # the reference for max_dp
    return variants


def _token_flops(model_dir: Path, texts: list[str], threads: int) -> tuple[list[int], float]:
    """Useful tokens per model input under the model's own truncation (padding excluded) and
    the FLOPs of one pass over them."""
    from reviewsense.inference.predictor import Predictor

    pred = Predictor.from_pretrained(model_dir, precision="fp32", num_threads=threads)
    n_tokens = [len(s) for s in pred.encode(texts)[0]]
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return n_tokens, model_flops(config, n_tokens)


def main() -> None:  # long: data, exports, variants, JSON and table in one script
    args = parser().parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from reviewsense.data.sources import resolve_imdb_dir
    from reviewsense.rundir import resolve_model_dir

    if args.worker:  # the driver always passes --model
        args.model_dir = resolve_model_dir(args.model)
        args.export_dirs = json.loads(args.export_json or "{}")
        _worker(args)
        return
    variants = check_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.data is None:
        imdb = resolve_imdb_dir()
        if imdb is None:
            raise SystemExit("no local IMDb data: pass --data FILE or set REVIEWSENSE_IMDB_DIR")
        args.data = imdb / "test.parquet"

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-inference-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        from bench_service import minilm_random_head

        if not (work / "model" / "config.json").is_file():
            minilm_random_head(work / "model")
        args.model = work / "model"
    args.model_dir = resolve_model_dir(args.model)

    import numpy as np
    import pandas as pd

    from reviewsense.jsonio import write_json
    from reviewsense.progress import LogProgress
    from reviewsense.runtime import environment_facts

    df = pd.read_parquet(args.data).sample(n=args.n, random_state=0)[["text", "label"]]
    reviews = work / "reviews.parquet"
    df.reset_index(drop=True).to_parquet(reviews)
    refused: dict[str, str] = {}
    export_dirs = prepare_exports(variants, args.model_dir, work, args.threads, refused)
    variants = drop_refused(variants, refused)

    n_tokens, flops = _token_flops(args.model_dir, df["text"].tolist(), args.threads)
    progress = LogProgress("variant runs", args.rounds * len(variants), "runs", 0, log)
    rounds = [
        _round(k, variants, args, df, reviews, work, export_dirs, progress)
        for k in range(args.rounds)
    ]
    results, summary = combine(rounds, flops)
    peak = {key: statistics.median(p[key] for _, p in rounds) for key in ("bf16", "fp32")}
    env = environment_facts(threads=args.threads)
    env.update(
        model=str(args.model_dir),
        n_reviews=args.n,
        batch_size=args.batch_size,
        mean_tokens=float(np.mean(n_tokens)),
        gflop_per_review=flops / len(n_tokens) / 1e9,
        matmul_peak_tflops=peak,
        loadavg_end=os.getloadavg(),
        openvino=_version("openvino"),
        device=args.device,
    )
    keys = ("name", "reviews_per_s", "accuracy", "p50_ms", "p99_ms", "peak_rss_mb", "max_dp")
    keys += ("p99_dp", "mean_dp", "label_agreement", "verified", "verify_failures")
    keys += ("reviews_per_s_rounds", "batch_size")
    doc = {"variants": [{k: r[k] for k in keys} for r in results], **summary, "environment": env}
    doc["refused_exports"] = refused  # export name -> why it failed verification
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, doc)
    print_table(doc, results, flops)


def _version(lib: str) -> str | None:
    try:
        return __import__(lib).__version__
    except ImportError:
        return None


if __name__ == "__main__":
    main()
