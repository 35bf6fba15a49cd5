"""Small building blocks for the analysis: findings, rounding, smoothing, epochs, noise.

Pure functions on numbers and :class:`TrainerState` arrays; nothing here reads files.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import replace

import numpy as np

from reviewsense.analysis.trainer_state import TrainerState

# Grad-norm / loss spike detection (log space, rolling window of logged points).
SPIKE_WINDOW = 25
SPIKE_MIN_Z = 4.0  # robust z-score (MAD-based) of log(value) vs the local median
SPIKE_MIN_RATIO = 3.0  # and at least this many times the local median

# Noise band of an eval series: z for a 95% two-sided interval, and the floors below which a
# change is never counted (a 4-digit-rounded metric cannot resolve less).
NOISE_Z = 1.96
METRIC_NOISE_FLOOR = 0.01  # relative to the best value of a quality metric
LOSS_NOISE_FLOOR = 0.05  # relative to the lowest eval loss
# Evaluations needed for a series-based estimate: with fewer, the one real change in the
# series dominates the spread of its differences and the band would swallow it.
MIN_EVALS_FOR_SERIES_NOISE = 5

_LOWER_IS_BETTER = ("loss", "error", "wer", "cer", "perplexity", "mse", "mae", "rmse")


def finding(kind: str, message: str, **evidence: object) -> dict:
    """A finding: what was found, in words, and the numbers behind it."""
    return {"kind": kind, "message": message, "evidence": evidence}


def rnd(x: object, digits: int = 4) -> float | None:
    """Round for display/JSON: 4 significant digits, None for missing or non-finite."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def epoch_num(e: float | None) -> float | int | None:
    if e is None or not math.isfinite(e):
        return None
    return int(round(e)) if abs(e - round(e)) < 1e-6 else round(float(e), 2)


def lower_is_better(metric: str) -> bool:
    return any(tag in metric.lower() for tag in _LOWER_IS_BETTER)


# --------------------------------------------------------------------------- smoothing


def smoothing_span(n: int) -> int:
    """EMA span in logged points: about a tenth of the history, between 2 and 100."""
    return int(min(100, max(2, n // 10)))


def ema(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average that skips non-finite values (carries the last estimate)."""
    alpha = 2.0 / (span + 1.0)
    out = np.full(values.shape, np.nan)
    acc = math.nan
    for i, v in enumerate(values.tolist()):
        if math.isfinite(v):
            acc = v if math.isnan(acc) else acc + alpha * (v - acc)
        out[i] = acc
    return out


# --------------------------------------------------------------------------- epochs


def steps_per_epoch(state: TrainerState) -> float | None:
    """Optimizer steps per epoch, from step/epoch pairs in the log (None when unknown)."""
    steps = np.concatenate([state.step.astype(float), [float(r.step) for r in state.evals]])
    epochs = np.concatenate(
        [state.epoch, [np.nan if r.epoch is None else r.epoch for r in state.evals]]
    )
    ok = np.isfinite(epochs) & (epochs > 0) & (steps > 0)
    if state.epoch_resets:  # after a resume reset the counter only the first stretch is right
        ok &= steps < min(state.epoch_resets)
    if not ok.any():
        return None
    # The largest step gives the most precise ratio (old versions round epoch to 2 decimals).
    i = int(np.argmax(np.where(ok, steps, -1)))
    return float(steps[i] / epochs[i])


def epochs_from_steps(state: TrainerState) -> TrainerState:
    """A copy whose epochs are step / steps-per-epoch when the log's epoch counter was reset.

    A resumed run that restarted the epoch counter (while the step kept growing) has epochs
    that go backwards; everything downstream (epoch tables, recommendations) uses steps then.
    """
    spe = steps_per_epoch(state) if state.epoch_resets else None
    if not spe:
        return state
    evals = [replace(r, epoch=r.step / spe) for r in state.evals]
    return replace(state, epoch=state.step.astype(float) / spe, evals=evals)


def epoch_boundaries(state: TrainerState) -> list[tuple[int, int]]:
    """(epoch, step) for each completed whole epoch, estimated from the logged step/epoch pairs."""
    spe = steps_per_epoch(state)
    max_epoch = np.nanmax(state.epoch) if np.isfinite(state.epoch).any() else 0.0
    if state.evals:
        max_epoch = max([max_epoch] + [r.epoch for r in state.evals if r.epoch is not None])
    if not spe or not math.isfinite(max_epoch):
        return []
    return [(k, int(round(k * spe))) for k in range(1, int(math.floor(max_epoch + 1e-6)) + 1)]


# --------------------------------------------------------------------------- spikes


def trailing_median_mad(
    y: np.ndarray, window: int = SPIKE_WINDOW, min_history: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD of the ``window`` values before each point (NaN until ``min_history``).

    Trailing, not centred: a spike is a jump up from the recent past, and a loss that merely
    starts high (or a grad norm that is large in the first steps) is not one.
    """
    n = y.size
    med = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    for i in range(min_history, min(window, n)):  # short history: expanding window
        med[i] = np.median(y[:i])
        mad[i] = np.median(np.abs(y[:i] - med[i]))
    if n > window:
        win = np.lib.stride_tricks.sliding_window_view(y, window)[: n - window]
        m = np.median(win, axis=1)
        med[window:] = m
        mad[window:] = np.median(np.abs(win - m[:, None]), axis=1)
    return med, mad


def robust_spikes(values: np.ndarray) -> list[tuple[int, float, float]]:
    """Indices of upward outliers: (index, local median, ratio), via MAD of log values."""
    ok = np.flatnonzero(np.isfinite(values) & (values > 0))
    if ok.size < 5:
        return []
    y = np.log(values[ok])
    med, mad = trailing_median_mad(y)
    # MAD floor (5% in log space) keeps near-constant stretches from turning noise into spikes.
    sigma = np.maximum(1.4826 * mad, 0.05)
    z = (y - med) / sigma
    ratio = np.exp(y - med)
    with np.errstate(invalid="ignore"):
        hits = np.flatnonzero((z >= SPIKE_MIN_Z) & (ratio >= SPIKE_MIN_RATIO))
    return [(int(ok[h]), float(np.exp(med[h])), float(ratio[h])) for h in hits]


# --------------------------------------------------------------------------- noise


def binomial_band(p: float, n: int) -> float:
    """Half-width of the 95% interval of a proportion-like metric (accuracy, F1) on ``n`` items."""
    p = min(max(p, 0.0), 1.0)
    return NOISE_Z * math.sqrt(p * (1.0 - p) / n)


def series_band(values: list[float]) -> float | None:
    """Half-width of a 95% band estimated from the series itself (None when too short).

    Successive differences cancel a slow trend, and their spread is the spread of a
    difference between two evaluations, which is what the verdict compares (the best against
    the last). Robust: 1.4826 * MAD of the differences estimates their sigma. Metrics that
    move in steps of 1/n often repeat exactly (MAD = 0); then the mean absolute deviation
    (sigma = 1.2533 * it) is used instead so that such a series does not claim zero noise.
    """
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    d = np.diff(v)
    if v.size < MIN_EVALS_FOR_SERIES_NOISE:
        return None
    dev = np.abs(d - np.median(d))
    mad = float(np.median(dev))
    sigma_d = 1.4826 * mad if mad > 0 else 1.2533 * float(dev.mean())
    return NOISE_Z * sigma_d


def noise_band(values: list[float], lower_better: bool, eval_size: int | None) -> tuple[float, str]:
    """The band a change must exceed to count, and how it was obtained.

    Args:
        values: the eval series (metric or loss), in eval order.
        lower_better: True for losses/errors (binomial SE does not apply to them).
        eval_size: examples per evaluation, when known.

    Returns:
        (half-width in the series' units, source) with source ``binomial``, ``series_mad`` or
        ``floor`` (the relative floor was larger than the estimate or no estimate exists).
    """
    fin = [x for x in values if x is not None and math.isfinite(x)]
    if not fin:
        return 0.0, "floor"
    best = min(fin) if lower_better else max(fin)
    floor = abs(best) * (LOSS_NOISE_FLOOR if lower_better else METRIC_NOISE_FLOOR)
    if eval_size and not lower_better and 0.0 <= best <= 1.0:
        band, source = binomial_band(best, eval_size), "binomial"
    else:
        est = series_band(fin)
        band, source = (est, "series_mad") if est is not None else (0.0, "floor")
    return (band, source) if band >= floor else (floor, "floor")
