"""Health checks an experienced engineer runs on a log before trusting it.

``not_learning``, ``loss_collapse``, ``eval_spike``, ``resumed_run``, ``class_imbalance`` and
``train_loss_explained``: each returns findings with the numbers behind them (or nothing).
Every threshold is documented in ``docs/ANALYZE.md``.
"""

from __future__ import annotations

import math

import numpy as np

from reviewsense.analysis.selection import series_of
from reviewsense.analysis.series import finding, rnd, steps_per_epoch
from reviewsense.analysis.trainer_state import TrainerState

LN_K_TOL = 0.03  # eval loss within 3% of ln(k) ...
FLAT_TOL = 0.05  # ... and never moving more than 5% of its median over the run
MAX_CLASSES = 1000
CHANCE_MARGIN = 0.10  # accuracy above 1/k + this means the model learned something
TRAIN_FLAT_RATIO = 0.98  # last-quarter median train loss >= 98% of the first quarter's
MIN_TRAIN_LOGS = 10
ZERO_LOSS = 1e-6  # a training loss at or below this is "zero"
ZERO_RUN = 5  # consecutive zero-loss logs that make a collapse
TINY_EVAL_LOSS = 1e-4  # an eval loss below this on held-out data is not believable
SPIKE_LOSS_RATIO = 1.5  # eval loss this many times its larger neighbour ...
SPIKE_METRIC_DROP = 0.15  # ... or a [0, 1] metric this far below its lower neighbour ...
SPIKE_RECOVERY = 0.25  # ... while the neighbours differ by at most this share of the jump
SPIKE_MOVED_MIN = 0.02  # a metric "moved with it" when it left its neighbours by this much
TRAIN_LOSS_LOW = 0.5  # summary train_loss below half the lowest logged loss: inconsistent
IMBALANCE_GAP = 0.25  # accuracy minus macro-F1 at the last evaluation
RECALL_NEAR_ZERO = 0.05
EXPLAIN_TOL = 0.10  # summary train_loss vs the last logged loss, relative
_MACRO_KEYS = ("macro_f1", "f1_macro", "overall_f1", "f1_macro_avg")


def _quarter_medians(loss: np.ndarray) -> tuple[float, float]:
    q = max(1, loss.size // 4)
    return float(np.median(loss[:q])), float(np.median(loss[-q:]))


def _ln_k(value: float) -> int | None:
    """The class count k whose ln(k) is within LN_K_TOL of ``value`` (uniform-guess loss)."""
    if not (math.log(2) * (1 - LN_K_TOL) <= value <= math.log(MAX_CLASSES) * (1 + LN_K_TOL)):
        return None
    k = max(2, round(math.exp(value)))
    best = min((k - 1, k, k + 1), key=lambda c: abs(value - math.log(max(c, 2))))
    best = max(best, 2)
    return best if abs(value - math.log(best)) <= LN_K_TOL * math.log(best) else None


def not_learning(state: TrainerState, rows: list[dict]) -> list[dict]:
    """Eval loss flat at ln(k) with accuracy near 1/k, or a training loss that never falls."""
    out = []
    losses = [v for _, v in series_of(rows, "loss")]
    if len(losses) >= 2:
        med = float(np.median(losses))
        flat = (max(losses) - min(losses)) <= FLAT_TOL * med
        k = _ln_k(med) if flat else None
        acc = [v / 100.0 if v > 1.0 else v for _, v in series_of(rows, "accuracy")]
        if k and not (acc and max(acc) > 1.0 / k + CHANCE_MARGIN):
            out.append(
                finding(
                    "not_learning",
                    f"Eval loss stays at {rnd(med)} over all {len(losses)} evaluations, within "
                    f"{LN_K_TOL:.0%} of ln({k}) = {math.log(k):.4f}: the loss of a uniform guess "
                    f"over {k} classes"
                    + (
                        f"; accuracy {rnd(min(acc))}-{rnd(max(acc))} is at chance (1/{k})"
                        if acc
                        else ""
                    )
                    + ". The model learned nothing: check labels, learning rate and that the "
                    "classifier head is trained.",
                    eval_loss_median=rnd(med),
                    eval_loss_range=[rnd(min(losses)), rnd(max(losses))],
                    classes_guess=k,
                    ln_classes=rnd(math.log(k)),
                    accuracy_range=[rnd(min(acc)), rnd(max(acc))] if acc else None,
                )
            )
    fin = state.loss[np.isfinite(state.loss)]
    # A flat training loss with an eval loss that clearly fell is a model that learned early
    # (e.g. a resumed or easy fine-tune), not one that learns nothing.
    eval_fell = len(losses) >= 2 and (losses[0] - min(losses)) > FLAT_TOL * losses[0]
    if fin.size >= MIN_TRAIN_LOGS and not eval_fell:
        first, last = _quarter_medians(fin)
        if last >= TRAIN_FLAT_RATIO * first:
            out.append(
                finding(
                    "not_learning",
                    f"Training loss never falls: median {rnd(first)} in the first quarter of the "
                    f"logs and {rnd(last)} in the last. Check the learning rate (too low, or "
                    "zero after a schedule mistake), frozen weights and the labels.",
                    first_quarter_median=rnd(first),
                    last_quarter_median=rnd(last),
                    train_logs=int(fin.size),
                )
            )
    return out


def _longest_zero_run(state: TrainerState) -> tuple[int, int | None, int | None]:
    zero = np.isfinite(state.loss) & (np.abs(state.loss) <= ZERO_LOSS)
    best, start, cur = 0, None, 0
    for i, z in enumerate(zero.tolist()):
        cur = cur + 1 if z else 0
        if cur > best:
            best, start = cur, i - cur + 1
    if not best:
        return 0, None, None
    return best, int(state.step[start]), int(state.step[start + best - 1])


def loss_collapse(state: TrainerState, rows: list[dict]) -> list[dict]:
    """Training loss exactly 0 for many logs, or an eval loss far below any honest value."""
    run, first, last = _longest_zero_run(state)
    evals = series_of(rows, "loss")
    tiny = min(evals, key=lambda rv: rv[1]) if evals else None
    tiny = tiny if tiny and tiny[1] < TINY_EVAL_LOSS else None
    if run < ZERO_RUN and tiny is None:
        return []
    said = []
    if run >= ZERO_RUN:
        said.append(
            f"training loss is <= {ZERO_LOSS:g} in {run} consecutive logs (steps {first}-{last})"
        )
    if tiny is not None:
        said.append(f"eval loss reaches {tiny[1]:.3g} at step {tiny[0]['step']}")
    honest = min(v for _, v in evals) if evals and tiny is None else None
    note = (
        f" The eval loss stays at or above {rnd(honest)}, so memorisation of a small training "
        "set is the likelier cause; still check for train/eval duplicates."
        if honest is not None
        else ""
    )
    return [
        finding(
            "loss_collapse",
            "Loss collapse: " + " and ".join(said) + ". Held-out data is never this easy: "
            "suspect label leakage (the label or an ID in the text), duplicates between train "
            "and eval, or trivially separable labels." + note,
            zero_loss_run=run,
            zero_loss_steps=[first, last] if run else None,
            min_eval_loss=tiny[1] if tiny else None,
            min_eval_loss_step=tiny[0]["step"] if tiny else None,
        )
    ]


def _spike_at(prev: float, cur: float, nxt: float, up: bool) -> float | None:
    """Size of a one-eval excursion that recovers (None when it is not one)."""
    edge = max(prev, nxt) if up else min(prev, nxt)
    jump = cur - edge if up else edge - cur
    if jump <= 0 or abs(nxt - prev) > SPIKE_RECOVERY * jump:
        return None
    if up:
        return jump if edge > 0 and cur >= SPIKE_LOSS_RATIO * edge else None
    return jump if jump >= SPIKE_METRIC_DROP else None


def _moved(rows: list[dict], i: int) -> dict:
    """Metrics that left both neighbours at eval ``i``: name -> [prev, here, next]."""
    moved = {}
    for name, v in rows[i]["metrics"].items():
        p, n = rows[i - 1]["metrics"].get(name), rows[i + 1]["metrics"].get(name)
        if None in (v, p, n):
            continue
        dev = abs(v - (p + n) / 2)
        if dev > SPIKE_MOVED_MIN and dev > 3 * abs(n - p):
            moved[name] = [p, v, n]
    return moved


def eval_spike(rows: list[dict]) -> list[dict]:
    """One evaluation far outside its neighbours that recovers at the next one."""
    out = []
    for i in range(1, len(rows) - 1):
        trio = [rows[j]["eval_loss"] for j in (i - 1, i, i + 1)]
        by_loss = None if None in trio else _spike_at(*trio, up=True)
        moved = _moved(rows, i)
        dropped = [
            m
            for m, (p, v, n) in moved.items()
            if 0 <= v <= 1 and "loss" not in m and _spike_at(p, v, n, up=False)
        ]
        if by_loss is None and not dropped:
            continue
        r = rows[i]
        what = f"eval loss {trio[0]} -> {trio[1]} -> {trio[2]}" if by_loss else ""
        what += ("; " if what else "") + ", ".join(
            f"{m} {p} -> {v} -> {n}" for m, (p, v, n) in moved.items()
        )
        out.append(
            finding(
                "eval_spike",
                f"One-off evaluation spike at step {r['step']} (epoch {r['epoch']}): {what}; it "
                "recovers at the next evaluation. A single bad eval (an unlucky checkpoint or a "
                "numeric blow-up) is not a trend; do not pick or reject a checkpoint for it.",
                step=r["step"],
                epoch=r["epoch"],
                eval_loss=trio if by_loss else None,
                moved_metrics=moved,
            )
        )
    return out


def resumed_run(state: TrainerState) -> list[dict]:
    """Epoch counter going back, repeated training steps or an impossible summary train_loss."""
    signs, ev = [], {}
    if state.epoch_resets:
        signs.append(f"the epoch counter goes back at step(s) {state.epoch_resets[:10]}")
        ev["epoch_reset_steps"] = state.epoch_resets[:50]
    if state.repeated_train_steps:
        signs.append(f"{state.repeated_train_steps} training step(s) are logged twice")
        ev["repeated_train_steps"] = state.repeated_train_steps
    summary = (state.summary_row or {}).get("train_loss")
    fin = state.loss[np.isfinite(state.loss)]
    if isinstance(summary, int | float) and fin.size >= 3 and summary < TRAIN_LOSS_LOW * fin.min():
        signs.append(
            f"the summary train_loss {rnd(summary)} is below every logged loss (lowest "
            f"{rnd(float(fin.min()))}): it averages only the last session over all steps"
        )
        ev.update(summary_train_loss=rnd(summary), lowest_logged_loss=rnd(float(fin.min())))
    if not signs:
        return []
    spe = steps_per_epoch(state)
    ev["steps_per_epoch"] = rnd(spe) if spe else None
    return [
        finding(
            "resumed_run",
            "Resumed run: "
            + "; ".join(signs)
            + ". Epochs are computed from steps"
            + (f" ({rnd(spe)} steps per epoch)" if spe else "")
            + " and repeated entries keep their last occurrence.",
            **ev,
        )
    ]


def _fractions(metrics: dict) -> dict:
    """Metrics as fractions: a run that logs percentages (any value in (1, 100]) is scaled."""
    vals = [v for v in metrics.values() if v is not None]
    scale = 100.0 if vals and max(vals) > 1.0 and max(vals) <= 100.0 else 1.0
    return {k: (v / scale if v is not None else None) for k, v in metrics.items()}


def class_imbalance(rows: list[dict]) -> list[dict]:
    """Accuracy far above macro-F1, or a per-class recall near 0, at the last evaluation."""
    if not rows:
        return []
    last = rows[-1]
    quality = {k: v for k, v in last["metrics"].items() if "loss" not in k}
    m = _fractions(quality)
    acc = m.get("accuracy")
    macro_key = next((k for k in _MACRO_KEYS if m.get(k) is not None), None)
    gap = acc - m[macro_key] if acc is not None and macro_key else None
    dead = {
        k: v
        for k, v in m.items()
        if "recall" in k and k != "recall" and v is not None and v <= RECALL_NEAR_ZERO
    }
    if (gap is None or gap < IMBALANCE_GAP) and not dead:
        return []
    said = []
    if gap is not None and gap >= IMBALANCE_GAP:
        said.append(f"accuracy {acc} is {rnd(gap, 3)} above {macro_key} {m[macro_key]}")
    if dead:
        said.append("per-class recall near 0: " + ", ".join(f"{k} {v}" for k, v in dead.items()))
    return [
        finding(
            "class_imbalance",
            f"At the last evaluation (epoch {last['epoch']}) "
            + "; ".join(said)
            + ": the model leans on the majority class. Report macro-F1, and try class "
            "weights, resampling or a threshold per class.",
            step=last["step"],
            accuracy=acc,
            macro_metric=macro_key,
            macro_value=m.get(macro_key) if macro_key else None,
            gap=rnd(gap, 3) if gap is not None else None,
            near_zero_recall=dead,
        )
    ]


def train_loss_explained(state: TrainerState, resumed: bool) -> list[dict]:
    """Why the summary ``train_loss`` differs from the last logged ``loss``."""
    summary = (state.summary_row or {}).get("train_loss")
    fin = np.flatnonzero(np.isfinite(state.loss))
    if not isinstance(summary, int | float) or not fin.size:
        return []
    last = float(state.loss[fin[-1]])
    if last <= 0 or abs(summary - last) / last <= EXPLAIN_TOL:
        return []
    mean = float(state.loss[fin].mean())
    why = (
        "After a resume it is the loss summed over the last session divided by all steps, so "
        "it can be far below every logged value."
        if resumed
        else "It is the average over the whole run, while `loss` is the average of the last "
        "logging interval only; a falling loss makes the run average higher."
    )
    return [
        finding(
            "train_loss_explained",
            f"The summary train_loss {rnd(summary)} differs from the last logged loss "
            f"{rnd(last)} (step {int(state.step[fin[-1]])}); the mean of the logged losses is "
            f"{rnd(mean)}. {why}",
            summary_train_loss=rnd(summary),
            last_logged_loss=rnd(last),
            mean_logged_loss=rnd(mean),
            resumed=resumed,
        )
    ]


def health_checks(state: TrainerState, rows: list[dict]) -> list[dict]:
    """All checks of this module, in a stable order."""
    resumed = resumed_run(state)
    return (
        not_learning(state, rows)
        + loss_collapse(state, rows)
        + eval_spike(rows)
        + resumed
        + class_imbalance(rows)
        + train_loss_explained(state, bool(resumed))
    )
