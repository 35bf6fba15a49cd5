"""Paired statistics against hand-computed and scipy reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from reviewsense.sweep_stats import (
    PairedData,
    mcnemar,
    mean_std,
    paired_bootstrap,
    t_interval,
)


def _pairs(b: int, c: int, both_right: int = 50, both_wrong: int = 5):
    """Correctness arrays with b (baseline right, variant wrong) and c (the reverse) pairs."""
    base = [True] * b + [False] * c + [True] * both_right + [False] * both_wrong
    var = [False] * b + [True] * c + [True] * both_right + [False] * both_wrong
    return np.array(base), np.array(var)


def test_mcnemar_exact_and_mid_p_known_values():
    base, var = _pairs(b=10, c=2)
    r = mcnemar(base, var)
    assert (r.b, r.c, r.n) == (10, 2, 67)
    # Exact: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    assert r.p_exact == pytest.approx(158 / 4096)
    assert r.p_exact == pytest.approx(stats.binomtest(2, 12, 0.5).pvalue)
    # Mid-p subtracts P(X = 2) = 66 / 4096.
    assert r.p_mid == pytest.approx(92 / 4096)


def test_mcnemar_symmetric_and_degenerate_cases():
    assert mcnemar(*_pairs(b=0, c=0)).p_mid == 1.0  # no discordant pairs: no evidence
    r = mcnemar(*_pairs(b=3, c=3))
    assert r.p_exact == 1.0 and r.p_mid == pytest.approx(1.0)
    # Order does not matter for a two-sided test.
    assert mcnemar(*_pairs(b=2, c=10)).p_mid == pytest.approx(mcnemar(*_pairs(10, 2)).p_mid)
    with pytest.raises(ValueError):
        mcnemar(np.ones(3, bool), np.ones(4, bool))


def test_t_interval_matches_scipy():
    r = t_interval(np.array([1.0, 2.0, 3.0]))
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # 4.302653 / sqrt(3)
    assert r.estimate == pytest.approx(2.0)
    assert (r.lo, r.hi) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert r.lo == pytest.approx(-0.484138, abs=1e-6)
    assert r.p_value == pytest.approx(stats.ttest_1samp([1, 2, 3], 0).pvalue)
    one = t_interval(np.array([0.5]))
    assert one.estimate == 0.5 and one.lo is None and one.p_value is None
    assert t_interval(np.array([0.2, 0.2])).p_value == 0.0  # no spread, non-zero mean


def _data(base_pred, var_pred, labels, present=None):
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    bp, vp = np.asarray(base_pred), np.asarray(var_pred)
    if bp.ndim == 1:
        bp, vp = bp[:, None], vp[:, None]
    pres = np.ones_like(bp, dtype=bool) if present is None else np.asarray(present)
    return PairedData(labels=labels, base_pred=bp, var_pred=vp, present=pres)


def test_bootstrap_identical_models_has_zero_interval():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = rng.integers(0, 2, 300)
    r = paired_bootstrap(_data(p, p, y), n_resamples=500)
    assert r.estimate == 0 and r.lo == 0 and r.hi == 0 and r.p_value == 1.0


def test_bootstrap_estimate_and_interval_width():
    rng = np.random.default_rng(2)
    n = 2000
    y = rng.integers(0, 2, n)
    base = np.where(rng.random(n) < 0.80, y, 1 - y)  # ~80% accurate
    var = np.where(rng.random(n) < 0.85, y, 1 - y)  # ~85% accurate, independent errors
    r = paired_bootstrap(_data(base, var, y), n_resamples=2000, seed=3)
    exact = (var == y).mean() - (base == y).mean()
    assert r.estimate == pytest.approx(exact)
    # Normal approximation of the paired difference: sd = sqrt(var(d_i) / n).
    d = (var == y).astype(float) - (base == y)
    half = 1.96 * d.std(ddof=0) / math.sqrt(n)
    assert (r.hi - r.lo) / 2 == pytest.approx(half, rel=0.15)
    assert r.lo > 0 and r.p_value < 0.01


def test_bootstrap_f1_estimate_matches_definition():
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    base = np.array([1, 0, 0, 0, 1, 0, 1, 0])  # tp 2, fp 1, fn 2 -> f1 4/7
    var = np.array([1, 1, 0, 0, 0, 0, 1, 1])  # tp 3, fp 1, fn 1 -> f1 6/8
    r = paired_bootstrap(_data(base, var, y), metric="f1", n_resamples=200)
    assert r.estimate == pytest.approx(6 / 8 - 4 / 7)
    with pytest.raises(ValueError):
        paired_bootstrap(_data(base, var, y), metric="auc", n_resamples=10)


def test_bootstrap_averages_seeds_and_ignores_absent_cells():
    y = np.array([1, 0, 1, 0])
    labels = np.stack([y, y], axis=1)
    base = np.stack([y, y], axis=1)  # baseline always right
    var = np.stack([y, 1 - y], axis=1)  # seed 1 always wrong
    present = np.array([[True, True], [True, True], [True, False], [True, False]])
    r = paired_bootstrap(_data(base, var, labels, present), n_resamples=100)
    # Seed 0: delta 0; seed 1 (rows 0, 1 only): delta -1 → mean over seeds -0.5.
    assert r.estimate == pytest.approx(-0.5)


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (pytest.approx(2.0), pytest.approx(1.0))
    assert mean_std([0.7]) == (0.7, 0.0)
    assert mean_std([]) == (None, None)
    assert mean_std([None, float("nan"), 2.0]) == (2.0, 0.0)
