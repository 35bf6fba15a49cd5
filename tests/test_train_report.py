"""What a run reports: the validation history from the Trainer's log."""

from __future__ import annotations

from reviewsense.train_report import validation_history


def test_validation_history_keeps_eval_metrics_only():
    log = [
        {"loss": 0.7, "step": 10, "epoch": 0.5},
        {"eval_loss": 0.6, "eval_accuracy": 0.8, "eval_runtime": 1.0, "step": 20, "epoch": 1.0},
        {"eval_loss": 0.5, "eval_accuracy": 0.85, "eval_samples_per_second": 9, "step": 40},
    ]
    rows = validation_history(log)
    assert rows == [
        {"epoch": 1.0, "step": 20, "loss": 0.6, "accuracy": 0.8},
        {"epoch": None, "step": 40, "loss": 0.5, "accuracy": 0.85},
    ]
