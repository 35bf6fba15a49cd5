"""The one home of the epoch/checkpoint selection rule (training, ``analyze``, early stopping).

Rule: the **last** evaluation is kept unless an earlier one is more accurate on the *same*
validation reviews by more than the paired noise band; among the earlier evaluations that
clear the band, the most accurate one wins (ties: the later one). With linear learning-rate
decay the last evaluation is the recipe's natural end point, so it is the default and the
burden of proof is on an earlier one.

Method: the normal interval on the difference of two paired proportions (the per-review
correctness of two evaluations on the same reviews), computed from the discordant counts
``b`` (earlier right, last wrong) and ``c`` (earlier wrong, last right) of ``n`` reviews:

    d = (b - c) / n
    sd(d) = sqrt((b + c) - (b - c)^2 / n) / n
    band = z * sd(d) + 1 / n          (z = two-sided normal quantile of ``confidence``)

An earlier evaluation is "better" when ``d > band``, i.e. the lower end of its interval is
above zero. Why this and not McNemar's p-value: it gives the band in accuracy points, which
is what the ``reason`` sentence and ``metrics.json`` report, and the early-stopping callback
compares against. The ``1/n`` continuity correction (Edwards) keeps the decision close to the
exact McNemar test when few reviews are discordant, where the plain normal interval is
anti-conservative (5 vs 0 discordant reviews: plain interval says "better", exact McNemar
p = 0.0625 does not; with the correction neither does the band).

Each earlier evaluation is compared with the last at ``confidence`` on its own (no
family-wise correction): with k earlier evaluations the chance of a spurious switch on pure
noise is up to about k x (1 - confidence) / 2 (one-sided).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from reviewsense.errors import DataError
from reviewsense.metrics import predicted_labels

METHOD = (
    "paired difference in accuracy on the same reviews: normal interval from the discordant "
    "counts with continuity correction (1/n)"
)


def _labels(labels) -> np.ndarray:
    """Validate labels: a non-empty 1-D array of 0/1, returned as int64 (n,)."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(
            f"selection: labels must be a non-empty 1-D array, got shape {arr.shape}; "
            "pass one 0/1 label per validation review"
        )
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"selection: label at position {i} is {arr[i]!r}; labels must be 0 (negative) "
            "or 1 (positive)"
        )
    return arr.astype(np.int64)


def _probs(prob_positive, n: int, what: str) -> np.ndarray:
    """Validate one evaluation's P(positive): shape (n,), finite, within [0, 1]."""
    arr = np.asarray(prob_positive, dtype=np.float64)
    if arr.shape != (n,):
        raise DataError(
            f"selection: {what} has shape {arr.shape}, expected ({n},) (one P(positive) per "
            "validation review, the same reviews in the same order for every evaluation)"
        )
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise DataError(f"selection: {what} holds values outside [0, 1] or NaN; pass P(positive)")
    return arr


def _z(confidence: float) -> float:
    """Two-sided normal quantile for ``confidence`` in (0, 1), e.g. 1.96 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise DataError(f"selection: confidence must be in (0, 1), got {confidence!r}")
    return float(norm.ppf(0.5 + confidence / 2.0))


def _paired(correct_a: np.ndarray, correct_b: np.ndarray, z: float) -> dict:
    """Accuracy(a) - accuracy(b) on the same reviews and its noise band (fractions)."""
    n = correct_a.size
    b = int(np.sum(correct_a & ~correct_b))  # a right, b wrong
    c = int(np.sum(~correct_a & correct_b))  # a wrong, b right
    diff = (b - c) / n
    sd = math.sqrt(max(0.0, (b + c) - (b - c) ** 2 / n)) / n
    band = z * sd + 1.0 / n
    return {"difference": diff, "noise_band": band, "discordant": (b, c), "n": n}


def paired_difference(labels, p_a, p_b, confidence: float = 0.95) -> dict:
    """Accuracy of ``p_a`` minus accuracy of ``p_b`` on the same reviews, with its band.

    Returns ``{"difference", "noise_band", "discordant": (a_only_right, b_only_right), "n",
    "significant"}``; ``significant`` means ``difference > noise_band`` (a better than b).
    """
    y = _labels(labels)
    a = predicted_labels(_probs(p_a, y.size, "p_a")) == y
    b = predicted_labels(_probs(p_b, y.size, "p_b")) == y
    out = _paired(a, b, _z(confidence))
    out["significant"] = out["difference"] > out["noise_band"]
    return out


def is_significantly_better(labels, p_new, p_ref, confidence: float = 0.95) -> bool:
    """True when ``p_new`` beats ``p_ref`` in accuracy by more than the paired noise band.

    For early stopping: an evaluation "improves" only when this is true against the
    reference (the best evaluation so far), so noise does not reset the patience counter.
    """
    return bool(paired_difference(labels, p_new, p_ref, confidence)["significant"])


def _pt(x: float) -> str:
    """A fraction as accuracy points with one decimal, e.g. 0.0248 -> '2.5'."""
    return f"{abs(x) * 100:.1f}"


def _reason(chosen: int, last: int, cmp: dict | None, epochs: Sequence) -> str:
    """The one-sentence explanation stored with the choice (``cmp``: the deciding comparison)."""
    if cmp is None:
        return "last epoch kept: it is the only evaluation"
    other, diff, band = epochs[cmp["index"]], cmp["difference"], _pt(cmp["noise_band"])
    if chosen != last:
        return (
            f"epoch {other} chosen over the last (epoch {epochs[last]}): better by "
            f"{_pt(diff)} pt, outside the ±{band} pt noise band"
        )
    if diff > 0:
        return f"last epoch kept: epoch {other} better by {_pt(diff)} pt, inside the ±{band} pt noise band"
    how = "as accurate as" if diff == 0 else f"{_pt(diff)} pt worse than"
    return f"last epoch kept: the best earlier epoch ({other}) is {how} the last (noise band ±{band} pt)"


def select_epoch(
    labels,
    prob_positive_by_eval: Sequence,
    *,
    confidence: float = 0.95,
    epochs: Sequence | None = None,
) -> dict:
    """Choose the evaluation to keep (see the module docstring for the rule and method).

    ``labels``: (n,) 0/1 labels of the validation reviews; ``prob_positive_by_eval``: one
    (n,) array of P(positive) per evaluation, in order, on those same reviews. ``epochs``:
    optional display numbers of the evaluations (default 1, 2, ...).

    Returns ``{"index"`` (0-based position of the chosen evaluation), ``"epoch_index"``
    (its epoch number, ``epochs[index]``), ``"reason"``, ``"noise_band"`` and
    ``"difference"`` (fractions of accuracy: the deciding comparison, earlier minus last),
    ``"method"``, ``"accuracy_by_eval"``, ``"last_index"}``.
    """
    y = _labels(labels)
    if len(prob_positive_by_eval) == 0:
        raise DataError("selection: no evaluations given; pass at least one array of P(positive)")
    k = len(prob_positive_by_eval)
    epochs = list(range(1, k + 1)) if epochs is None else list(epochs)
    if len(epochs) != k:
        raise DataError(f"selection: {len(epochs)} epoch numbers for {k} evaluations")
    z = _z(confidence)
    correct = [
        predicted_labels(_probs(p, y.size, f"evaluation {i}")) == y
        for i, p in enumerate(prob_positive_by_eval)
    ]
    acc = [float(c.mean()) for c in correct]
    last = k - 1
    cmps = [dict(_paired(correct[i], correct[last], z), index=i) for i in range(last)]
    cleared = [c for c in cmps if c["difference"] > c["noise_band"]]
    # Best accuracy wins; ties go to the later evaluation (closer to the recipe's end).
    pool = cleared or cmps
    deciding = max(pool, key=lambda c: (acc[c["index"]], c["index"])) if pool else None
    chosen = deciding["index"] if cleared else last
    return {
        "index": chosen,
        "epoch_index": epochs[chosen],
        "reason": _reason(chosen, last, deciding, epochs),
        "noise_band": deciding["noise_band"] if deciding else 0.0,
        "difference": deciding["difference"] if deciding else 0.0,
        "method": METHOD,
        "accuracy_by_eval": acc,
        "last_index": last,
    }
