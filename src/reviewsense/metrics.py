"""Binary sentiment metrics, shared by train, evaluate and sweep.

All functions take ``labels`` (0 = negative, 1 = positive) and ``prob_positive`` (P(label 1)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

METRIC_KEYS = ("accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc", "log_loss")

# The flag rule, decided here only: a review is flagged (predicted negative) when
# P(negative) >= threshold. With no threshold chosen (`reviewsense threshold`), 0.5 = argmax.
DEFAULT_THRESHOLD = 0.5


def is_flagged(prob_negative, threshold: float = DEFAULT_THRESHOLD):
    """The flag rule: P(negative) >= threshold (works on floats and numpy arrays)."""
    return prob_negative >= threshold


def predicted_labels(prob_positive, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Hard labels (1 = positive) from P(positive): negative exactly when the flag rule fires."""
    p_neg = 1.0 - np.asarray(prob_positive, dtype=np.float64)
    return np.where(is_flagged(p_neg, threshold), 0, 1).astype(np.int64)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (better than normal approx. near 0/1)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank statistic (ties get average rank); NaN if one class."""
    labels = np.asarray(labels, dtype=np.int64)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(
    labels: Sequence[int], prob_positive: Sequence[float], threshold: float = 0.5
) -> dict:
    """Accuracy, precision/recall/F1 (positive class), macro F1, ROC-AUC, log loss, confusion.

    Returns:
        dict with METRIC_KEYS, ``confusion_matrix`` [[tn, fp], [fn, tp]], ``n`` and
        ``accuracy_ci95`` [lo, hi] (Wilson).
    """
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(prob_positive, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in shape")
    pred = (p >= threshold).astype(np.int64)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    n = len(y)
    precision, recall, f1 = _f1(tp, fp, fn)
    _, _, f1_neg = _f1(tn, fn, fp)
    eps = 1e-12  # clip: a confident mistake costs ~27.6 nats, not infinity
    pc = np.clip(p, eps, 1 - eps)
    log_loss = float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))) if n else float("nan")
    correct = tp + tn
    return {
        "accuracy": correct / n if n else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "f1_macro": (f1 + f1_neg) / 2,
        "roc_auc": roc_auc(y, p),
        "log_loss": log_loss,
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "n": n,
        "accuracy_ci95": list(wilson_interval(correct, n)),
    }


def softmax_positive(logits: np.ndarray) -> np.ndarray:
    """P(class 1) from logits of shape (n, 2), computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e[:, 1] / e.sum(axis=1)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def choose_threshold(labels, prob_negative, *, precision_target: float) -> dict:
    """Lowest threshold t with precision(P(neg) ≥ t) ≥ target for the negative class (label 0).

    Returns:
        {"threshold", "precision", "recall", "n", "n_negative", "flagged"}

    Raises:
        DataError: no threshold reaches the target, or there are no negatives.
    """
    from reviewsense.errors import DataError

    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(prob_negative, dtype=np.float64)
    is_neg = y == 0
    n_neg = int(is_neg.sum())
    if n_neg == 0:
        raise DataError("val predictions: no negative examples (label 0); cannot set a threshold")
    order = np.argsort(-p, kind="stable")
    p_sorted, neg_sorted = p[order], is_neg[order]
    tp = np.cumsum(neg_sorted)
    k = np.arange(1, len(p) + 1)
    # Only the last position of each run of equal scores is a reachable cut (ties flag together).
    last_of_tie = np.append(p_sorted[1:] != p_sorted[:-1], True)
    prec = tp / k
    ok = last_of_tie & (prec >= precision_target)
    if not ok.any():
        best = int(np.argmax(np.where(last_of_tie, prec, -1)))
        raise DataError(
            f"no threshold reaches precision {precision_target:g} for the negative class on "
            f"{len(p)} validation predictions (best {prec[best]:.4f} at P(negative) >= "
            f"{p_sorted[best]:.4f}); lower --precision"
        )
    i = int(np.flatnonzero(ok)[-1])  # lowest threshold = most flags = highest recall
    return {
        "threshold": float(p_sorted[i]),
        "precision": float(prec[i]),
        "recall": float(tp[i] / n_neg),
        "n": int(len(p)),
        "n_negative": n_neg,
        "flagged": int(k[i]),
    }
