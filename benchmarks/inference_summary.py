"""``bench_inference.py``'s verdicts: verification against torch fp32, the --json headline
(best variant, speed-ups, peak fraction) and, with ``--rounds N``, their medians over rounds.

Why rounds: each variant runs once per round, one after the other, and these machines' speed
drifts by ±10% within minutes, so one pass can rank two close variants either way (a fused
variant once came out 1% slower than unfused; paired, it is 1.12x faster). Round k runs the
variants in order when k is even and in reverse when odd (ABBA), so a steady drift cancels in
pairs; every ratio is taken inside one round and the headline is the median of the rounds'
ratios, with their min..max in ``spread``.
"""

from __future__ import annotations

import statistics

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
