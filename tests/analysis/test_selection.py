"""Which metric a run is judged by, where the eval size comes from, checkpoint names."""

from __future__ import annotations

import json

from reviewsense.analysis.diagnose import diagnose
from reviewsense.analysis.selection import checkpoint_step, eval_size
from reviewsense.analysis.trainer_state import load_trainer_state

from .logs import analyse, make_log


def test_checkpoint_step_any_slash():
    assert checkpoint_step("./results\\checkpoint-2445") == 2445
    assert checkpoint_step("out/checkpoint-10/") == 10
    assert checkpoint_step("model") is None and checkpoint_step(None) is None


def test_loss_as_selection_metric_recommends_lowest_loss():
    data = make_log({"loss": [0.5, 0.3, 0.4, 0.35], "f1": [0.7, 0.8, 0.82, 0.83]},
                    best_metric=0.3, best_model_checkpoint="r/checkpoint-200")  # fmt: skip
    s = analyse(data)
    assert s["selection_metric"] == "loss" and s["recommended_checkpoint"] == "r/checkpoint-200"
    assert s["overfitting_detail"]["metric"] == "f1"
    assert s["overfitting_detail"]["metric_source"] == "inferred"


def test_eval_size_sources(tmp_path):
    data = make_log({"accuracy": [0.8, 0.85, 0.86]})
    data["log_history"][-1]["eval_samples"] = 872
    p = tmp_path / "trainer_state.json"
    p.write_text(json.dumps(data))
    state = load_trainer_state(p)
    assert eval_size(state) == (872, "eval_samples")
    assert eval_size(state, 100) == (100, "--eval-size")
    assert "samples" not in state.evals[-1].metrics  # a count, not a metric
    (tmp_path / "metrics.json").write_text(json.dumps({"data": {"val": 2500}, "best": {}}))
    assert eval_size(load_trainer_state(p)) == (2500, "metrics.json data.val")


def test_unrelated_metrics_json_is_ignored(tmp_path):
    (tmp_path / "trainer_state.json").write_text(json.dumps(make_log({"f1": [0.8, 0.9, 0.9]})))
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    assert load_trainer_state(tmp_path).run_metrics is None


def test_run_choice_by_epoch_when_metrics_json_names_no_step(tmp_path):
    data = make_log({"accuracy": [0.85, 0.88, 0.885, 0.886]})
    (tmp_path / "trainer_state.json").write_text(json.dumps(data))
    best = {"epoch": 3, "reason": "epoch 3 beats the last by more than the paired noise band"}
    (tmp_path / "metrics.json").write_text(json.dumps({"best": best}))
    s = diagnose(load_trainer_state(tmp_path))
    assert s["recommended_step"] == 300
    assert s["recommended_reason"].endswith(best["reason"])
