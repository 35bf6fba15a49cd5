"""Which eval metric a run is judged by, the eval table, and the recommended checkpoint.

The metric the user chose wins: the Trainer's ``metric_for_best_model`` is not stored in
``trainer_state.json``, so it is recognised as the eval key whose value at the best
checkpoint equals ``best_metric``. Without one, aggregate metrics (overall/macro F1, F1,
accuracy) are preferred over per-class or per-entity keys such as ``T005_f1``.
"""

from __future__ import annotations

import math
import re

import numpy as np

from reviewsense.analysis.series import epoch_num, lower_is_better, rnd, steps_per_epoch
from reviewsense.analysis.trainer_state import TrainerState

# Aggregate quality metrics, most preferred first (what "the metric" of a run usually is).
AGGREGATE_METRICS = (
    "overall_f1",
    "macro_f1",
    "f1_macro",
    "f1",
    "overall_accuracy",
    "accuracy",
    "roc_auc",
    "auc",
    "matthews_correlation",
)
_CKPT_STEP = re.compile(r"checkpoint-(\d+)\s*$")


def checkpoint_step(ckpt: object) -> int | None:
    """The step N of a ``.../checkpoint-N`` path (either slash), or None."""
    if not isinstance(ckpt, str):
        return None
    m = _CKPT_STEP.search(ckpt.replace("\\", "/").rstrip("/"))
    return int(m.group(1)) if m else None


def _aggregate_rank(name: str) -> tuple[int, int, str]:
    """Sort key: listed aggregates first, then short generic names, per-class keys last."""
    if name in AGGREGATE_METRICS:
        return (0, AGGREGATE_METRICS.index(name), name)
    return (1, name.count("_") + sum(c.isdigit() for c in name), name)


def infer_selection_metric(state: TrainerState) -> str | None:
    """The run's ``metric_for_best_model``, recognised by matching ``best_metric`` to an eval.

    The eval at the best checkpoint's step is checked first; when several keys hold the same
    value there, the aggregate one wins (``loss`` counts as the Trainer's default).
    """
    best = state.header.get("best_metric")
    if not isinstance(best, int | float) or not math.isfinite(best):
        return None
    best_step = state.header.get("best_global_step") or checkpoint_step(
        state.header.get("best_model_checkpoint")
    )
    rows = sorted(state.evals, key=lambda r: r.step != best_step)  # the best step's row first
    for r in rows:
        values = {"loss": r.loss, **r.metrics}
        hits = [
            name
            for name, v in values.items()
            if v is not None and math.isclose(v, best, rel_tol=1e-9, abs_tol=1e-12)
        ]
        if hits:
            return "loss" if "loss" in hits else min(hits, key=_aggregate_rank)
    return None


def primary_metric(state: TrainerState, selection: str | None) -> str | None:
    """The quality metric to track: the run's selection metric, else the best aggregate."""
    names = {m for r in state.evals for m in r.metrics}
    if selection and selection != "loss" and selection in names:
        return selection
    quality = [n for n in names if not lower_is_better(n)]
    return min(quality or names, key=_aggregate_rank) if names else None


def eval_size(state: TrainerState, given: int | None = None) -> tuple[int | None, str | None]:
    """Examples per evaluation and where that number came from (None when unknown)."""
    if given:
        return int(given), "--eval-size"
    rm = state.run_metrics or {}
    for where, v in (
        ("metrics.json data.val", (rm.get("data") or {}).get("val")),
        ("metrics.json best_validation.n", (rm.get("best_validation") or {}).get("n")),
        ("metrics.json n", rm.get("n")),
    ):
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v, where
    sizes = [r.n_samples for r in state.evals if r.n_samples]
    return (sizes[-1], "eval_samples") if sizes else (None, None)


def _train_loss_near(
    state: TrainerState, prev_step: int, step: int, spe: float | None
) -> float | None:
    """Mean train loss logged in (prev_step, step], else the last one within an epoch before."""
    fin = np.isfinite(state.loss)
    sel = fin & (state.step > prev_step) & (state.step <= step)
    if sel.any():
        return float(state.loss[sel].mean())
    before = np.flatnonzero(fin & (state.step <= step))
    # An older log would compare eval against a stale train loss and invent a gap.
    if before.size and spe and step - state.step[before[-1]] <= spe:
        return float(state.loss[before[-1]])
    return None


def eval_rows(state: TrainerState) -> list[dict]:
    """One row per evaluation: epoch, step, eval loss, metrics, train loss nearby, gap."""
    rows, prev = [], -1
    spe = steps_per_epoch(state)
    for r in sorted(state.evals, key=lambda r: r.step):
        train = _train_loss_near(state, prev, r.step, spe)
        gap = r.loss - train if (r.loss is not None and train is not None) else None
        rows.append(
            {
                "epoch": epoch_num(r.epoch),
                "step": r.step,
                "eval_loss": rnd(r.loss, 6),
                "metrics": {k: rnd(v, 6) for k, v in sorted(r.metrics.items())},
                "train_loss": rnd(train, 6),
                "train_eval_gap": rnd(gap, 4),
            }
        )
        prev = r.step
    return rows


def series_of(rows: list[dict], key: str) -> list[tuple[dict, float]]:
    """(row, value) for every eval that has ``key`` (``loss`` = eval loss)."""
    out = []
    for r in rows:
        v = r["eval_loss"] if key == "loss" else r["metrics"].get(key)
        if v is not None and math.isfinite(v):
            out.append((r, v))
    return out


def best_row(rows: list[dict], key: str) -> dict | None:
    """The eval where ``key`` is best; ties go to the earliest (less training, same result)."""
    s = series_of(rows, key)
    if not s:
        return None
    sign = 1.0 if lower_is_better(key) else -1.0
    best = min(sign * v for _, v in s)
    return next(r for r, v in s if sign * v == best)


def checkpoint_name(state: TrainerState, step: int) -> str:
    """The Trainer's own checkpoint path when it names this step, else ``checkpoint-<step>``."""
    ckpt = state.header.get("best_model_checkpoint")
    return str(ckpt) if checkpoint_step(ckpt) == step else f"checkpoint-{step}"


def run_choice(state: TrainerState, rows: list[dict]) -> tuple[dict, str] | None:
    """reviewsense's own pick (``metrics.json`` ``best``) as (eval row, reason), if any."""
    best = (state.run_metrics or {}).get("best") or {}
    step = best.get("step") or checkpoint_step(best.get("checkpoint"))
    row = next((r for r in rows if step is not None and r["step"] == step), None)
    epoch = best.get("epoch", best.get("epoch_index"))
    if row is None and isinstance(epoch, int | float) and not isinstance(epoch, bool):
        row = next(
            (r for r in rows if r["epoch"] is not None and abs(r["epoch"] - epoch) < 1e-6), None
        )
    if row is None:
        return None
    reason = best.get("reason")
    if not reason:
        reason = f"the run's best checkpoint by {best.get('metric') or 'its selection metric'}"
    return row, str(reason)
