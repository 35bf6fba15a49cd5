"""Binary sentiment metrics, shared by train, evaluate and sweep.

All functions take ``labels`` (0 = negative, 1 = positive) and ``prob_positive`` (P(label 1)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

METRIC_KEYS = ("accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc", "log_loss")


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
