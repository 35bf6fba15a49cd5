"""Overfitting by loss vs by metric, noise bands, and recommendations that never contradict.

Each example of issue 12's "Why" list is rebuilt as a synthetic log, with a near-miss that
must not fire. The property test draws plausible logs from a seeded generator.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from reviewsense.analysis.diagnose import diagnose
from reviewsense.analysis.overfitting import series_verdict
from reviewsense.analysis.trainer_state import load_trainer_state

from .logs import analyse, finding_of, kinds, make_log


def test_loss_rises_while_accuracy_creeps_up_is_overfitting_by_loss_only():
    # eval loss bottoms at 20% of training and climbs ~50%; train loss falls 6x; accuracy up
    loss = [0.50, 0.40, 0.42, 0.45, 0.48, 0.51, 0.53, 0.55, 0.58, 0.60]
    acc = [0.80, 0.83, 0.835, 0.84, 0.842, 0.845, 0.847, 0.85, 0.852, 0.855]
    s = analyse(make_log({"loss": loss, "accuracy": acc}, train=lambda f: 0.6 - 0.5 * f))
    d = s["overfitting_detail"]
    assert s["overfitting"] is True and d["by_loss"] is True and d["by_metric"] is False
    assert d["metric"] == "accuracy" and d["metric_source"] == "inferred"
    assert s["overfitting_start_epoch"] == 2
    # the recommendation follows accuracy (best at the end), the loss checkpoint is named
    assert s["recommended_checkpoint"] == "checkpoint-1000"
    assert s["recommended_checkpoint_by_loss"] == "checkpoint-200"
    msg = finding_of(s, "overfitting")["message"]
    assert "Overfitting by loss" in msg and "No overfitting by accuracy" in msg
    assert "over-confident" in msg and "checkpoint-200" in msg
    assert "metric_loss_disagree" in kinds(s)


def test_eval_loss_back_within_noise_is_not_overfitting():
    loss = [0.50, 0.40, 0.41, 0.405, 0.41, 0.40, 0.405, 0.41, 0.408, 0.41]
    acc = [0.80, 0.83, 0.835, 0.84, 0.842, 0.845, 0.847, 0.85, 0.852, 0.855]
    s = analyse(make_log({"loss": loss, "accuracy": acc}))
    assert s["overfitting"] is False and "metric_loss_disagree" not in kinds(s)
    assert s["recommended_checkpoint"] == "checkpoint-1000"


def test_f1_dip_inside_binomial_noise_of_500_reviews_is_not_overfitting(tmp_path):
    # our own run dir: metrics.json gives n=500 (band 1.96*sqrt(.884*.116/500) = 0.028)
    run = tmp_path / "run"
    run.mkdir()
    data = make_log({"f1": [0.884, 0.872, 0.866]}, train=None)
    (run / "trainer_state.json").write_text(json.dumps(data))
    (run / "metrics.json").write_text(json.dumps({"data": {"val": 500}, "best": {}}))
    s = diagnose(load_trainer_state(run))
    d = s["overfitting_detail"]
    assert d["noise_source"] == "binomial" and d["eval_size"] == 500
    assert d["noise_band"] == pytest.approx(1.96 * math.sqrt(0.884 * 0.116 / 500), abs=1e-3)
    assert s["overfitting"] is False and d["by_metric"] is False
    assert "binomial" in finding_of(s, "no_overfitting")["message"]


def test_same_dip_on_a_large_eval_set_is_overfitting():
    data = make_log({"f1": [0.884, 0.872, 0.866]}, train=None)
    s = analyse(data, eval_size=20000)  # band 0.0044: a 1.8-point fall is real
    assert s["overfitting"] is True and s["overfitting_detail"]["by_metric"] is True
    assert s["recommended_epochs"] == 1


def test_two_evaluations_stay_undecided():
    s = analyse(make_log({"loss": [0.5, 0.7], "accuracy": [0.8, 0.7]}))
    assert s["overfitting"] is None
    assert s["overfitting_detail"]["by_loss"] is None
    assert "at least 3" in finding_of(s, "overfitting_undeterminable")["message"]


def test_users_metric_wins_over_lowest_eval_loss():
    # metric_for_best_model = macro-F1, best at epoch 8; eval loss lowest at epoch 3
    loss = [0.9, 0.7, 0.6, 0.62, 0.65, 0.66, 0.68, 0.69, 0.70, 0.72]
    macro = [0.15, 0.17, 0.18, 0.19, 0.19, 0.20, 0.21, 0.23, 0.22, 0.225]
    acc = [0.78, 0.82, 0.85, 0.86, 0.87, 0.88, 0.88, 0.90, 0.89, 0.89]
    s = analyse(
        make_log(
            {"loss": loss, "macro_f1": macro, "accuracy": acc},
            best_metric=0.23,
            best_model_checkpoint="out/checkpoint-800",
        )
    )
    assert s["selection_metric"] == "macro_f1"
    assert s["overfitting_detail"]["metric_source"] == "metric_for_best_model"
    assert s["recommended_checkpoint"] == "out/checkpoint-800" and s["recommended_epochs"] == 8
    assert s["recommended_checkpoint_by_loss"] == "checkpoint-300"
    msg = " ".join(f["message"] for f in s["findings"])
    assert "follows the selection metric" in msg
    ci = finding_of(s, "class_imbalance")["evidence"]
    assert ci["macro_metric"] == "macro_f1" and ci["gap"] > 0.6


def test_aggregate_metric_beats_per_entity_keys():
    rng = np.random.default_rng(1)
    evals = {f"T{i:03d}_f1": list(rng.uniform(0.2, 0.99, 4)) for i in range(128)}
    evals["overall_f1"] = [0.60, 0.65, 0.68, 0.70]
    evals["overall_precision"] = [0.6, 0.6, 0.6, 0.6]
    s = analyse(make_log({"loss": [0.8, 0.7, 0.65, 0.6], **evals}))
    assert s["primary_metric"] == "overall_f1"
    assert s["overfitting_detail"]["metric"] == "overall_f1"


def test_best_metric_equal_to_a_per_class_value_still_picks_the_aggregate():
    evals = {"f1": [0.7, 0.8, 0.9], "class_2_f1": [0.5, 0.6, 0.9], "loss": [0.6, 0.5, 0.4]}
    s = analyse(make_log(evals, best_metric=0.9, best_model_checkpoint="checkpoint-300"))
    assert s["selection_metric"] == "f1"


def test_reviewsense_run_recommendation_agrees_with_best_reason(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    data = make_log({"loss": [0.40, 0.35, 0.34, 0.345], "accuracy": [0.85, 0.88, 0.885, 0.889]})
    data.update(best_metric=0.889, best_model_checkpoint=str(run / "checkpoints/checkpoint-400"))
    (run / "trainer_state.json").write_text(json.dumps(data))
    reason = "epoch 2: within the noise band (±0.006) of the best accuracy, earliest such epoch"
    best = {"epoch": 2, "step": 200, "metric": "accuracy", "reason": reason}
    (run / "metrics.json").write_text(json.dumps({"data": {"val": 25000}, "best": best}))
    s = diagnose(load_trainer_state(run))
    assert s["recommended_step"] == 200 and s["recommended_epochs"] == 2
    assert reason in s["recommended_reason"]
    assert reason in " ".join(f["message"] for f in s["findings"])
    # an earlier epoch chosen by the run's paired test: the verdict must not say "no"
    assert s["overfitting"] is True and s["overfitting_detail"]["by_metric"] is True
    assert "run's own selection" in finding_of(s, "overfitting")["message"]


def test_reviewsense_run_keeping_the_last_epoch_stays_no_overfitting(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    data = make_log({"loss": [0.40, 0.35, 0.34, 0.335], "accuracy": [0.85, 0.88, 0.885, 0.884]})
    (run / "trainer_state.json").write_text(json.dumps(data))
    reason = "last epoch kept: no earlier epoch is better by more than the noise band"
    best = {"epoch": 4, "step": 400, "metric": "accuracy", "reason": reason}
    (run / "metrics.json").write_text(json.dumps({"data": {"val": 2000}, "best": best}))
    s = diagnose(load_trainer_state(run))
    assert s["overfitting"] is False and s["recommended_step"] == 400
    assert reason in s["recommended_reason"]


# ------------------------------------------------------------------ property


def _random_log(rng: np.random.Generator) -> tuple[dict, int | None]:
    n = int(rng.integers(1, 16))
    trend = rng.uniform(-0.05, 0.05)
    loss = np.abs(0.6 + np.cumsum(rng.normal(trend, 0.03, n)))
    evals: dict[str, list[float]] = {"loss": [float(x) + 1e-3 for x in loss]}
    if rng.random() < 0.8:
        acc = np.clip(0.7 + np.cumsum(rng.normal(rng.uniform(-0.02, 0.02), 0.015, n)), 0, 1)
        evals["accuracy"] = [round(float(x), 4) for x in acc]
    if rng.random() < 0.2:
        del evals["loss"]
    header = {}
    if "accuracy" in evals and rng.random() < 0.3:
        i = int(np.argmax(evals["accuracy"]))
        header = {
            "best_metric": evals["accuracy"][i],
            "best_model_checkpoint": f"checkpoint-{(i + 1) * 50}",
        }
    start = float(rng.uniform(0.3, 1))
    train = None if rng.random() < 0.2 else (lambda f: start * math.exp(-2 * f))
    size = int(rng.integers(100, 30000)) if rng.random() < 0.5 else None
    return make_log(evals, spe=50, train=train, seed=int(rng.integers(1e6)), **header), size


def _value(row: dict, key: str) -> float:
    return row["eval_loss"] if key == "loss" else row["metrics"][key]


@pytest.mark.parametrize("seed", range(4))
def test_property_no_overfitting_means_last_or_within_noise_of_it(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(60):
        data, size = _random_log(rng)
        s = analyse(data, eval_size=size)
        d = s["overfitting_detail"]
        if s["overfitting"] is True:
            assert d["by_loss"] is True or d["by_metric"] is True
        if s["overfitting"] is not False:
            continue
        checked += 1
        key = s["selection_metric"] or s["primary_metric"] or "loss"
        band = d["loss_noise_band"] if key == "loss" else d["noise_band"]
        by_step = {r["step"]: r for r in s["eval"]}
        last = s["eval"][-1]
        rec = by_step[s["recommended_step"]]
        gap = abs(_value(rec, key) - _value(last, key))
        assert rec is last or gap <= band + 1e-9, (key, s["eval"])
    assert checked > 5


def test_series_verdict_uses_the_band():
    assert series_verdict([0.9, 0.88, 0.87], False, 0.031, 0.005)[0] is False
    assert series_verdict([0.9, 0.88, 0.87], False, 0.01, 0.005)[0] is True


def test_flat_noisy_evals_are_never_called_overfitting():
    # winner's curse: the best of many noisy evals is an extreme draw, not a level
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(5, 40))
        loss = list(0.35 + 0.01 * rng.standard_normal(n))
        acc = list(np.round(0.88 + 0.005 * rng.standard_normal(n), 4))
        s = analyse(make_log({"loss": loss, "accuracy": acc}, spe=50, seed=seed))
        assert s["overfitting"] is not True, (seed, loss, acc)


def test_v_shaped_eval_loss_is_never_called_healthy():
    verdicts = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        x = np.linspace(0, 1, int(rng.integers(6, 40)))
        loss = 0.35 + 0.3 * np.abs(x - 0.3) + 0.01 * rng.standard_normal(x.size)
        s = analyse(make_log({"loss": list(loss)}, spe=50, seed=seed))
        assert s["overfitting"] is not False, (seed, loss)
        verdicts.append(s["overfitting"])
    assert verdicts.count(True) > 40
