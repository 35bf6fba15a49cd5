"""bench_inference's verdicts over rounds (pure functions on recorded results)."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from inference_summary import combine, summary  # noqa: E402


def _r(name: str, rps: float, verified: bool = True) -> dict:
    return {
        "name": name,
        "reviews_per_s": rps,
        "total_s": 1000 / rps,
        "p50_ms": 10.0,
        "p99_ms": 20.0,
        "peak_rss_mb": 100.0,
        "verified": verified and not name.startswith("pipeline"),
        "verify_failures": [] if verified else ["max |dp| too large"],
    }


def test_one_round_is_the_plain_summary():
    results = [_r("pipeline", 30), _r("pipeline-bf16", 75), _r("torch-bf16", 110)]
    variants, head = combine([(results, {"bf16": 1.0, "fp32": 0.5})], flops=55e12)
    plain = summary(results, 55e12, {"bf16": 1.0})
    for key in ("best", "speedup_vs_pipeline", "speedup_vs_pipeline_bf16", "peak_fraction"):
        assert head[key] == pytest.approx(plain[key])
    assert (
        head["rounds"] == 1
        and head["spread"]["speedup_vs_pipeline_bf16"][0] == head["speedup_vs_pipeline_bf16"]
    )
    assert [v["reviews_per_s_rounds"] for v in variants] == [[30], [75], [110]]


def test_ratios_are_taken_inside_each_round_then_the_median():
    """A round where the whole machine ran 20% slower moves no ratio."""
    peak = {"bf16": 1.0, "fp32": 0.5}
    r1 = [_r("pipeline-bf16", 80), _r("torch-bf16", 120)]  # 1.5x
    r2 = [_r("pipeline-bf16", 64), _r("torch-bf16", 96)]  # slow machine, still 1.5x
    r3 = [_r("pipeline-bf16", 70), _r("torch-bf16", 98)]  # 1.4x
    variants, head = combine([(r1, peak), (r2, peak), (r3, peak)], flops=1e14)
    assert head["speedup_vs_pipeline_bf16"] == pytest.approx(1.5)
    assert head["spread"]["speedup_vs_pipeline_bf16"] == pytest.approx([1.4, 1.5])
    assert variants[1]["reviews_per_s"] == 98  # median of 120, 96, 98
    assert head["speedup_vs_pipeline"] is None and head["spread"]["speedup_vs_pipeline"] is None
    assert len(head["rounds_detail"]) == 3


def test_a_variant_must_verify_in_every_round_to_be_best():
    peak = {"bf16": 1.0, "fp32": 0.5}
    r1 = [_r("torch-bf16", 100), _r("onnx-int8", 150)]
    r2 = [_r("torch-bf16", 100), _r("onnx-int8", 150, verified=False)]
    variants, head = combine([(r1, peak), (r2, peak)], flops=1e14)
    assert head["best"] == "torch-bf16"
    assert variants[1]["verified"] is False and variants[1]["verify_failures"]
