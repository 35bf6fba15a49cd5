"""binary_metrics against scikit-learn, Wilson intervals, ROC-AUC edge cases, stable softmax."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import binomtest
from sklearn import metrics as skm

from reviewsense.metrics import (
    METRIC_KEYS,
    binary_metrics,
    roc_auc,
    softmax_positive,
    wilson_interval,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_metrics_match_sklearn(seed, threshold):
    rng = np.random.default_rng(seed)
    n = 500
    y = rng.integers(0, 2, n)
    # informative but noisy scores
    p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, n), 0.001, 0.999)
    pred = (p >= threshold).astype(int)
    m = binary_metrics(y.tolist(), p.tolist(), threshold=threshold)
    assert set(METRIC_KEYS) <= set(m)
    assert m["n"] == n
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    lo, hi = m["accuracy_ci95"]
    assert lo < m["accuracy"] < hi


def test_roc_auc_with_ties_matches_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300), 1)  # many ties
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(1.0)
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == pytest.approx(0.0)


def test_confusion_matrix_layout():
    # tn=1 (0.1), fp=1 (0.9), fn=1 (0.2), tp=2 (0.8, 0.7)
    m = binary_metrics([0, 0, 1, 1, 1], [0.1, 0.9, 0.2, 0.8, 0.7])
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    # negative-class F1 = 2*0.5*0.5/1 = 0.5
    assert m["f1_macro"] == pytest.approx((2 / 3 + 0.5) / 2)


def test_threshold_is_inclusive():
    m = binary_metrics([1, 0], [0.5, 0.4999])
    assert m["confusion_matrix"] == [[1, 0], [0, 1]]
    assert m["accuracy"] == 1.0


def test_all_wrong_and_no_positive_predictions():
    m = binary_metrics([1, 1, 0], [0.1, 0.2, 0.3])
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["confusion_matrix"] == [[1, 0], [2, 0]]


def test_log_loss_is_clipped_not_infinite():
    m = binary_metrics([1, 0], [0.0, 1.0])
    assert math.isfinite(m["log_loss"])
    assert m["log_loss"] == pytest.approx(-math.log(1e-12), rel=1e-6)


def test_one_class_labels_give_nan_auc():
    m = binary_metrics([1, 1, 1], [0.9, 0.4, 0.8])
    assert math.isnan(m["roc_auc"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert math.isnan(binary_metrics([0, 0], [0.1, 0.2])["roc_auc"])


def test_empty_input():
    m = binary_metrics([], [])
    assert m["n"] == 0
    assert math.isnan(m["accuracy"]) and math.isnan(m["log_loss"]) and math.isnan(m["roc_auc"])
    assert m["confusion_matrix"] == [[0, 0], [0, 0]]


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        binary_metrics([0, 1, 1], [0.2, 0.3])


# -- Wilson ----------------------------------------------------------------------------------
def test_wilson_known_value():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4)
    assert hi == pytest.approx(0.5962, abs=1e-4)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (1, 3), (87, 100), (9000, 10000)])
def test_wilson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-6)
    assert hi == pytest.approx(ci.high, abs=1e-6)
    assert 0.0 <= lo <= k / n + 1e-12 and k / n <= hi + 1e-12 and hi <= 1.0


def test_wilson_bounds():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    # narrower with more data
    w_small = np.subtract(*wilson_interval(5, 10)[::-1])
    w_big = np.subtract(*wilson_interval(500, 1000)[::-1])
    assert w_big < w_small


def test_binary_metrics_ci_is_wilson_of_correct():
    m = binary_metrics([0, 0, 1, 1, 1], [0.1, 0.9, 0.2, 0.8, 0.7])
    assert m["accuracy_ci95"] == list(wilson_interval(3, 5))


# -- softmax ---------------------------------------------------------------------------------
def test_softmax_positive_matches_scipy():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (50, 2))
    np.testing.assert_allclose(softmax_positive(logits), softmax(logits, axis=1)[:, 1])


def test_softmax_positive_stable_on_large_logits():
    logits = np.array([[1000.0, 1001.0], [-1000.0, 1000.0], [1e6, -1e6], [5e4, 5e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
            p = softmax_positive(logits)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [1 / (1 + math.exp(-1)), 1.0, 0.0, 0.5])


def test_softmax_positive_float16_input():
    p = softmax_positive(np.array([[0, 60000]], dtype=np.float16))
    assert p.dtype == np.float64 and p[0] == pytest.approx(1.0)
