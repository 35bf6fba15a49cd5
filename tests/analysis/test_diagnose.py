"""The diagnosis must be right: spikes, overfitting verdicts, schedule shapes, lowest loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewsense.analysis.diagnose import diagnose
from reviewsense.analysis.overfitting import series_verdict
from reviewsense.analysis.trainer_state import load_trainer_state

from .logs import run, synthetic

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "trainer_states"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures not present")


def analyse_fixture(prefix: str) -> dict:
    summary = diagnose(load_trainer_state(next(FIXTURES.glob(f"{prefix}_*.json"))))
    json.dumps(summary, allow_nan=False)  # strict JSON, no NaN leaking out
    return summary


def kinds(summary: dict) -> set[str]:
    return {f["kind"] for f in summary["findings"]}


# ------------------------------------------------------------------ real fixtures


@needs_fixtures
def test_02_bump_that_recovers_is_not_overfitting():
    s = analyse_fixture("02")
    assert [r["eval_loss"] for r in s["eval"]] == pytest.approx([0.3951, 0.4155, 0.3892], abs=1e-4)
    assert s["overfitting"] is False
    assert s["recommended_epochs"] == 3
    assert s["lr_schedule"]["shape"] == "linear" and s["lr_schedule"]["warmup_steps"] == 0
    assert s["lowest_loss"] == {"step": 320, "epoch": 2.56, "value": 0.2937}
    assert s["final_loss"]["step"] == 360
    assert s["spikes"] == []


@needs_fixtures
def test_03_last_epoch_uptick_with_f1_improving_is_not_overfitting():
    s = analyse_fixture("03")
    assert s["overfitting"] is False
    assert s["selection_metric"] == "f1_macro"  # recognised from best_metric
    msg = next(f["message"] for f in s["findings"] if f["kind"] == "no_overfitting")
    assert "within the band" in msg and "f1_macro" in msg
    assert s["overfitting_detail"]["metric_source"] == "metric_for_best_model"
    # lowest eval loss is at epoch 2: named, but the user's metric wins
    assert s["recommended_checkpoint_by_loss"] == "checkpoint-1630"
    assert "class_imbalance" in kinds(s)  # accuracy 0.918 vs macro-F1 0.653
    assert s["recommended_epochs"] == 3 and s["recommended_checkpoint"].endswith("checkpoint-2445")
    assert s["lr_schedule"]["shape"] == "linear" and s["lr_schedule"]["warmup_steps"] == 250


@needs_fixtures
def test_05_severe_overfitting_from_epoch_5():
    s = analyse_fixture("05")
    assert s["overfitting"] is True
    assert s["overfitting_start_epoch"] == 5
    d = s["overfitting_detail"]
    assert d["by_loss"] is True and d["metric"] == "accuracy" and d["metric_source"] == "inferred"
    # accuracy plateaus at ~0.82 (last within the noise band of its 0.83 peak): not by metric
    assert d["by_metric"] is False
    assert s["recommended_checkpoint"] == "checkpoint-1666"  # best accuracy, epoch 17
    assert s["recommended_checkpoint_by_loss"] == "checkpoint-490"
    ev = next(f for f in s["findings"] if f["kind"] == "overfitting")["evidence"]["by_loss"]
    assert ev["best"]["value"] == pytest.approx(0.8195, abs=1e-4)
    assert ev["last"]["value"] == pytest.approx(1.2864, abs=1e-4)
    assert ev["train_loss_fell_after_best"] is True
    assert "metric_loss_disagree" in kinds(s)
    assert "incomplete_run" in kinds(s)  # step 4500 of 9800


@needs_fixtures
def test_06_grad_norm_spikes_and_best_checkpoint():
    s = analyse_fixture("06")
    by_step = {sp["step"]: sp for sp in s["spikes"]}
    assert by_step[3500]["value"] == pytest.approx(108.5, abs=0.1)
    assert by_step[3500]["ratio_to_median"] > 1000
    assert s["grad_norm"]["max"] == {"step": 3500, "value": pytest.approx(108.547, abs=1e-3)}
    assert len(s["spikes"]) >= 40
    assert all(sp["ratio_to_median"] >= 3 for sp in s["spikes"])
    assert s["lr_schedule"]["shape"] == "linear" and s["lr_schedule"]["warmup_steps"] == 510
    # eval loss best at epoch 3 (0.157), never back below it while train loss -> ~0
    assert s["overfitting"] is True and s["overfitting_start_epoch"] == 3
    assert s["recommended_checkpoint"] == "./results\\checkpoint-1626"
    # late, near-zero loss jumping up (e.g. 0.29 at step 3440) is a training-loss spike
    assert any(sp["step"] == 3440 and sp["value"] > 0.2 for sp in s["loss_spikes"])


@needs_fixtures
def test_08_steady_eval_no_overfitting_no_grad_norm():
    s = analyse_fixture("08")
    assert s["overfitting"] is False
    assert len(s["eval"]) == 4
    assert "no_grad_norm" in kinds(s) and s["spikes"] == []
    assert s["lr_schedule"]["shape"] == "linear"
    assert s["recommended_epochs"] == 4 and s["selection_metric"] == "f1"


@needs_fixtures
@pytest.mark.parametrize("prefix", ["12", "14"])
def test_no_eval_means_overfitting_null_with_plain_finding(prefix):
    s = analyse_fixture(prefix)
    assert s["overfitting"] is None and s["recommended_epochs"] is None
    f = next(f for f in s["findings"] if f["kind"] == "no_eval")
    assert "not evidence of overfitting" in f["message"]
    assert f["evidence"]["recent_loss_min"] is not None


@needs_fixtures
def test_14_nan_grad_norm_is_a_skipped_step_and_spike_at_138():
    s = analyse_fixture("14")
    f = next(f for f in s["findings"] if f["kind"] == "nonfinite_grad_norm")
    assert f["evidence"]["steps"] == [222] and f["evidence"]["lr_not_advanced_at"] == [222]
    assert 222 not in {sp["step"] for sp in s["spikes"]}
    spike = next(sp for sp in s["spikes"] if sp["step"] == 138)
    assert spike["value"] == pytest.approx(12.76, abs=0.01) and spike["loss_jumped"] is False
    assert s["lr_schedule"]["shape"] == "linear" and s["lr_schedule"]["warmup_steps"] == 2
    assert s["lowest_loss"]["step"] == 922
    assert "max_steps_cut" in kinds(s)


@needs_fixtures
def test_every_finding_has_evidence_or_is_a_note():
    for prefix in ("02", "03", "05", "06", "08", "12", "14"):
        for f in analyse_fixture(prefix)["findings"]:
            assert set(f) == {"kind", "message", "evidence"} and f["message"]
            if f["kind"] not in ("log_note", "no_grad_norm", "empty_log"):
                assert f["evidence"], f["kind"]


# ------------------------------------------------------------------ synthetic edge cases


def test_empty_log_history():
    s = run({"global_step": 0, "log_history": []})
    assert s["overfitting"] is None and s["lowest_loss"] is None and s["loss_table"] == []
    assert "empty_log" in kinds(s)


def test_eval_metric_falling_is_overfitting_without_eval_loss():
    evals = [{"epoch": e, "accuracy": a} for e, a in [(1, 0.80), (2, 0.86), (3, 0.83), (4, 0.80)]]
    s = run(synthetic(evals=evals))
    assert s["overfitting"] is True and s["overfitting_start_epoch"] == 2
    assert s["recommended_epochs"] == 2


def test_single_eval_cannot_tell_and_nonscalar_metric_skipped():
    s = run(synthetic(evals=[{"epoch": 2, "loss": 0.4, "per_class": [0.1, 0.2], "accuracy": 0.9}]))
    assert s["overfitting"] is None
    assert "overfitting_undeterminable" in kinds(s)
    assert s["eval"][0]["metrics"] == {"accuracy": 0.9}


def test_large_final_uptick_is_undetermined_not_false():
    evals = [{"epoch": e, "loss": v} for e, v in [(1, 0.40), (2, 0.30), (3, 0.36)]]
    assert run(synthetic(evals=evals))["overfitting"] is None


@pytest.mark.parametrize(
    ("values", "lower", "band", "expected"),
    [
        ([0.395, 0.416, 0.389], True, 0.02, (False, 2, "best_at_end")),
        ([0.325, 0.303, 0.308], True, 0.015, (False, 1, "within_noise")),
        ([0.40, 0.30, 0.36], True, 0.015, (None, 1, "unsettled")),
        ([0.5, 0.4, 0.45, 0.5], True, 0.02, (True, 1, "sustained")),
        ([0.5, 0.4, 0.401, 0.5], True, 0.02, (None, 1, "unsettled")),  # one later eval at best
        ([0.8, 0.9, 0.85, 0.84], False, 0.01, (True, 1, "sustained")),
        ([0.8, 0.9], False, 0.01, (None, 1, "too_few")),
    ],
)
def test_series_verdict_patterns(values, lower, band, expected):
    assert series_verdict(values, lower, band, 0.005) == expected


def test_eval_rising_without_train_loss_is_undetermined():
    log = [{"step": 10 * e, "epoch": e, "eval_loss": v} for e, v in [(1, 0.5), (2, 0.6), (3, 0.7)]]
    s = run({"log_history": log})
    assert s["overfitting"] is None and s["lr_schedule"]["shape"] is None
    assert "overfitting_undeterminable" in kinds(s)


def test_malformed_values_never_crash_and_give_strict_json():
    # lists where numbers belong, strings in the header, NaN/inf everywhere
    log = [
        {"step": 10, "epoch": "x", "loss": [1, 2], "learning_rate": [1, 2], "grad_norm": "x"},
        {"step": 20, "epoch": 2.0, "loss": 0.5, "learning_rate": float("inf")},
        {"step": 20, "epoch": 2.0, "eval_loss": float("nan"), "eval_accuracy": [0.1]},
    ]
    header = {"best_metric": "x", "best_model_checkpoint": 5, "max_steps": "x", "epoch": [1]}
    s = run({**header, "log_history": log})
    assert s["lowest_loss"]["value"] == 0.5 and s["run"]["best_metric_name"] is None
