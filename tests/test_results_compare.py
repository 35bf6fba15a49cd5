"""results/compare_runs.py: seed mean, ensemble and paired statistics on the same test reviews."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compare_runs():
    spec = importlib.util.spec_from_file_location("compare_runs", ROOT / "results/compare_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp: Path, name: str, labels: np.ndarray, prob: np.ndarray) -> Path:
    run = tmp / name
    run.mkdir()
    pd.DataFrame(
        {
            "row_id": np.arange(len(labels)),
            "label": labels,
            "prob_positive": prob,
            "prediction": (prob >= 0.5).astype(int),
        }
    ).to_parquet(run / "test_predictions.parquet")
    return run


def test_seeds_ensemble_and_a_clearly_better_recipe(tmp_path, compare_runs):
    rng = np.random.default_rng(0)
    n = 2000
    labels = rng.integers(0, 2, n)
    right = np.where(labels == 1, 0.9, 0.1)  # P(positive) of a correct, confident model
    runs = []
    for seed, wrong_share in enumerate((0.05, 0.06, 0.07)):
        prob = right.copy()
        wrong = rng.random(n) < wrong_share
        prob[wrong] = 1 - prob[wrong]
        runs.append(_run(tmp_path, f"seed-{seed}", labels, prob))
    base_prob = right.copy()
    base_wrong = rng.random(n) < 0.20
    base_prob[base_wrong] = 1 - base_prob[base_wrong]
    base = _run(tmp_path, "base", labels, base_prob)

    doc = compare_runs.compare(runs, [base])

    accs = list(doc["runs"].values())
    assert accs == pytest.approx([0.95, 0.94, 0.93], abs=0.015)
    assert doc["mean_accuracy"] == pytest.approx(np.mean(accs))
    lo, hi = doc["mean_accuracy_ci"]
    assert lo < doc["mean_accuracy"] < hi
    assert doc["ensemble_accuracy"] > max(accs)  # independent errors: the majority is right
    paired = doc["vs_baseline"][str(base)]
    assert paired["difference"] == pytest.approx(doc["mean_accuracy"] - paired["baseline_accuracy"])
    assert paired["sign_flip"]["p_value"] < 0.001
    assert paired["cluster_bootstrap"]["lo"] > 0


def test_identical_runs_show_no_difference(tmp_path, compare_runs):
    labels = np.array([0, 1] * 100)
    prob = np.where(np.arange(200) % 3 == 0, 0.8, 0.3)
    run = _run(tmp_path, "a", labels, prob)
    base = _run(tmp_path, "b", labels, prob)

    doc = compare_runs.compare([run], [base])

    assert doc["mean_accuracy_ci"] == [None, None]  # one seed: no interval
    paired = doc["vs_baseline"][str(base)]
    assert paired["difference"] == 0
    assert paired["sign_flip"]["better"] == paired["sign_flip"]["worse"] == 0
