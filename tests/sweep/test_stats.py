"""Paired statistics against hand-computed and scipy reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from reviewsense.sweep.stats import (
    PairedData,
    mean_std,
    paired_bootstrap,
    review_differences,
    sign_flip_test,
    t_interval,
)


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


# -- the review-level sign-flip test ------------------------------------------------------------
def _correct_data(base_correct: np.ndarray, var_correct: np.ndarray) -> PairedData:
    """PairedData (reviews × seeds) from correctness arrays; all labels 1, all cells present."""
    y = np.ones(base_correct.shape, dtype=np.int64)
    return PairedData(
        labels=y,
        base_pred=base_correct.astype(np.int64),
        var_pred=var_correct.astype(np.int64),
        present=np.ones(base_correct.shape, dtype=bool),
    )


def test_review_differences_average_over_present_seeds():
    base = np.array([[1, 1, 0], [0, 0, 0], [1, 0, 1]])
    var = np.array([[1, 0, 1], [1, 1, 1], [1, 1, 1]])
    present = np.array([[1, 1, 1], [1, 0, 0], [0, 1, 0]], dtype=bool)
    d = review_differences(PairedData(np.ones((3, 3), int), base, var, present))
    assert d.tolist() == [0.0, 1.0, 1.0]  # (0 - 1 + 1)/3, only seed 0, only seed 1


def test_sign_flip_exact_matches_the_sign_test():
    # 5 reviews, the variant right and the baseline wrong on each (every seed): every sign
    # pattern enumerated, two-sided p = 2 / 2**5, the exact sign (binomial) test's value.
    base = np.zeros((5, 3), dtype=bool)
    base = np.vstack([base, np.ones((20, 3), dtype=bool)])  # 20 reviews both right
    r = sign_flip_test(_correct_data(base, np.ones((25, 3), dtype=bool)))
    assert (r.better, r.worse, r.n_reviews, r.n_resamples) == (5, 0, 25, 0)
    assert r.p_value == pytest.approx(stats.binomtest(5, 5, 0.5).pvalue) == 2 / 32
    assert r.estimate == pytest.approx(5 / 25)
    same = sign_flip_test(_correct_data(base, base))
    assert same.p_value == 1.0 and same.estimate == 0.0


def test_sign_flip_counts_a_review_once_however_many_seeds():
    # The same 8-vs-2 review split scored under 1 seed or repeated under 5 seeds gives the
    # same p-value: five copies of a review are not five independent reviews.
    base1 = np.r_[np.ones(2), np.zeros(8), np.ones(30)].astype(bool)[:, None]
    var1 = np.r_[np.zeros(2), np.ones(8), np.ones(30)].astype(bool)[:, None]
    one = sign_flip_test(_correct_data(base1, var1))
    five = sign_flip_test(_correct_data(base1.repeat(5, 1), var1.repeat(5, 1)))
    assert one.p_value == five.p_value == pytest.approx(stats.binomtest(8, 10, 0.5).pvalue)
    # Pooled McNemar on the 5 copies (40 vs 10 discordant pairs) would call it significant.
    assert stats.binomtest(40, 50, 0.5).pvalue < 0.001


def _null_draw(rng, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Two equally good recipes whose per-review outcome persists across seeds.

    Each review gets a right-probability per recipe, drawn from the same distribution for
    both (so neither recipe is better), mostly near 0 or 1: a review a recipe gets wrong it
    tends to get wrong under every seed, as real fine-tunes do.
    """
    q = rng.beta(0.3, 0.1, size=(n, 2))  # mean 0.75, U-shaped
    base = rng.random((n, k)) < q[:, :1]
    var = rng.random((n, k)) < q[:, 1:]
    return base, var


def test_sign_flip_size_on_null_data_is_nominal_where_pooled_mcnemar_is_not():
    rng = np.random.default_rng(20261126)
    sims, rejected, pooled_rejected = 400, 0, 0
    for _ in range(sims):
        base, var = _null_draw(rng, n=200, k=3)
        rejected += sign_flip_test(_correct_data(base, var), n_resamples=999, seed=1).p_value < 0.05
        b, c = int(np.sum(base & ~var)), int(np.sum(~base & var))
        pooled_rejected += stats.binomtest(min(b, c), b + c, 0.5).pvalue < 0.05
    size = rejected / sims
    # 400 nulls: the rejection rate of a 5% test lies within 0.05 ± 0.027 (99% binomial band).
    assert 0.023 <= size <= 0.077, size
    assert pooled_rejected / sims > 0.15  # why the pooled table was replaced


def test_sign_flip_power_on_a_real_difference():
    # The variant is right 6 points more often (0.80 -> 0.86) on 400 reviews × 3 seeds.
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(100):
        ease = rng.normal(size=(400, 1))  # review difficulty shared by seeds and recipes
        noise = rng.normal(size=(400, 3))
        base = (ease + noise) > stats.norm.ppf(0.2) * np.sqrt(2)
        var = (ease + rng.normal(size=(400, 3))) > stats.norm.ppf(0.14) * np.sqrt(2)
        r = sign_flip_test(_correct_data(base, var), n_resamples=999, seed=2)
        hits += r.p_value < 0.05 and r.estimate > 0
    assert hits / 100 >= 0.8
