"""Paired statistics for comparing two training recipes (pure numpy/scipy).

A sweep runs each variant over the same seeds and scores every run on the same test reviews,
so a variant and the baseline are compared *paired*:

* :func:`mcnemar` — exact (and mid-p) McNemar test on paired correct/incorrect predictions,
  pooled over seeds: only the discordant reviews (one model right, the other wrong) carry
  information about which is better.
* :func:`paired_bootstrap` — percentile interval (and a two-sided p-value) for the difference
  in accuracy and F1, resampling *test reviews* with all their seeds kept together (a cluster
  bootstrap): the same review scored under several seeds is not independent evidence.
* :func:`t_interval` — Student-t interval over per-seed differences: captures training
  (seed-to-seed) variability, which the two tests above do not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass
class McNemarResult:
    """McNemar test on paired predictions.

    ``b``: reviews the baseline got right and the variant wrong; ``c``: the reverse.
    """

    b: int
    c: int
    n: int  # paired reviews (all, not only discordant)
    p_exact: float  # two-sided exact binomial test on b vs c
    p_mid: float  # mid-p variant: less conservative, close to nominal size (Fagerland 2013)

    def to_dict(self) -> dict:
        return asdict(self)


def mcnemar(base_correct: np.ndarray, variant_correct: np.ndarray) -> McNemarResult:
    """Exact and mid-p McNemar test.

    Args:
        base_correct: boolean array, baseline prediction correct per (review, seed) pair.
        variant_correct: same shape, the variant's.

    Returns:
        McNemarResult with two-sided p-values (1.0 when there are no discordant pairs).
    """
    a = np.asarray(base_correct, dtype=bool)
    v = np.asarray(variant_correct, dtype=bool)
    if a.shape != v.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {v.shape}")
    b = int(np.sum(a & ~v))
    c = int(np.sum(~a & v))
    n_disc = b + c
    if n_disc == 0:
        return McNemarResult(b=b, c=c, n=int(a.size), p_exact=1.0, p_mid=1.0)
    k = min(b, c)
    # Two-sided exact p = 2 * P(X <= k), X ~ Binomial(b + c, 1/2); mid-p subtracts P(X = k).
    p_exact = min(1.0, 2.0 * float(stats.binom.cdf(k, n_disc, 0.5)))
    p_mid = 2.0 * float(stats.binom.cdf(k, n_disc, 0.5)) - float(stats.binom.pmf(k, n_disc, 0.5))
    return McNemarResult(b=b, c=c, n=int(a.size), p_exact=p_exact, p_mid=min(1.0, p_mid))


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
