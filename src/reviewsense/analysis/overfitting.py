"""Overfitting by loss and by metric, kept apart, and a recommendation that agrees with both.

* by loss: eval loss rises past its noise band after its best while the training loss keeps
  falling (the model grows over-confident on what it gets wrong);
* by metric: the selection metric falls past its noise band after its best and stays there.

``overfitting`` is true when either is, false only when every series present is back within
its noise band of its best at the last evaluation, else None. The recommendation follows the
run's selection metric, so when ``overfitting`` is false the recommended checkpoint is the
last or within the noise band of it (the metric's best is within the band of the last).
"""

from __future__ import annotations

import numpy as np

from reviewsense.analysis.selection import (
    best_row,
    checkpoint_name,
    eval_size,
    infer_selection_metric,
    primary_metric,
    run_choice,
    series_of,
)
from reviewsense.analysis.series import (
    ema,
    lower_is_better,
    noise_band,
    rnd,
    smoothing_span,
)
from reviewsense.analysis.trainer_state import TrainerState
from reviewsense.analysis.verdict import overfitting_findings

MIN_EVALS = 3  # fewer evaluations cannot separate a trend from a bump
LOSS_EACH_TOL = 0.02  # every later eval loss above the best by this share ...
METRIC_EACH_TOL = 0.005  # ... or every later metric below it by this share (plus the band)
TRAIN_FELL = 0.95  # smoothed train loss at the end below this share of its value at the best


def series_verdict(
    values: list[float], lower_better: bool, band: float, each_tol: float
) -> tuple[bool | None, int, str]:
    """(verdict, index of the best value, pattern) for one eval series.

    Patterns: ``too_few`` (None), ``best_at_end`` / ``within_noise`` (False: the last is within
    ``band`` of the best), ``sustained`` (True: >= 2 later evals, each worse than the best by
    ``each_tol`` of it, the last by more than ``band`` from the best and their median by more
    than ``band`` from the median of the best and its neighbours), ``unsettled`` (None
    otherwise).
    """
    if len(values) < MIN_EVALS:
        return None, int(np.argmin(values) if lower_better else np.argmax(values)), "too_few"
    sign = 1.0 if lower_better else -1.0
    v = [sign * x for x in values]  # lower is better now
    b = int(np.argmin(v))  # first occurrence: ties go to the earliest
    after = v[b + 1 :]
    if not after:
        return False, b, "best_at_end"
    if after[-1] - v[b] <= band:
        return False, b, "within_noise"
    each = all(x - v[b] > each_tol * abs(v[b]) for x in after)
    # The best of many noisy evals is itself an extreme draw (winner's curse): the typical
    # later eval (their median) must be beyond the band from the level around the best (the
    # median of the best and its neighbours), not merely from that one lucky value. The level
    # is capped at best + band: a peak that stands out beyond the noise is a real level.
    level = min(float(np.median(v[max(0, b - 1) : b + 2])), v[b] + band)
    typical = float(np.median(after)) - level > band
    if len(after) >= 2 and each and typical:
        return True, b, "sustained"
    return None, b, "unsettled"


def _train_fell_after(state: TrainerState, step: int) -> bool | None:
    fin = np.isfinite(state.loss)
    if fin.sum() < 2 or not (state.step[fin] > step).any():
        return None
    steps, loss = state.step[fin].astype(float), state.loss[fin]
    smooth = ema(loss, smoothing_span(loss.size))
    at_best = float(np.interp(step, steps, smooth))
    return bool(smooth[-1] < TRAIN_FELL * at_best)


def _judge(state: TrainerState, rows: list[dict], key: str | None, n: int | None) -> dict | None:
    """Verdict, band and evidence for one series (``loss`` or a metric); None if absent."""
    if key is None:
        return None
    s = series_of(rows, key)
    if not s:
        return None
    values = [v for _, v in s]
    low = lower_is_better(key)
    band, source = noise_band(values, low, None if low else n)
    verdict, b, pattern = series_verdict(
        values, low, band, LOSS_EACH_TOL if key == "loss" else METRIC_EACH_TOL
    )
    best, last = s[b][0], s[-1][0]
    train_fell = _train_fell_after(state, best["step"]) if key == "loss" else None
    if key == "loss" and verdict:
        # Rising eval loss is overfitting only while the training loss keeps falling.
        verdict = True if train_fell else None
        pattern = (
            pattern if train_fell else ("no_train_loss" if train_fell is None else "train_flat")
        )
    return {
        "key": key,
        "verdict": verdict,
        "pattern": pattern,
        "band": band,
        "band_source": source,
        "best": {"epoch": best["epoch"], "step": best["step"], "value": s[b][1]},
        "last": {"epoch": last["epoch"], "step": last["step"], "value": s[-1][1]},
        "change": rnd(s[-1][1] - s[b][1], 4),
        "evaluations": len(values),
        "train_loss_fell_after_best": train_fell,
    }


def _combine(by_loss: dict | None, by_metric: dict | None) -> bool | None:
    judged = [j["verdict"] for j in (by_loss, by_metric) if j is not None]
    if any(v is True for v in judged):
        return True
    if judged and all(v is False for v in judged):
        return False
    return None


def _recommend(state: TrainerState, rows: list[dict], key: str | None, source: str | None) -> dict:
    """Recommended checkpoint by the selection metric, plus the lowest-eval-loss one."""
    out = {
        "recommended_epochs": None,
        "recommended_checkpoint": None,
        "recommended_step": None,
        "recommended_reason": None,
        "recommended_checkpoint_by_loss": None,
    }
    own = run_choice(state, rows)
    row = None
    if own is not None:
        row, out["recommended_reason"] = own[0], f"reviewsense's own choice: {own[1]}"
    elif key is not None:
        row = best_row(rows, key)
        if row is not None:
            name = "eval loss" if key == "loss" else key
            out["recommended_reason"] = (
                f"best {name}, the run's metric_for_best_model"
                if source == "metric_for_best_model"
                else f"best {name}; no metric_for_best_model recorded, so {name} was inferred"
            )
    if row is None:
        return out
    out.update(
        recommended_epochs=row["epoch"],
        recommended_step=row["step"],
        recommended_checkpoint=checkpoint_name(state, row["step"]),
    )
    by_loss = best_row(rows, "loss")
    if by_loss is not None and by_loss["step"] != row["step"]:
        out["recommended_checkpoint_by_loss"] = checkpoint_name(state, by_loss["step"])
        out["recommended_epochs_by_loss"] = by_loss["epoch"]
    return out


def _agree_with_run_choice(
    state: TrainerState, rows: list[dict], by_metric: dict | None, rec: dict
) -> None:
    """reviewsense's own pick of an earlier epoch means the metric fell beyond its noise.

    Training keeps the last evaluation unless an earlier one is more accurate on the same
    reviews by more than the paired noise band (``metrics.json`` ``best.reason``). That
    paired test is stronger than the unpaired band here, so when it picked an earlier epoch
    the verdict by metric follows it: a "no" next to "use epoch 2 of 4" would contradict.
    """
    own = run_choice(state, rows)
    if own is None or by_metric is None or not rows or own[0]["step"] == rows[-1]["step"]:
        return
    if by_metric["verdict"] is not True:
        by_metric.update(verdict=True, pattern="run_selection", run_reason=own[1])
        by_metric["best"] = {
            "epoch": own[0]["epoch"],
            "step": own[0]["step"],
            "value": own[0]["metrics"].get(by_metric["key"]),
        }


def overfitting_analysis(
    state: TrainerState, rows: list[dict], eval_size_given: int | None = None
) -> tuple[dict, list[dict]]:
    """Decide overfitting by loss and by metric and recommend a checkpoint; None if unknown."""
    selection = infer_selection_metric(state)
    metric = primary_metric(state, selection)
    source = "metric_for_best_model" if selection else ("inferred" if metric else None)
    metric_source = "metric_for_best_model" if metric and metric == selection else "inferred"
    n, n_from = eval_size(state, eval_size_given)
    by_loss = _judge(state, rows, "loss", n)
    by_metric = _judge(state, rows, metric, n)
    key = selection or metric or ("loss" if by_loss else None)
    rec = _recommend(state, rows, key, source)
    _agree_with_run_choice(state, rows, by_metric, rec)
    verdict = _combine(by_loss, by_metric) if rows else None
    out: dict = {
        "overfitting": verdict,
        "overfitting_detail": {
            "by_loss": by_loss["verdict"] if by_loss else None,
            "by_metric": by_metric["verdict"] if by_metric else None,
            "metric": metric,
            "metric_source": metric_source if metric else None,
            "noise_band": rnd(by_metric["band"], 4) if by_metric else None,
            "noise_source": by_metric["band_source"] if by_metric else None,
            "loss_noise_band": rnd(by_loss["band"], 4) if by_loss else None,
            "eval_size": n,
            "eval_size_source": n_from,
        },
        "overfitting_start_epoch": None,
        "selection_metric": selection,
        "primary_metric": metric,
        **rec,
    }
    if verdict:
        start = by_loss if by_loss and by_loss["verdict"] else by_metric
        out["overfitting_start_epoch"] = start["best"]["epoch"]
    return out, overfitting_findings(state, rows, out, by_loss, by_metric)
