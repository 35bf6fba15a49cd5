"""``bench_inference.py``'s verdicts: verification against torch fp32, the --json headline
(best variant, speed-ups, peak fraction) and, with ``--rounds N``, their medians over rounds;
also the model FLOPs and matmul peak behind ``peak_fraction``, and the printed table.

Why rounds: each variant runs once per round, one after the other, and these machines' speed
drifts by ±10% within minutes, so one pass can rank two close variants either way (a fused
variant once came out 1% slower than unfused; paired, it is 1.12x faster). Round k runs the
variants in order when k is even and in reverse when odd (ABBA), so a steady drift cancels in
pairs; every ratio is taken inside one round and the headline is the median of the rounds'
ratios, with their min..max in ``spread``.
"""

from __future__ import annotations

import statistics
import time

ACCURACY_SLACK = 0.003  # issue #13: a faster variant's accuracy within 0.3 pt of torch fp32
HEADLINE = (
    "speedup_vs_pipeline",
    "speedup_vs_pipeline_bf16",
    "peak_fraction",
    "speedup_2x1_vs_pipeline_bf16_2x1",
)


def verify(results: list[dict]) -> None:
    """Add |Δp| vs torch fp32, label agreement and ``verified`` to every variant.

    Verified = within the export limits of its precision (``inference.verify.TOLERANCES``,
    label agreement ≥ ``MIN_AGREEMENT``) on the same reviews *and* accuracy within
    :data:`ACCURACY_SLACK` of torch fp32. Pipelines truncate differently (head only), so
    their Δp is recorded but they are never candidates for ``best``.
    """
    import numpy as np

    from reviewsense.inference.verify import MIN_AGREEMENT, TOLERANCES, compare

    ref = next(r for r in results if r["name"] == "torch-fp32")
    ref_p = np.array(ref["p_positive"])  # P(positive) per review, (n,)
    for r in results:
        parts = r["name"].split("-")  # "onnx-int8-static" -> int8; "pipeline" -> fp32
        tol = TOLERANCES.get(parts[1] if len(parts) > 1 else "fp32", TOLERANCES["bf16"])
        m, failures = compare(ref_p, np.array(r["p_positive"]), tol, MIN_AGREEMENT)
        if abs(r["accuracy"] - ref["accuracy"]) > ACCURACY_SLACK:
            failures.append(f"accuracy {r['accuracy']:.4f} vs fp32 {ref['accuracy']:.4f}")
        r.update(
            max_dp=m["max_abs_diff"],
            p99_dp=m["p99_abs_diff"],
            mean_dp=m["mean_abs_diff"],
            label_agreement=m["label_agreement"],
            verified=not r["name"].startswith("pipeline") and not failures,
            verify_failures=failures,
        )


def summary(results: list[dict], flops: float, peak: dict, best: str | None = None) -> dict:
    """The --json contract's top level (best, speed-ups, peak_fraction) for one round.

    ``best``: the variant the speed-ups are for; default the fastest verified one.
    """
    by = {r["name"]: r for r in results}
    if best is None:
        candidates = [r for r in results if r["verified"]]
        best = max(candidates, key=lambda r: r["reviews_per_s"])["name"] if candidates else None

    def ratio(base: str) -> float | None:
        if best is None or base not in by:
            return None
        return by[best]["reviews_per_s"] / by[base]["reviews_per_s"]

    frac = None
    if "torch-bf16" in by:
        frac = flops / by["torch-bf16"]["total_s"] / 1e12 / peak["bf16"]
    two = [by[n] for n in ("torch-bf16-2x1", "pipeline-bf16-2x1") if n in by]
    return {
        "best": best,
        "speedup_vs_pipeline": ratio("pipeline"),
        "speedup_vs_pipeline_bf16": ratio("pipeline-bf16"),
        "peak_fraction": frac,
        # Both in 2 processes x 1 thread: the like-for-like ratio when "best" is a -2x1 variant.
        "speedup_2x1_vs_pipeline_bf16_2x1": (
            two[0]["reviews_per_s"] / two[1]["reviews_per_s"] if len(two) == 2 else None
        ),
    }


def _median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def combine(rounds: list[tuple[list[dict], dict]], flops: float) -> tuple[list[dict], dict]:
    """Variants and headline over rounds of ``(verified results, matmul peak)``.

    Per variant: the median reviews/s, time, p50 and p99 over the rounds (``reviews_per_s_rounds``
    lists them all), the largest peak RSS, verified only if verified in every round (Δp from the
    first round). Headline: ``best`` = the fastest verified variant by median; each key of
    :data:`HEADLINE` = the median of its per-round values for that ``best``; ``spread`` = their
    min..max; ``rounds_detail`` = each round's headline and matmul peak.
    """
    variants = []
    for i in range(len(rounds[0][0])):
        runs = [results[i] for results, _ in rounds]  # variant i in every round
        v = dict(runs[0])
        for key in ("reviews_per_s", "total_s", "p50_ms", "p99_ms"):
            v[key] = _median([r[key] for r in runs])
        v["reviews_per_s_rounds"] = [r["reviews_per_s"] for r in runs]
        v["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        v["verified"] = all(r["verified"] for r in runs)
        v["verify_failures"] = sorted({f for r in runs for f in r["verify_failures"]})
        variants.append(v)
    best = summary(variants, flops, rounds[0][1])["best"]
    per_round = [summary(results, flops, peak, best) | {"peak": peak} for results, peak in rounds]
    head = {"best": best}
    spread = {}
    for key in HEADLINE:
        values = [s[key] for s in per_round if s[key] is not None]
        head[key] = _median(values)
        spread[key] = [min(values), max(values)] if values else None
    head["spread"] = spread
    head["rounds"] = len(rounds)
    head["rounds_detail"] = per_round
    return variants, head


# ---------------------------------------------------------------------- FLOPs and peak


def matmul_peak_tflops(
    threads: int, n: int = 2048, reps: int = 5, device: str = "cpu"
) -> dict[str, float]:
    """Best-of-3 dense matmul throughput, bf16 and fp32, on ``threads`` threads (TFLOP/s).

    On a GPU the matrices are 8192² (2048² cannot fill one) and each timing waits for the device.
    """
    import torch

    torch.set_num_threads(threads)
    gpu = device.startswith("cuda")
    n = 8192 if gpu else n
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    out = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        for _ in range(3):
            a @ b
        sync()
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(reps):
                a @ b
            sync()
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


# ---------------------------------------------------------------------------- table


def _fmt(x: float | None, scale: float = 1.0, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x * scale, spec)


def print_table(doc: dict, results: list[dict], flops: float) -> None:
    """The headline line and the Markdown table of every variant, on stdout."""
    env, peak = doc["environment"], doc["environment"]["matmul_peak_tflops"]
    print(
        f"model {env['model']}, {env['n_reviews']} IMDb test reviews, {env['threads']} threads, "
        f"{env['cpu']} ({env['bf16_path']}), mean {env['mean_tokens']:.0f} tokens/review, "
        f"matmul peak bf16 {peak['bf16']:.3f} / fp32 {peak['fp32']:.3f} TFLOP/s; best "
        f"{doc['best']}: {_fmt(doc['speedup_vs_pipeline'])}x pipeline, "
        f"{_fmt(doc['speedup_vs_pipeline_bf16'])}x pipeline-bf16; torch-bf16 at "
        f"{_fmt(doc['peak_fraction'], 100, '.0f')}% of the bf16 peak\n"
    )
    print(
        "| variant | reviews/s | p50 ms | p99 ms | peak RSS MB | accuracy | max Δp | p99 Δp "
        "| agreement | verified | TFLOP/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in results:
        print(
            f"| {r['name']} | {r['reviews_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
            f"{r['peak_rss_mb']:.0f} | {r['accuracy']:.4f} | {r['max_dp']:.4f} | "
            f"{r['p99_dp']:.4f} | {r['label_agreement']:.3f} | {'yes' if r['verified'] else 'no'} | "
            f"{flops / r['total_s'] / 1e12:.3f} |"
        )
