"""Argument checks and ratios of bench_demo, bench_score, bench_pretrain, bench_analyze and
profile_train_step (pure functions; nothing is benchmarked)."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_analyze  # noqa: E402
import bench_demo  # noqa: E402
import bench_pretrain  # noqa: E402
import bench_score  # noqa: E402
import profile_train_step  # noqa: E402


def _err(fn, argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        fn(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


# -- bench_demo ---------------------------------------------------------------------------------
def _demo(rev, code, wall):
    return {"rev": rev, "exit_code": code, "wall_s": wall}


def test_demo_speedup_needs_both_runs_to_succeed():
    ratio, note = bench_demo.speedup(_demo("761ebc5", 0, 2000.0), _demo("HEAD", 2, 100.0))
    assert ratio is None and "HEAD exited 2" in note
    ratio, _ = bench_demo.speedup(_demo("761ebc5", 0, 2000.0), _demo("HEAD", 0, 1000.0))
    assert ratio == pytest.approx(2.0)


def test_demo_waiting_line_has_an_eta_from_the_run_before():
    assert "ETA" not in bench_demo.waiting_line("761ebc5", "demo", 60.0, None)
    line = bench_demo.waiting_line("HEAD", "demo", 600.0, 2100.0)
    assert "00:10:00" in line and "ETA 00:25:00" in line


def test_demo_last_line_of_the_log(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("a\n" * 5000 + "test pass 10/25 (40%)\n\n")
    assert bench_demo._last_line(log) == "test pass 10/25 (40%)"


# -- bench_score --------------------------------------------------------------------------------
def test_score_engines_must_pair(capsys):
    assert "equally often" in _err(bench_score.parse_args, ["--engines", "local,ray,ray"], capsys)
    assert "'spark'" in _err(bench_score.parse_args, ["--engines", "local,spark"], capsys)
    assert "--n" in _err(bench_score.parse_args, ["--n", "0"], capsys)
    assert bench_score.parse_args(["--engines", "local"]).engines == "local"


def test_score_ratio_is_the_median_of_paired_rounds():
    runs = [
        {"engine": e, "rows_per_s": r}
        for e, r in [("local", 100), ("ray", 150), ("ray", 40), ("local", 50)]
        + [("local", 200), ("ray", 100)]
    ]
    ratio, rounds = bench_score.paired_engine_ratio(runs)
    assert rounds == pytest.approx([1.5, 0.8, 0.5])
    assert ratio == pytest.approx(0.8)  # the ratio of the engines' medians would be 1.0
    assert bench_score.paired_engine_ratio(runs[:1]) == (None, [])


def test_score_records_the_resolved_precision(tmp_path, monkeypatch):
    import reviewsense.runtime as runtime

    check = {"reviewsense": {"bf16_verification": {"passed": False, "failures": ["x"]}}}
    (tmp_path / "config.json").write_text(json.dumps(check))
    monkeypatch.setattr(
        runtime, "resolve_precision", lambda p, d=None: "bf16" if p == "auto" else p
    )
    assert bench_score.resolved_precision("auto", str(tmp_path)) == "fp32"  # check failed
    assert bench_score.resolved_precision("bf16", str(tmp_path)) == "bf16"
    (tmp_path / "config.json").write_text("{}")
    assert bench_score.resolved_precision("auto", str(tmp_path)) == "bf16"


# -- bench_pretrain -----------------------------------------------------------------------------
def test_pretrain_refuses_too_few_windows():
    problem = bench_pretrain.windows_problem(100, 50, 256, 32, 6)
    assert problem is not None
    for flag in ("--sample", "--rounds", "--batch-size", "224"):
        assert flag in problem
    assert bench_pretrain.windows_problem(224, 50, 256, 32, 6) is None


def test_pretrain_refuses_bad_counts(capsys):
    assert "--rounds" in _err(bench_pretrain.parse_args, ["--rounds", "0"], capsys)


# -- bench_analyze ------------------------------------------------------------------------------
def test_analyze_min_entries_is_the_real_minimum():
    state = bench_analyze.synthetic_state(bench_analyze.MIN_ENTRIES)
    assert len(state["log_history"]) == bench_analyze.MIN_ENTRIES
    with pytest.raises(IndexError):
        bench_analyze.synthetic_state(bench_analyze.MIN_ENTRIES - 1)


def test_analyze_refuses_too_few_entries(capsys):
    assert "--entries must be at least 502" in _err(
        bench_analyze.parse_args, ["--entries", "10"], capsys
    )
    assert "--repeat" in _err(bench_analyze.parse_args, ["--repeat", "0"], capsys)


# -- profile_train_step -------------------------------------------------------------------------
def test_profile_defaults_are_trains():
    from reviewsense.config import TRAINING_ATTENTION_DROPOUT, TrainConfig

    args = profile_train_step.parse_args([])
    assert args.attention_dropout == TRAINING_ATTENTION_DROPOUT == TrainConfig().attention_dropout
    assert args.attention_kernel == TrainConfig().attention_kernel
    assert args.dropout_kernel == TrainConfig().dropout_kernel
    assert profile_train_step.parse_args(["--attention-dropout", "null"]).attention_dropout is None


def test_profile_refuses_bad_dropout(capsys):
    assert "--attention-dropout" in _err(
        profile_train_step.parse_args, ["--attention-dropout", "1.5"], capsys
    )
