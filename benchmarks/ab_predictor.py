"""Two `Predictor` settings on the same reviews, forwards interleaved round by round (paired).

A single `bench_inference.py` run times each variant once, one after the other, so a drift of
the machine's speed during the run (±10% on the 2-core machines) lands on whichever variant
ran then. Here both settings stay loaded in one process and every round times a full pass of
each over the same tokenized reviews, alternating which goes first; the figure is the median
of the per-round ratios.

    python benchmarks/ab_predictor.py --model M --a linear=torch --b linear=auto --rounds 6 --json FILE

``--call-size 4`` scores the reviews in calls of 4 in arrival order, as the service's
micro-batches come (each call pads to its own longest review), instead of one call over all of
them (sorted into batches by length, as ``predict`` does).

``--a`` / ``--b``: ``key=value`` options of ``Predictor.from_pretrained`` (``attention``,
``linear``, ``precision``, ``batch_size``). ``--json`` writes ``{"a", "b", "reviews_per_s":
{"a": [...], "b": [...]}, "ratio_b_over_a": median, "ratio_rounds": [...], "max_dp",
"environment"}``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

OPTIONS = {"attention": str, "linear": str, "precision": str, "batch_size": int}


def _options(spec: str) -> dict:
    """ "linear=torch,attention=sdpa" -> {"linear": "torch", "attention": "sdpa"}."""
    out = {}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        if key not in OPTIONS:
            raise SystemExit(f"unknown option {key!r}; choose from {', '.join(OPTIONS)}")
        try:
            out[key] = OPTIONS[key](value)
        except ValueError:
            raise SystemExit(f"{key}: not an {OPTIONS[key].__name__}: {value!r}") from None
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--model", required=True, help="model folder or run directory")
    ap.add_argument("--a", default="", help="options of setting A, e.g. linear=torch")
    ap.add_argument("--b", default="", help="options of setting B, e.g. linear=auto")
    ap.add_argument("--n", type=int, default=1000, help="IMDb test reviews (seed-0 sample)")
    ap.add_argument("--imdb", type=Path, help="IMDb test.parquet (default: the local IMDb folder)")
    ap.add_argument("--rounds", type=int, default=6, help="timed passes of each setting")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads of both settings")
    ap.add_argument(
        "--call-size",
        type=int,
        default=0,
        help="reviews per call in arrival order, like the service's micro-batches; 0: one call "
        "over all reviews, batched by length as `predict` does",
    )
    ap.add_argument("--json", type=Path, help="write the results here")
    return ap


def check_args(args: argparse.Namespace) -> dict:
    """The two settings' options; a count below 1 or an unknown option is refused in one line."""
    for flag in ("n", "rounds", "threads"):
        if getattr(args, flag) < 1:
            raise SystemExit(f"--{flag} must be at least 1")
    if args.call_size < 0:
        raise SystemExit("--call-size must be 0 (one call) or at least 1")
    return {"a": _options(args.a), "b": _options(args.b)}


def main() -> int:
    args = parser().parse_args()
    settings = check_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    import numpy as np
    from bench_service import imdb_texts  # the same seed-0 sample of the local IMDb test set

    from reviewsense.inference import Predictor
    from reviewsense.jsonio import write_json
    from reviewsense.progress import LogProgress
    from reviewsense.runtime import environment_facts, tune_allocator

    tuned = tune_allocator()  # as `predict` does
    texts = imdb_texts(args.n, args.imdb)
    preds = {
        k: Predictor.from_pretrained(args.model, num_threads=args.threads, **v)
        for k, v in settings.items()
    }
    seqs, _, _ = preds["a"].encode(texts)  # the same token ids for both
    step = args.call_size or len(seqs)

    def score(p) -> np.ndarray:  # [N, 2]
        return np.concatenate([p._forward(seqs[i : i + step]) for i in range(0, len(seqs), step)])

    probs = {k: score(p) for k, p in preds.items()}  # warm-up: every shape once
    speed: dict[str, list[float]] = {"a": [], "b": []}
    progress = LogProgress("paired rounds", args.rounds, "rounds", 0, logging.getLogger("ab"))
    for r in range(args.rounds):
        for k in ("a", "b") if r % 2 == 0 else ("b", "a"):
            t = time.perf_counter()
            score(preds[k])
            speed[k].append(len(seqs) / (time.perf_counter() - t))
        progress.update(r + 1)
    rounds = [b / a for a, b in zip(speed["a"], speed["b"], strict=True)]
    doc = {
        "a": settings["a"],
        "b": settings["b"],
        "reviews_per_s": speed,
        "ratio_b_over_a": statistics.median(rounds),
        "ratio_rounds": rounds,
        "max_dp": float(np.abs(probs["a"] - probs["b"]).max()),
        "allocator_tuned": tuned,
        "environment": environment_facts(threads=args.threads),
    }
    doc["environment"].update(model=str(args.model), n_reviews=args.n, call_size=args.call_size)
    for k in ("a", "b"):
        print(f"{k} {settings[k]}: {statistics.median(speed[k]):.1f} reviews/s {speed[k]}")
    print(f"b / a (median of {args.rounds} paired rounds): {doc['ratio_b_over_a']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
