"""What a run reports: prediction files and the validation history from the Trainer's log."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reviewsense.data import Split
from reviewsense.train_report import validation_history, write_predictions


def test_predictions_file_columns_and_flag_rule(tmp_path):
    split = Split(["a", "b", "c"], [1, 0, 1], ["r1", "r2", "r3"], "test")
    write_predictions(tmp_path / "p.parquet", split, np.array([0.9, 0.5, 0.2]))
    df = pd.read_parquet(tmp_path / "p.parquet")
    assert list(df.columns) == ["row_id", "label", "prob_positive", "prediction"]
    assert df["row_id"].tolist() == ["r1", "r2", "r3"]
    assert df["prediction"].tolist() == [1, 0, 0]  # P(positive) 0.5 is flagged negative


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
