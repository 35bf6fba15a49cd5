"""Each health check fires on the case issue 12 describes and stays quiet on a near miss."""

from __future__ import annotations

import math

from .logs import analyse, finding_of, kinds, make_log

LN5 = math.log(5)


def test_not_learning_flat_at_ln_classes_with_chance_accuracy():
    loss = [LN5 * (1 + d) for d in (0.002, -0.001, 0.001, 0.0)]
    s = analyse(make_log({"loss": loss, "accuracy": [0.20, 0.21, 0.19, 0.20]}))
    ev = finding_of(s, "not_learning")["evidence"]
    assert ev["classes_guess"] == 5 and ev["accuracy_range"] == [0.19, 0.21]
    # no "no overfitting, recommended: 3 epochs" for a model that learned nothing
    assert s["overfitting"] is None and s["recommended_checkpoint"] is None
    assert "did not learn" in s["recommended_reason"]


def test_not_learning_near_miss_loss_starts_at_ln_k_and_falls():
    s = analyse(make_log({"loss": [1.61, 1.2, 0.9, 0.8], "accuracy": [0.2, 0.5, 0.65, 0.7]}))
    assert "not_learning" not in kinds(s)


def test_not_learning_near_miss_flat_loss_but_accuracy_far_above_chance():
    # flat at 0.69 = ln 2, but 0.9 accuracy: a (majority-heavy) model, not a uniform guess
    s = analyse(make_log({"loss": [0.693, 0.692, 0.694], "accuracy": [0.9, 0.9, 0.9]}))
    assert "not_learning" not in kinds(s)


def test_not_learning_training_loss_never_falls_and_near_miss():
    s = analyse(make_log({"loss": [0.5, 0.49, 0.5]}, train=lambda f: 0.7))
    assert finding_of(s, "not_learning")["evidence"]["train_logs"] == 30
    s = analyse(make_log({"loss": [0.5, 0.45, 0.4]}, train=lambda f: 0.7 - 0.1 * f))
    assert "not_learning" not in kinds(s)


def test_loss_collapse_zero_train_loss_and_tiny_eval_loss():
    data = make_log({"loss": [0.01, 1e-4, 2e-5]}, train=lambda f: 0.5 if f < 0.3 else 0.0)
    ev = finding_of(analyse(data), "loss_collapse")["evidence"]
    assert ev["zero_loss_run"] >= 20 and ev["min_eval_loss"] == 2e-5
    assert ev["min_eval_loss_step"] == 300


def test_loss_collapse_near_miss_small_but_honest_losses():
    data = make_log({"loss": [0.2, 0.1, 0.05]}, train=lambda f: max(1e-3, 0.5 * (1 - f)))
    assert "loss_collapse" not in kinds(analyse(data))


def test_eval_spike_reports_step_and_the_metrics_that_moved():
    loss = [1.2, 1.0, 0.93, 1.65, 0.89, 0.88]
    recall = [0.80, 0.82, 0.84, 0.30, 0.85, 0.86]
    prec = [0.80, 0.81, 0.82, 0.82, 0.83, 0.83]
    s = analyse(make_log({"loss": loss, "recall": recall, "precision": prec}))
    spikes = [f for f in s["findings"] if f["kind"] == "eval_spike"]
    assert len(spikes) == 1
    ev = spikes[0]["evidence"]
    assert ev["step"] == 400 and ev["eval_loss"] == [0.93, 1.65, 0.89]
    assert set(ev["moved_metrics"]) == {"recall"}


def test_eval_spike_near_misses_no_recovery_or_small_bump():
    assert "eval_spike" not in kinds(analyse(make_log({"loss": [1.0, 0.93, 1.65, 1.7, 1.8]})))
    assert "eval_spike" not in kinds(analyse(make_log({"loss": [1.0, 0.93, 1.1, 0.9, 0.88]})))


def _resumed_three_times() -> dict:
    data = make_log({"loss": [0.6, 0.5, 0.45, 0.42]}, spe=100)
    for e in data["log_history"]:  # epoch counter restarts at 0 every 100 steps
        e["epoch"] = round((e["step"] - 1) % 100 / 100 + 0.01, 2)
    data["log_history"].append({"step": 400, "epoch": 1.0, "train_loss": 0.02, "train_runtime": 9})
    return data


def test_resumed_run_epoch_counter_back_and_impossible_train_loss():
    s = analyse(_resumed_three_times())
    ev = finding_of(s, "resumed_run")["evidence"]
    assert len(ev["epoch_reset_steps"]) == 3 and ev["summary_train_loss"] == 0.02
    assert ev["steps_per_epoch"] == 100
    assert [r["epoch"] for r in s["eval"]] == [1, 2, 3, 4]  # computed from steps
    assert finding_of(s, "train_loss_explained")["evidence"]["resumed"] is True


def test_resumed_run_near_miss_repeated_final_eval_is_normal():
    data = make_log({"loss": [0.6, 0.5, 0.45]})
    data["log_history"].append(dict(data["log_history"][-1]))  # final evaluate() repeats
    assert "resumed_run" not in kinds(analyse(data))


def test_class_imbalance_per_class_recall_near_zero_and_near_miss():
    evals = {"loss": [0.5, 0.45, 0.44], "accuracy": [0.9, 0.91, 0.92]}
    s = analyse(make_log({**evals, "recall_neutral": [0.1, 0.03, 0.02], "f1_macro": [0.8] * 3}))
    assert finding_of(s, "class_imbalance")["evidence"]["near_zero_recall"] == {
        "recall_neutral": 0.02
    }
    s = analyse(make_log({**evals, "recall_neutral": [0.6, 0.7, 0.7], "f1_macro": [0.8] * 3}))
    assert "class_imbalance" not in kinds(s)


def test_train_loss_explained_and_near_miss():
    data = make_log({"loss": [0.5, 0.4, 0.35]}, train=lambda f: 0.7 * (1 - f) + 0.05)
    data["log_history"].append({"step": 300, "epoch": 3.0, "train_loss": 0.4, "train_runtime": 9})
    ev = finding_of(analyse(data), "train_loss_explained")["evidence"]
    assert ev["summary_train_loss"] == 0.4 and ev["resumed"] is False
    data["log_history"][-1]["train_loss"] = ev["last_logged_loss"] * 1.05
    assert "train_loss_explained" not in kinds(analyse(data))


def test_class_imbalance_near_miss_with_percentages():
    evals = {"loss": [0.5, 0.4, 0.35], "accuracy": [85.0, 88.0, 90.0], "f1_macro": [83, 86, 88]}
    assert "class_imbalance" not in kinds(analyse(make_log(evals)))
    evals["f1_macro"] = [40.0, 45.0, 50.0]
    assert finding_of(analyse(make_log(evals)), "class_imbalance")["evidence"]["gap"] == 0.4


def test_zero_train_loss_with_honest_eval_loss_points_to_memorisation():
    data = make_log({"loss": [0.6, 0.7, 0.8]}, train=lambda f: 0.5 if f < 0.5 else 0.0)
    f = finding_of(analyse(data), "loss_collapse")
    assert f["evidence"]["min_eval_loss"] is None and "memorisation" in f["message"]


def test_flat_training_loss_is_not_not_learning_when_eval_loss_fell():
    data = make_log({"loss": [0.5, 0.4, 0.3]}, train=lambda f: 0.2)
    assert "not_learning" not in kinds(analyse(data))
