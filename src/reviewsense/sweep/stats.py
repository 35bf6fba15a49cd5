"""Paired statistics for comparing two training recipes (pure numpy/scipy).

A sweep runs each variant over the same seeds and scores every run on the same test reviews,
so a variant and the baseline are compared *paired*, with the **review** as the unit:

* :func:`sign_flip_test` — the primary test. Per review, correctness is averaged over seeds
  for each recipe; the test asks whether the mean over reviews of (variant − baseline) differs
  from 0, by flipping the sign of each review's difference (a paired permutation test: under
  "no difference" the two recipes' labels are exchangeable *within a review*). Pooling every
  (review, seed) pair into one McNemar table instead would count a review scored under three
  seeds as three independent pieces of evidence, and its p-values come out too small whenever
  a review's outcome is shared across seeds (which is the usual case).
* :func:`paired_bootstrap` — percentile interval for the difference in accuracy and F1,
  resampling *test reviews* with all their seeds kept together (a cluster bootstrap).
* :func:`t_interval` — Student-t interval over per-seed differences: captures training
  (seed-to-seed) variability, which the two above do not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass
class IntervalResult:
    """A point estimate with a two-sided interval."""

    estimate: float
    lo: float | None
    hi: float | None
    n: int  # seeds (t-interval) or resamples (bootstrap)
    p_value: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReviewTestResult:
    """Sign-flip test on per-review differences (variant − baseline correctness, seed mean)."""

    estimate: float  # mean over reviews of the per-review difference (accuracy points / 100)
    n_reviews: int  # reviews with at least one paired prediction
    better: int  # reviews where the variant is right more often than the baseline
    worse: int  # the reverse
    p_value: float  # two-sided
    n_resamples: int  # 0: exact (every sign pattern enumerated)

    def to_dict(self) -> dict:
        return asdict(self)


def t_interval(deltas: np.ndarray, confidence: float = 0.95) -> IntervalResult:
    """Student-t interval for the mean of per-seed differences.

    Args:
        deltas: one difference (variant − baseline) per seed.
        confidence: interval coverage.

    Returns:
        IntervalResult; ``lo``/``hi`` are None with fewer than 2 seeds. ``p_value`` is the
        two-sided one-sample t-test against 0 (None when undefined).
    """
    d = np.asarray(deltas, dtype=float)
    n = int(d.size)
    if n == 0:
        return IntervalResult(estimate=float("nan"), lo=None, hi=None, n=0)
    mean = float(d.mean())
    if n < 2:
        return IntervalResult(estimate=mean, lo=None, hi=None, n=n)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / np.sqrt(n)
    p = None
    if sd > 0:
        p = float(2 * stats.t.sf(abs(mean) / (sd / np.sqrt(n)), n - 1))
    elif mean != 0:
        p = 0.0
    return IntervalResult(estimate=mean, lo=mean - half, hi=mean + half, n=n, p_value=p)


@dataclass
class PairedData:
    """Test predictions of a baseline and a variant, aligned by review and seed.

    Arrays are (reviews × seeds); ``present`` marks which (review, seed) cells exist (a seed's
    test subset may differ); absent cells are ignored.
    """

    labels: np.ndarray  # int 0/1
    base_pred: np.ndarray  # int 0/1
    var_pred: np.ndarray  # int 0/1
    present: np.ndarray  # bool

    @property
    def n_pairs(self) -> int:
        return int(self.present.sum())


def _metric_from_counts(metric: str, W: np.ndarray, y: np.ndarray, p: np.ndarray, m: np.ndarray):
    """Accuracy or F1 per resample and seed, from resample weights ``W`` (B × reviews)."""
    ym, pm = y * m, p * m
    if metric == "accuracy":
        correct = ((y == p) & m.astype(bool)).astype(float)
        return (W @ correct) / np.maximum(W @ m.astype(float), 1)
    if metric == "f1":
        tp = W @ (ym * pm).astype(float)
        fp = W @ ((1 - y) * m * pm).astype(float)
        fn = W @ (ym * (1 - p)).astype(float)
        denom = 2 * tp + fp + fn
        return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    raise ValueError(f"unknown metric {metric!r} (accuracy | f1)")


def paired_bootstrap(
    data: PairedData,
    metric: str = "accuracy",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> IntervalResult:
    """Cluster bootstrap of (variant − baseline) over test reviews, averaged over seeds.

    Each resample draws reviews with replacement and keeps every seed's prediction for a drawn
    review, so the interval reflects test-set sampling noise without treating the same review
    under three seeds as three independent reviews.

    Args:
        data: aligned predictions.
        metric: ``accuracy`` or ``f1``.
        n_resamples: bootstrap resamples.
        confidence: interval coverage.
        seed: RNG seed (the report is reproducible).

    Returns:
        IntervalResult: point estimate on the full data, percentile interval, and a two-sided
        p-value (twice the share of resampled differences on the far side of zero, the
        percentile-interval inversion; floored at 1/n_resamples).
    """
    y = np.asarray(data.labels, dtype=np.int64)
    m = np.asarray(data.present, dtype=np.int64)
    bp = np.asarray(data.base_pred, dtype=np.int64)
    vp = np.asarray(data.var_pred, dtype=np.int64)
    n_rev = y.shape[0]
    if n_rev == 0 or m.sum() == 0:
        return IntervalResult(estimate=float("nan"), lo=None, hi=None, n=0)
    seeds_used = m.any(axis=0)  # a seed without any paired review does not count
    full = np.ones((1, n_rev))
    est = float(
        (_metric_from_counts(metric, full, y, vp, m) - _metric_from_counts(metric, full, y, bp, m))[
            0, seeds_used
        ].mean()
    )
    rng = np.random.default_rng(seed)
    deltas = np.empty(n_resamples)
    chunk = max(1, min(n_resamples, 2_000_000 // max(n_rev, 1)))  # bounds memory (B × n)
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        idx = rng.integers(0, n_rev, size=(b, n_rev))
        # Row i of W counts how often each review was drawn in resample i.
        flat = (idx + (np.arange(b) * n_rev)[:, None]).ravel()
        W = np.bincount(flat, minlength=b * n_rev).reshape(b, n_rev).astype(float)
        d = _metric_from_counts(metric, W, y, vp, m) - _metric_from_counts(metric, W, y, bp, m)
        deltas[start : start + b] = d[:, seeds_used].mean(axis=1)
    alpha = 1 - confidence
    lo, hi = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    tail = min(np.mean(deltas <= 0), np.mean(deltas >= 0))
    p = float(min(1.0, max(2 * tail, 1.0 / n_resamples)))
    return IntervalResult(estimate=est, lo=float(lo), hi=float(hi), n=n_resamples, p_value=p)


def mean_std(values: list[float] | np.ndarray) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1; 0.0 for one value, None for none)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return None, None
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def review_differences(data: PairedData) -> np.ndarray:
    """Per-review (variant − baseline) correctness, each averaged over the review's seeds.

    Returns an (r,) float array, one value in [-1, 1] per review with at least one paired
    prediction (reviews without any are dropped).
    """
    m = np.asarray(data.present, dtype=bool)
    y = np.asarray(data.labels)
    diff = (np.asarray(data.var_pred) == y).astype(float) - (np.asarray(data.base_pred) == y)
    k = m.sum(axis=1)  # (reviews,) seeds per review
    keep = k > 0
    return (diff * m).sum(axis=1)[keep] / k[keep]


EXACT_MAX_NONZERO = 12  # up to 2**12 sign patterns: enumerate them instead of sampling


def _flip_sums(d: np.ndarray, n_resamples: int, seed: int) -> tuple[np.ndarray, int]:
    """Sums of ``d`` under random (or, for few values, all) sign patterns, and the count used."""
    m = d.size
    if m <= EXACT_MAX_NONZERO:
        patterns = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) * 2 - 1  # (2**m, m)
        return patterns @ d, 0
    rng = np.random.default_rng(seed)
    sums = np.empty(n_resamples)
    chunk = max(1, min(n_resamples, 2_000_000 // m))  # bounds memory (chunk × m)
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        signs = rng.integers(0, 2, size=(b, m), dtype=np.int8) * 2 - 1
        sums[start : start + b] = signs @ d
    return sums, n_resamples


def sign_flip_test(data: PairedData, n_resamples: int = 10_000, seed: int = 0) -> ReviewTestResult:
    """Two-sided paired permutation (sign-flip) test with the review as the unit.

    Statistic: the sum over reviews of the per-review difference (:func:`review_differences`);
    reviews with difference 0 do not change under a flip and are left out of the resampling.
    With few non-zero reviews every sign pattern is enumerated (exact p); otherwise
    ``n_resamples`` random patterns give p = (1 + #{|flipped| >= |observed|}) / (1 + B), which
    never reports 0 and keeps the test's size at most nominal.
    """
    d = review_differences(data)
    nz = d[d != 0]
    better, worse = int((nz > 0).sum()), int((nz < 0).sum())
    estimate = float(d.mean()) if d.size else float("nan")
    if nz.size == 0:
        return ReviewTestResult(estimate, int(d.size), 0, 0, 1.0, 0)
    observed = abs(float(nz.sum()))
    sums, used = _flip_sums(nz, n_resamples, seed)
    hits = int(np.sum(np.abs(sums) >= observed - 1e-9))
    p = hits / sums.size if used == 0 else (1 + hits) / (1 + used)
    return ReviewTestResult(estimate, int(d.size), better, worse, float(min(1.0, p)), used)
