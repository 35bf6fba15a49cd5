"""Step 6 of ``run_training``: the saved model folder scored on validation and, once, on test.

Scored with the inference code ``predict`` uses (torch backend, the run's precision); the
validation scores are the chosen evaluation's when ``train_eval`` made it that way. Where
that is bf16, the bf16 path is first verified against fp32 on up to 500 validation reviews,
like an export (``inference.verify``), and the result is recorded in the model folder
(``bf16_verification``); a failed check makes fp32 score the splits and ``auto`` use fp32.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Scores:
    """P(positive) of the saved model folder per split, and the test split's truncated share
    (the test split is tokenized only by the Predictor, so its share is measured there)."""

    val: np.ndarray  # (n_val,)
    test: np.ndarray | None  # (n_test,)
    test_truncated: float | None


def score_splits(
    model_dir: Path, precision: str, threads: int | None, bundle, val_probs=None
) -> Scores:
    """P(positive) of the saved model folder on validation and (once) on test.

    Scored with the inference code ``predict`` uses (torch backend, the run's precision), so
    the test figures are what the shipped folder gives, with progress and ETA in the log.
    ``val_probs``: the chosen evaluation's validation P(positive), bundle order, when the
    predict path made it at this precision (``train_eval``): reused, not scored again.
    """
    from reviewsense.inference.predictor import Predictor
    from reviewsense.progress import LogProgress

    def load(precision: str) -> Predictor:
        return Predictor.from_pretrained(
            model_dir, backend="torch", precision=precision, num_threads=threads or None
        )

    predictor = load(precision if precision in ("fp32", "bf16") else "auto")  # fp16: GPU auto

    def score(name: str, split) -> tuple[np.ndarray, float]:
        progress = LogProgress(f"{name} pass", len(split), logger=log)
        preds = predictor.predict_many(split.texts, on_progress=progress.update)
        truncated = float(np.mean([p.truncated for p in preds])) if preds else 0.0
        return np.array([p.prob_positive for p in preds], dtype=np.float64), truncated

    if val_probs is not None and predictor.precision == precision:
        log.info("validation: the chosen evaluation's scores (same predict path, %s)", precision)
        val = np.asarray(val_probs, dtype=np.float64)
    else:
        val, _ = score("validation", bundle.val)
    if predictor.precision == "bf16" and bf16_refused(model_dir, threads, bundle.val.texts, val):
        predictor = load("fp32")
        val, _ = score("validation", bundle.val)
    if bundle.test is None:
        return Scores(val, None, None)
    test, share = score("test", bundle.test)
    s = predictor.settings
    log.info(
        "test: %d reviews, %.1f%% truncated at %d tokens (%s)",
        len(test),
        100 * share,
        s.max_length,
        s.truncation,
    )
    return Scores(val, test, share)


def bf16_refused(model_dir: Path, threads: int | None, texts, p_bf16: np.ndarray) -> bool:
    """Verify the bf16 path on (up to 500) validation reviews like an export and record it in
    the model folder (``inference.verify.record_bf16_check``). True when it failed: then fp32
    scores the splits."""
    from reviewsense.inference.verify import VERIFY_N, record_bf16_check

    n = min(VERIFY_N, len(texts))
    source = f"{n} validation reviews"
    return not record_bf16_check(model_dir, texts[:n], source, threads, p_bf16[:n])["passed"]
