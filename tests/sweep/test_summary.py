"""`reviewsense.sweep.summary`: per-run numbers, aligned predictions, the review-level verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reviewsense import sweep
from reviewsense.rundir import TEST_PREDICTIONS
from reviewsense.sweep.summary import paired_predictions, run_metrics, verdict

from .fakes import N_TEST, FakeTrainer, grid_spec


def test_run_metrics_reads_the_kept_checkpoint_row():
    m = {
        "validation": [
            {"epoch": 1, "step": 10, "accuracy": 0.8, "f1": 0.7, "loss": 0.5},
            {"epoch": 2, "step": 20, "accuracy": 0.9, "f1": 0.85, "loss": 0.4},
        ],
        "best": {"epoch": 1, "step": 10},
        "test": {"accuracy": 0.88, "log_loss": 0.3},
        "train": {"train_time_s": 12.0, "examples_per_s": float("nan")},
    }
    r = run_metrics(m)
    assert (r["val_accuracy"], r["val_f1"], r["best_epoch"]) == (0.8, 0.7, 1.0)
    assert r["test_loss"] == 0.3 and r["train_time_s"] == 12.0
    assert r["examples_per_s"] is None  # NaN is not a number to average
    del m["best"]
    assert run_metrics(m)["val_accuracy"] == 0.9  # no kept checkpoint recorded: the last


def _preds(folder, ids, labels, preds):
    folder.mkdir(parents=True)
    pd.DataFrame(
        {"row_id": ids, "label": labels, "prob_positive": preds * 1.0, "prediction": preds}
    ).to_parquet(folder / TEST_PREDICTIONS)
    return folder


def test_paired_predictions_align_by_row_id_and_seed(tmp_path):
    y = np.array([0, 1, 1])
    base = {1: _preds(tmp_path / "b1", ["a", "b", "c"], y, np.array([0, 1, 0]))}
    var = {1: _preds(tmp_path / "v1", ["c", "b", "a"], y[::-1], np.array([1, 1, 1]))}
    base[2] = _preds(tmp_path / "b2", ["a", "b"], y[:2], np.array([1, 1]))
    var[2] = _preds(tmp_path / "v2", ["b", "a"], y[1::-1], np.array([1, 0]))
    p = paired_predictions(base, var)
    assert p.labels[:, 0].tolist() == [0, 1, 1]  # rows a, b, c
    assert p.base_pred.tolist() == [[0, 1], [1, 1], [0, 0]]
    assert p.var_pred.tolist() == [[1, 0], [1, 1], [1, 0]]
    assert p.present.tolist() == [[True, True], [True, True], [True, False]]
    bad = {1: _preds(tmp_path / "v3", ["a", "b", "c"], 1 - y, np.array([1, 1, 1]))}
    with pytest.raises(sweep.SweepError, match="seed 1: test labels differ"):
        paired_predictions({1: base[1]}, bad)


def test_summary_uses_the_review_level_test(tmp_path):
    out = tmp_path / "s"
    sweep.run_sweep(grid_spec(), out, train_fn=FakeTrainer(), curves=False)
    summary = sweep.summarize(sweep.load_plan(out))
    e = summary["variants"]["epochs_2-batch_size_16"]
    rt = e["review_test"]
    assert rt["n_reviews"] == N_TEST and e["n_paired_predictions"] == 2 * N_TEST
    assert e["p_value"] == rt["p_value"] and 0 < rt["p_value"] <= 1
    assert rt["better"] > rt["worse"]  # the fake trainer made 2 epochs better
    assert "sign-flip" in summary["method"]["p_value"]


def _entry(p_value, ci_seeds=(0.01, 0.03), n_seeds=3):
    return {
        "delta": {"test_accuracy_paired": 0.02, "test_f1_paired": 0.01, "train_time_s_rel": -0.5},
        "ci": {"test_accuracy": [0.005, 0.035]},
        "ci_seeds": {"test_accuracy": list(ci_seeds)},
        "p_value": p_value,
        "n_seeds": n_seeds,
    }


def test_verdict_sentences():
    assert verdict("v", _entry(0.01)) == (
        "v: accuracy +2.0 pt (95% CI +0.5..+3.5, significantly better, p=0.01), F1 +1.0 pt, "
        "50% less training time"
    )
    assert "not significant, p=0.2" in verdict("v", _entry(0.2))
    assert "not consistent across seeds" in verdict("v", _entry(0.01, ci_seeds=(-0.01, 0.03)))
    assert verdict("v", _entry(0.01, n_seeds=1)).endswith(
        "1 seed only: seed-to-seed variation not measured"
    )
