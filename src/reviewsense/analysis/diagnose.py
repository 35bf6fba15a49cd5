"""Diagnose a parsed trainer state: loss trend, LR schedule, spikes, eval and overfitting.

Everything here is pure computation on :class:`TrainerState` (no files, no plotting) and
returns plain JSON-ready dicts. Each conclusion is stated as a finding with the numbers and
steps that support it; where the log cannot support a conclusion the answer is ``None``.
"""

from __future__ import annotations

import math

import numpy as np

from reviewsense.analysis.trainer_state import TrainerState

# Grad-norm / loss spike detection (log space, rolling window of logged points).
SPIKE_WINDOW = 25
SPIKE_MIN_Z = 4.0  # robust z-score (MAD-based) of log(value) vs the local median
SPIKE_MIN_RATIO = 3.0  # and at least this many times the local median
LOSS_JUMP_RATIO = 1.5  # loss after a spike vs the median of the losses just before it
MAX_SPIKES_LISTED = 200

# Overfitting: a rise must be sustained (every later eval worse than the best by EACH_TOL and
# the last one by FINAL_TOL) over at least two later evaluations to count as a trend.
LOSS_EACH_TOL, LOSS_FINAL_TOL = 0.02, 0.05
METRIC_EACH_TOL, METRIC_FINAL_TOL = 0.005, 0.02

_PRIMARY_PREFERENCE = (
    "f1",
    "f1_macro",
    "macro_f1",
    "accuracy",
    "roc_auc",
    "auc",
    "matthews_correlation",
)
_LOWER_IS_BETTER = ("loss", "error", "wer", "cer", "perplexity", "mse", "mae", "rmse")


def finding(kind: str, message: str, **evidence: object) -> dict:
    """A finding: what was found, in words, and the numbers behind it."""
    return {"kind": kind, "message": message, "evidence": evidence}


def _r(x: float | None, digits: int = 4) -> float | None:
    """Round for display/JSON: 4 significant digits, None for missing or non-finite."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _epoch_num(e: float | None) -> float | int | None:
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
    if not ok.any():
        return None
    # The largest step gives the most precise ratio (old versions round epoch to 2 decimals).
    i = int(np.argmax(np.where(ok, steps, -1)))
    return float(steps[i] / epochs[i])


def epoch_boundaries(state: TrainerState) -> list[tuple[int, int]]:
    """(epoch, step) for each completed whole epoch, estimated from the logged step/epoch pairs."""
    spe = steps_per_epoch(state)
    max_epoch = np.nanmax(state.epoch) if np.isfinite(state.epoch).any() else 0.0
    if state.evals:
        max_epoch = max([max_epoch] + [r.epoch for r in state.evals if r.epoch is not None])
    if not spe or not math.isfinite(max_epoch):
        return []
    return [(k, int(round(k * spe))) for k in range(1, int(math.floor(max_epoch + 1e-6)) + 1)]


# --------------------------------------------------------------------------- loss


def _point(state: TrainerState, i: int, value: float) -> dict:
    return {"step": int(state.step[i]), "epoch": _epoch_num(state.epoch[i]), "value": _r(value, 6)}


def loss_analysis(state: TrainerState) -> tuple[dict, list[dict]]:
    """Lowest/final loss, a ~8-row loss table, per-epoch means and the trend."""
    loss = state.loss
    finite = np.isfinite(loss)
    out: dict = {"lowest_loss": None, "final_loss": None, "loss_table": [], "loss_trend": None}
    findings: list[dict] = []
    if not finite.any():
        return out, findings
    smooth = ema(loss, smoothing_span(int(finite.sum())))
    idx = np.flatnonzero(finite)
    lo = int(idx[np.argmin(loss[idx])])
    last = int(idx[-1])
    out["lowest_loss"] = _point(state, lo, loss[lo])
    out["final_loss"] = _point(state, last, loss[last])
    out["loss_table"] = _loss_table(state, smooth, idx, lo)
    out["loss_by_epoch"] = _loss_by_epoch(state, smooth)
    trend, evidence, message = _trend(state, idx)
    out["loss_trend"] = {"trend": trend, **evidence}
    findings.append(finding("loss_trend", message, **evidence))
    findings.append(
        finding(
            "lowest_loss",
            f"Lowest logged training loss {out['lowest_loss']['value']} at step "
            f"{out['lowest_loss']['step']} (epoch {out['lowest_loss']['epoch']}); final "
            f"{out['final_loss']['value']} at step {out['final_loss']['step']}. Single logged values "
            "are noisy minibatch averages: read the smoothed trend, not the minimum.",
            lowest=out["lowest_loss"],
            final=out["final_loss"],
        )
    )
    return out, findings


def _loss_table(
    state: TrainerState, smooth: np.ndarray, idx: np.ndarray, lowest: int
) -> list[dict]:
    """About 8 rows spread over the run, plus the last log of each epoch and the lowest loss."""
    picks: dict[int, str] = {}
    for j in np.unique(np.linspace(0, idx.size - 1, num=min(8, idx.size)).round().astype(int)):
        picks[int(idx[j])] = ""
    epochs = state.epoch
    bounds = epoch_boundaries(state)
    # Many epochs: thin the boundary rows so the table stays readable (<= ~12 of them).
    stride = max(1, math.ceil(len(bounds) / 12))
    for k, _ in bounds[stride - 1 :: stride]:
        # Last log inside epoch k, i.e. with epoch in (k-1, k]; sparse logs may have none.
        inside = idx[(epochs[idx] <= k + 1e-6) & (epochs[idx] > k - 1 + 1e-6)]
        if inside.size:
            picks[int(inside[-1])] = f"end of epoch {k}"
    picks[lowest] = (picks.get(lowest, "") + "; lowest").lstrip("; ")
    return [
        {
            "step": int(state.step[i]),
            "epoch": _epoch_num(epochs[i]),
            "loss": _r(state.loss[i], 6),
            "smoothed": _r(smooth[i], 6),
            "note": note,
        }
        for i, note in sorted(picks.items())
    ]


def _loss_by_epoch(state: TrainerState, smooth: np.ndarray) -> list[dict]:
    ep = state.epoch
    ok = np.isfinite(state.loss) & np.isfinite(ep)
    if not ok.any():
        return []
    bucket = np.ceil(ep[ok] - 1e-9).astype(int)  # (k-1, k] belongs to epoch k
    bucket[bucket < 1] = 1
    loss, sm = state.loss[ok], smooth[ok]
    rows, prev = [], None
    for k in np.unique(bucket):
        sel = bucket == k
        mean = float(loss[sel].mean())
        rows.append(
            {
                "epoch": int(k),
                "n_logs": int(sel.sum()),
                "mean_loss": _r(mean, 5),
                "smoothed_end": _r(float(sm[sel][-1]), 5),
                "change_vs_prev": None if prev is None else _r((mean - prev) / prev, 3),
            }
        )
        prev = mean
    return rows


def _trend(state: TrainerState, idx: np.ndarray) -> tuple[str, dict, str]:
    """Compare the median raw loss of the 3rd and 4th quarters of the run (and 2nd vs 3rd)."""
    steps = state.step[idx].astype(float)
    loss = state.loss[idx]
    if idx.size < 4 or steps[-1] <= steps[0]:
        return (
            "insufficient data",
            {"n_logs": int(idx.size)},
            f"Only {idx.size} training-loss logs: too few to call a trend.",
        )
    edges = np.linspace(steps[0], steps[-1], 5)

    def q_mean(a: int) -> float:
        sel = (steps >= edges[a]) & ((steps < edges[a + 1]) if a < 3 else (steps <= edges[4]))
        if sel.any():
            return float(np.median(loss[sel]))
        return float(np.interp((edges[a] + edges[a + 1]) / 2, steps, loss))

    q = [q_mean(a) for a in range(4)]
    recent = (q[2] - q[3]) / q[2] if q[2] else 0.0
    earlier = (q[1] - q[2]) / q[1] if q[1] else 0.0
    if q[3] <= 0.02 * q[0]:
        trend = "converging"
        why = "the training loss is near zero relative to its start: the model fits its training data almost perfectly"
    elif recent < -0.05:
        trend = "rising"
        why = "the training loss went up in the last quarter of the run"
    elif abs(recent) < 0.02:
        trend = "plateaued"
        why = "the median loss changed by less than 2% over the last quarter of the run"
    elif recent < 0.5 * earlier:
        trend = "converging"
        why = "the loss still falls, but less than half as fast as in the quarter before"
    else:
        trend = "still improving"
        why = "the loss fell about as fast in the last quarter as before; more training may help"
    evidence = {
        "quarter_median_losses": [_r(v) for v in q],
        "quarter_step_edges": [int(e) for e in edges],
        "last_quarter_change": _r(-recent, 3),
        "previous_quarter_change": _r(-earlier, 3),
    }
    msg = (
        f"Training loss is {trend}: median loss by quarter of the run {', '.join(str(_r(v)) for v in q)} "
        f"(steps {int(edges[0])}-{int(edges[4])}); {why}."
    )
    return trend, evidence, msg


# --------------------------------------------------------------------------- learning rate


def lr_schedule(state: TrainerState) -> tuple[dict, list[dict]]:
    """Detect the LR schedule shape (linear, cosine, constant, other) and warmup."""
    ok = np.isfinite(state.learning_rate)
    lr, steps = state.learning_rate[ok], state.step[ok].astype(float)
    if lr.size == 0:
        info = {"shape": None, "warmup_steps": None, "start": None, "peak": None, "end": None}
        return info, []
    peak_val = float(lr.max())
    pk = int(np.argmax(lr >= peak_val * (1 - 1e-6)))
    warmup = int(steps[pk]) if pk > 0 else 0
    info = {
        "shape": "other",
        "warmup_steps": warmup,
        "start": _r(float(lr[0])),
        "peak": _r(peak_val),
        "peak_step": int(steps[pk]),
        "end": _r(float(lr[-1])),
        "n_logs": int(lr.size),
    }
    dec_s, dec_lr = steps[pk:], lr[pk:]
    if lr.size < 2:
        info["shape"] = "other"  # one logged value says nothing about the shape
    elif peak_val <= 0:
        info["shape"] = "constant"
    elif (dec_lr.max() - dec_lr.min()) <= 1e-3 * peak_val:
        info["shape"] = "constant"
    elif dec_s.size >= 3:
        total = float(state.header.get("max_steps") or 0)
        total = total if total >= dec_s[-1] else dec_s[-1]
        info.update(_fit_decay(dec_s, dec_lr, peak_val, float(steps[pk]) if pk else 0.0, total))
    warm = f" after {warmup} warmup steps" if warmup else ""
    msg = (
        f"Learning-rate schedule: {info['shape']}{warm}, {info['start']:.3g} at step {int(steps[0])}"
        f" -> peak {info['peak']:.3g} at step {info['peak_step']} -> {info['end']:.3g} at step "
        f"{int(steps[-1])}."
    )
    if warmup == 0 and pk == 0 and lr.size > 1 and steps[0] > 1:
        msg += f" No warmup visible (the first log, at step {int(steps[0])}, is already the peak)."
    return info, [finding("lr_schedule", msg, **{k: v for k, v in info.items()})]


def _fit_decay(s: np.ndarray, lr: np.ndarray, peak: float, w: float, total: float) -> dict:
    """Fit a free line and a cosine (to ``total`` steps); pick the closer if it fits within 2%."""
    line = np.polyfit(s, lr, 1)
    rmse_lin = float(np.sqrt(np.mean((np.polyval(line, s) - lr) ** 2))) / peak
    span = max(total - w, 1.0)
    basis = 0.5 * (1 + np.cos(np.pi * np.clip((s - w) / span, 0, 1)))
    amp = float(basis @ lr / (basis @ basis)) if basis @ basis > 0 else 0.0
    rmse_cos = float(np.sqrt(np.mean((amp * basis - lr) ** 2))) / peak
    shape = "other"
    if min(rmse_lin, rmse_cos) < 0.02:
        shape = "linear" if rmse_lin <= rmse_cos else "cosine"
    if shape == "linear" and line[0] > 0:
        shape = "other"  # rising the whole way: warmup never ended in the log
    return {"shape": shape, "fit_rmse_linear": _r(rmse_lin, 3), "fit_rmse_cosine": _r(rmse_cos, 3)}


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


def _loss_jump(loss: np.ndarray, i: int) -> tuple[float | None, float | None, bool]:
    prev = loss[max(0, i - 5) : i]
    prev = prev[np.isfinite(prev)]
    after = loss[i : i + 2]
    after = after[np.isfinite(after)]
    if not prev.size or not after.size:
        return None, None, False
    before, peak = float(np.median(prev)), float(after.max())
    return before, peak, bool(before > 0 and peak >= LOSS_JUMP_RATIO * before)


def grad_norm_analysis(state: TrainerState) -> tuple[dict, list[dict], list[dict]]:
    """Grad-norm spikes (with loss reaction) and non-finite grad norms (skipped steps)."""
    findings: list[dict] = []
    g = state.grad_norm
    info: dict = {"available": state.has_grad_norm}
    if not state.has_grad_norm:
        findings.append(
            finding(
                "no_grad_norm",
                "This log has no grad_norm (transformers logs it since about 4.38): gradient "
                "spikes cannot be checked.",
            )
        )
        return info, [], findings
    fin = np.isfinite(g)
    if fin.any():
        j = int(np.argmax(np.where(fin, g, -np.inf)))
        info.update(
            median=_r(float(np.median(g[fin]))),
            max={"step": int(state.step[j]), "value": _r(float(g[j]), 6)},
        )
    spikes = []
    for i, med, ratio in robust_spikes(g):
        before, after, jumped = _loss_jump(state.loss, i)
        spikes.append(
            {
                "step": int(state.step[i]),
                "epoch": _epoch_num(state.epoch[i]),
                "value": _r(float(g[i]), 6),
                "local_median": _r(med),
                "ratio_to_median": _r(ratio, 3),
                "loss_jumped": jumped,
                "loss_before": _r(before),
                "loss_after": _r(after),
            }
        )
    info["spike_count"] = len(spikes)
    if len(spikes) > MAX_SPIKES_LISTED:
        spikes = sorted(
            sorted(spikes, key=lambda s: -s["ratio_to_median"])[:MAX_SPIKES_LISTED],
            key=lambda s: s["step"],
        )
        info["spikes_listed"] = MAX_SPIKES_LISTED
    if spikes:
        top = sorted(spikes, key=lambda s: -s["ratio_to_median"])[:5]
        n_jump = sum(s["loss_jumped"] for s in spikes)
        desc = "; ".join(
            f"{s['value']} at step {s['step']} ({s['ratio_to_median']}x local median {s['local_median']})"
            for s in top
        )
        findings.append(
            finding(
                "grad_norm_spikes",
                f"{info['spike_count']} gradient-norm spike(s) (>= {SPIKE_MIN_RATIO:g}x the rolling median "
                f"and robust z >= {SPIKE_MIN_Z:g}); largest: {desc}. The loss jumped with {n_jump} of them. "
                "With gradient clipping (Trainer default max_grad_norm=1.0) the update size was capped; "
                "spikes without a loss jump are usually harmless outlier batches.",
                count=info["spike_count"],
                top=top,
                with_loss_jump=n_jump,
            )
        )
    bad = np.flatnonzero(state.grad_norm_logged & ~fin).tolist()
    if bad:
        info["nonfinite_steps"] = [int(state.step[i]) for i in bad]
        findings.append(_nonfinite_finding(state, bad))
    return info, spikes, findings


def _nonfinite_finding(state: TrainerState, bad: list[int]) -> dict:
    lr = state.learning_rate
    stalled = [
        int(state.step[i]) for i in bad if i > 0 and math.isclose(lr[i], lr[i - 1], rel_tol=1e-9)
    ]
    steps = [int(state.step[i]) for i in bad]
    vals = ["NaN" if math.isnan(state.grad_norm[i]) else str(state.grad_norm[i]) for i in bad]
    msg = (
        f"Non-finite gradient norm ({', '.join(sorted(set(vals)))}) at step(s) {', '.join(map(str, steps[:10]))}"
        f"{' ...' if len(steps) > 10 else ''}: with fp16/bf16 loss scaling the optimizer skips such a step."
    )
    if stalled:
        msg += f" The learning rate did not advance at step(s) {', '.join(map(str, stalled[:10]))}, which confirms the skip."
    loss_ok = all(math.isfinite(state.loss[i]) for i in bad)
    if loss_ok:
        msg += " The loss stayed finite, so training recovered."
    return finding("nonfinite_grad_norm", msg, steps=steps, values=vals, lr_not_advanced_at=stalled)


def loss_spikes(state: TrainerState) -> tuple[list[dict], list[dict]]:
    """Training-loss spikes against the rolling median (same detector as grad norm)."""
    out = [
        {
            "step": int(state.step[i]),
            "value": _r(float(state.loss[i]), 6),
            "local_median": _r(m),
            "ratio_to_median": _r(r, 3),
        }
        for i, m, r in robust_spikes(state.loss)
    ]
    findings = []
    if out:
        top = sorted(out, key=lambda s: -s["ratio_to_median"])[:5]
        findings.append(
            finding(
                "loss_spikes",
                f"{len(out)} training-loss spike(s) against the rolling median; largest: "
                + "; ".join(
                    f"{s['value']} at step {s['step']} ({s['ratio_to_median']}x {s['local_median']})"
                    for s in top
                )
                + ".",
                count=len(out),
                top=top,
            )
        )
    bad = [
        int(s)
        for s, v in zip(state.step.tolist(), state.loss.tolist(), strict=True)
        if not math.isfinite(v)
    ]
    if bad:
        findings.append(
            finding(
                "nonfinite_loss",
                f"Training loss is NaN/Inf at step(s) {', '.join(map(str, bad[:10]))}: the run diverged there "
                "(try a lower learning rate, warmup, or bf16 instead of fp16).",
                steps=bad,
            )
        )
    return out[:MAX_SPIKES_LISTED], findings


# --------------------------------------------------------------------------- evaluation


def infer_selection_metric(state: TrainerState) -> str | None:
    """The run's ``metric_for_best_model``, recognised by matching ``best_metric`` to an eval."""
    best = state.header.get("best_metric")
    if not isinstance(best, int | float) or not math.isfinite(best):
        return None
    best_step = state.header.get("best_global_step")
    rows = sorted(state.evals, key=lambda r: r.step != best_step)  # the best step's row first
    for r in rows:
        values = {"loss": r.loss, **r.metrics}
        for name, v in values.items():
            if v is not None and math.isclose(v, best, rel_tol=1e-9, abs_tol=1e-12):
                return name
    return None


def primary_metric(state: TrainerState, selection: str | None) -> str | None:
    """The quality metric to track: the run's selection metric, else a common one, else any."""
    names = sorted({m for r in state.evals for m in r.metrics})
    if selection and selection != "loss" and selection in names:
        return selection
    for pref in _PRIMARY_PREFERENCE:
        if pref in names:
            return pref
    return names[0] if names else None


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
                "epoch": _epoch_num(r.epoch),
                "step": r.step,
                "eval_loss": _r(r.loss, 6),
                "metrics": {k: _r(v, 6) for k, v in sorted(r.metrics.items())},
                "train_loss": _r(train, 6),
                "train_eval_gap": _r(gap, 4),
            }
        )
        prev = r.step
    return rows


def worsening(
    values: list[float], higher_is_better: bool, each_tol: float, final_tol: float
) -> tuple[int, str]:
    """Where a series is best and what it does afterwards.

    Returns:
        (index of the best value, status) where status is ``best_at_end``, ``uptick`` (only
        the last value is worse), ``sustained`` (every later value worse by ``each_tol`` and
        the last by ``final_tol``, over at least two values) or ``recovered`` (bumps only).
    """
    sign = -1.0 if higher_is_better else 1.0
    v = [sign * x for x in values]  # now lower is better
    b = int(np.argmin(v))
    after = v[b + 1 :]
    if not after:
        return b, "best_at_end"
    base = abs(v[b]) or 1.0
    if len(after) == 1:
        return b, "uptick" if after[0] > v[b] else "best_at_end"
    each = all((x - v[b]) / base > each_tol for x in after)
    final = (after[-1] - v[b]) / base >= final_tol
    return b, "sustained" if each and final else "recovered"


def overfitting_analysis(state: TrainerState, rows: list[dict]) -> tuple[dict, list[dict]]:
    """Decide overfitting from eval evidence only; None when the log cannot tell."""
    out: dict = {
        "overfitting": None,
        "overfitting_start_epoch": None,
        "recommended_epochs": None,
        "recommended_checkpoint": None,
        "selection_metric": None,
        "primary_metric": None,
    }
    findings: list[dict] = []
    if not rows:
        findings.append(_no_eval_finding(state))
        return out, findings
    selection = infer_selection_metric(state)
    metric = primary_metric(state, selection)
    out.update(selection_metric=selection, primary_metric=metric)
    loss_rows = [r for r in rows if r["eval_loss"] is not None]
    metric_rows = [r for r in rows if metric and r["metrics"].get(metric) is not None]
    if max(len(loss_rows), len(metric_rows)) < 2:
        findings.append(
            finding(
                "overfitting_undeterminable",
                "Only one evaluation in the log: a single point has no trend, so overfitting "
                "cannot be concluded either way.",
                evaluations=len(rows),
            )
        )
        _recommend(state, out, rows, selection, metric, None)
        return out, findings

    higher = not lower_is_better(metric) if metric else True
    loss_b, loss_status = (
        worsening([r["eval_loss"] for r in loss_rows], False, LOSS_EACH_TOL, LOSS_FINAL_TOL)
        if len(loss_rows) >= 2
        else (None, None)
    )
    met_b, met_status = (
        worsening(
            [r["metrics"][metric] for r in metric_rows], higher, METRIC_EACH_TOL, METRIC_FINAL_TOL
        )
        if len(metric_rows) >= 2
        else (None, None)
    )
    train_fell = _train_fell_after(state, loss_rows[loss_b]["step"]) if loss_b is not None else None
    verdict, start_row, msgs, ev = None, None, [], {}

    if loss_status is not None:
        best = loss_rows[loss_b]
        last = loss_rows[-1]
        rise = (
            (last["eval_loss"] - best["eval_loss"]) / best["eval_loss"]
            if best["eval_loss"]
            else 0.0
        )
        ev.update(
            eval_loss_best={
                "epoch": best["epoch"],
                "step": best["step"],
                "value": best["eval_loss"],
            },
            eval_loss_last={
                "epoch": last["epoch"],
                "step": last["step"],
                "value": last["eval_loss"],
            },
            eval_loss_rise=_r(rise, 3),
            eval_loss_pattern=loss_status,
            train_loss_fell_after_best=train_fell,
            eval_loss_by_epoch=[[r["epoch"], r["eval_loss"]] for r in loss_rows][:60],
        )
    if met_status is not None:
        mb = metric_rows[met_b]
        ev.update(
            metric=metric,
            metric_best={"epoch": mb["epoch"], "step": mb["step"], "value": mb["metrics"][metric]},
            metric_last=metric_rows[-1]["metrics"][metric],
            metric_pattern=met_status,
        )

    metric_improved_last = met_status == "best_at_end" if met_status is not None else None
    if loss_status == "sustained" and train_fell:
        verdict, start_row = True, loss_rows[loss_b]
        msgs.append(
            f"Eval loss was lowest at epoch {start_row['epoch']} (step {start_row['step']}, "
            f"{start_row['eval_loss']}) and stayed above it for all {len(loss_rows) - loss_b - 1} later "
            f"evaluations, ending at {loss_rows[-1]['eval_loss']} (+{ev['eval_loss_rise']:.0%}), while the "
            "training loss kept falling: the model is overfitting from there on."
        )
        if met_status in ("best_at_end", "recovered", "uptick"):
            msgs.append(
                f"{metric} did not degrade the same way (best {ev['metric_best']['value']} at epoch "
                f"{ev['metric_best']['epoch']}, last {ev['metric_last']}): the model grows over-confident "
                "on the errors it makes rather than making many more of them."
            )
    elif met_status == "sustained":
        verdict, start_row = True, metric_rows[met_b]
        msgs.append(
            f"{metric} peaked at epoch {start_row['epoch']} ({start_row['metrics'][metric]}) and stayed below "
            f"it for every later evaluation, ending at {ev['metric_last']}: the model is overfitting."
        )
    elif loss_status == "sustained" and train_fell is None:
        msgs.append(
            f"Eval loss rose steadily after epoch {loss_rows[loss_b]['epoch']}, but the log has too little "
            "training loss to tell overfitting (train loss falling) from instability. Not concluded."
        )
    elif loss_status == "sustained":
        verdict = False
        msgs.append(
            "Eval loss rose after its best epoch but the training loss did not fall meanwhile, so this "
            "is not the overfitting pattern (look for instability, a too-high learning rate or data issues)."
        )
    elif "uptick" in (loss_status, met_status):
        rise = ev.get("eval_loss_rise") or 0.0
        weak = (
            loss_status != "uptick" or rise < LOSS_FINAL_TOL or metric_improved_last
        ) and met_status != "uptick"
        verdict = False if weak else None
        what = (
            f"eval loss rose {rise:.1%} in the last evaluation"
            if loss_status == "uptick"
            else f"{metric} dipped in the last evaluation"
        )
        if weak:
            msgs.append(
                f"Only the last evaluation is worse ({what})"
                + (
                    f" while {metric} still improved to {ev['metric_last']}"
                    if metric_improved_last
                    else ""
                )
                + ": one evaluation is not a trend, so this is not evidence of overfitting. Watch it if you train longer."
            )
        else:
            msgs.append(
                f"Only the last evaluation is worse ({what}): this may be the start of overfitting or a bump; "
                "one more evaluation would tell. Not concluded."
            )
    else:
        verdict = False
        pat = loss_status or met_status
        if pat == "recovered":
            msgs.append(
                "Eval results moved up and down but came back to near their best: bumps that recover are "
                "noise, not an overfitting trend."
            )
        else:
            msgs.append(
                "Eval results were at their best at the last evaluation: no sign of overfitting."
            )
    out["overfitting"] = verdict
    if verdict and start_row is not None:
        out["overfitting_start_epoch"] = start_row["epoch"]
    _recommend(state, out, rows, selection, metric, start_row if verdict else None)
    if out["recommended_epochs"] is not None:
        msgs.append(
            f"Recommended: {out['recommended_epochs']} epoch(s), checkpoint {out['recommended_checkpoint']}."
        )
    kind = (
        "overfitting"
        if verdict
        else ("no_overfitting" if verdict is False else "overfitting_undeterminable")
    )
    findings.append(finding(kind, " ".join(msgs), **ev))
    findings.append(_gap_finding(rows))
    return out, [f for f in findings if f]


def _train_fell_after(state: TrainerState, step: int) -> bool | None:
    fin = np.isfinite(state.loss)
    if fin.sum() < 2:
        return None
    steps, loss = state.step[fin].astype(float), state.loss[fin]
    smooth = ema(loss, smoothing_span(loss.size))
    at_best = float(np.interp(step, steps, smooth))
    return bool(smooth[-1] < 0.95 * at_best)


def _recommend(
    state: TrainerState,
    out: dict,
    rows: list[dict],
    selection: str | None,
    metric: str | None,
    start_row: dict | None,
) -> None:
    """Best epoch and checkpoint: where overfitting starts, else by the run's selection metric."""
    row = start_row
    if row is None:
        key = selection or ("loss" if any(r["eval_loss"] is not None for r in rows) else metric)
        if key is None:
            return
        cand = [
            r
            for r in rows
            if (r["eval_loss"] if key == "loss" else r["metrics"].get(key)) is not None
        ]
        if not cand:
            return
        higher = not lower_is_better(key)

        def val(r: dict) -> float:
            return r["eval_loss"] if key == "loss" else r["metrics"][key]

        row = max(cand, key=val) if higher else min(cand, key=val)
        # Ties (e.g. identical repeated final evals): the earliest reaches it with less training.
        row = next(r for r in cand if val(r) == val(row))
    out["recommended_epochs"] = row["epoch"]
    ckpt = state.header.get("best_model_checkpoint")
    step = row["step"]
    if ckpt and str(ckpt).replace("\\", "/").rstrip("/").endswith(f"checkpoint-{step}"):
        out["recommended_checkpoint"] = str(ckpt)
    else:
        out["recommended_checkpoint"] = f"checkpoint-{step}"


def _gap_finding(rows: list[dict]) -> dict | None:
    gaps = [r for r in rows if r["train_eval_gap"] is not None]
    if not gaps:
        return None
    first, last = gaps[0], gaps[-1]
    return finding(
        "train_eval_gap",
        f"Train-eval loss gap went from {first['train_eval_gap']} (epoch {first['epoch']}: train "
        f"{first['train_loss']}, eval {first['eval_loss']}) to {last['train_eval_gap']} (epoch {last['epoch']}: "
        f"train {last['train_loss']}, eval {last['eval_loss']}).",
        gaps=[[r["epoch"], r["train_eval_gap"]] for r in gaps][:60],
    )


def _no_eval_finding(state: TrainerState) -> dict:
    bs = state.header.get("train_batch_size")
    fin = state.loss[np.isfinite(state.loss)]
    tail = fin[-max(3, fin.size // 10) :] if fin.size else fin
    msg = (
        "No evaluation entries in this log, so overfitting can be neither confirmed nor ruled out "
        "(overfitting: null). Ups and downs of the training loss"
    )
    if tail.size:
        msg += f" (between {tail.min():.4g} and {tail.max():.4g} over the last {tail.size} logs"
        msg += f", batch size {bs})" if bs else ")"
    msg += (
        " are minibatch noise, not evidence of overfitting; a falling training loss only shows the model "
        "fits its training data. Evaluate on held-out data each epoch (eval_strategy='epoch') to find out."
    )
    if fin.size and fin[-1] < 0.05:
        msg += f" The final training loss ({fin[-1]:.3g}) is near zero: the model may have memorised the training set."
    return finding(
        "no_eval",
        msg,
        train_batch_size=bs,
        recent_loss_min=_r(float(tail.min())) if tail.size else None,
        recent_loss_max=_r(float(tail.max())) if tail.size else None,
        recent_logs=int(tail.size),
    )


# --------------------------------------------------------------------------- run + assembly


def run_info(state: TrainerState) -> dict:
    """Steps, epochs, batch size, logging/eval/save steps, best checkpoint, timing."""
    h, s = state.header, state.summary_row or {}
    return {
        "trainer_state": str(state.path),
        "checkpoint_note": state.checkpoint_note,
        "global_step": h.get("global_step"),
        "max_steps": h.get("max_steps"),
        "epochs": _epoch_num(h["epoch"]) if isinstance(h.get("epoch"), int | float) else None,
        "num_train_epochs": h.get("num_train_epochs"),
        "train_batch_size": h.get("train_batch_size"),
        "logging_steps": h.get("logging_steps"),
        "eval_steps": h.get("eval_steps"),
        "save_steps": h.get("save_steps"),
        "best_model_checkpoint": h.get("best_model_checkpoint"),
        "best_metric": h.get("best_metric"),
        "best_global_step": h.get("best_global_step"),
        "best_metric_name": infer_selection_metric(state),
        "train_runtime_s": s.get("train_runtime"),
        "train_samples_per_second": s.get("train_samples_per_second"),
        "mean_train_loss": s.get("train_loss"),
        "n_train_logs": state.n_train,
        "n_eval_logs": len(state.evals),
        "has_grad_norm": state.has_grad_norm,
    }


def _run_findings(state: TrainerState, run: dict) -> list[dict]:
    out = []
    if state.checkpoint_note:
        out.append(
            finding(
                "checkpoint_used",
                f"Analysed {state.path}: {state.checkpoint_note}.",
                path=str(state.path),
            )
        )
    gs, ms = run["global_step"], run["max_steps"]
    control = (
        (state.header.get("stateful_callbacks") or {}).get("TrainerControl", {}).get("args", {})
    )
    if isinstance(gs, int) and isinstance(ms, int) and 0 < gs < ms:
        stopped = control.get("should_training_stop")
        out.append(
            finding(
                "incomplete_run",
                f"This state is from step {gs} of max_steps {ms} (epoch {run['epochs']} of "
                f"{run['num_train_epochs']}): a mid-run checkpoint or a stopped run"
                + (" (should_training_stop is false)." if stopped is False else "."),
                global_step=gs,
                max_steps=ms,
                should_training_stop=stopped,
            )
        )
    ep, nte = run["epochs"], run["num_train_epochs"]
    if (
        isinstance(gs, int)
        and gs == ms
        and isinstance(ep, int | float)
        and isinstance(nte, int | float)
        and ep < nte - 0.01
    ):
        out.append(
            finding(
                "max_steps_cut",
                f"max_steps={ms} ended training at epoch {ep}, before num_train_epochs={nte}.",
                max_steps=ms,
                epochs=ep,
                num_train_epochs=nte,
            )
        )
    for note in state.notes:
        out.append(finding("log_note", note[0].upper() + note[1:] + "."))
    if run.get("best_model_checkpoint"):
        name = run["best_metric_name"] or "unknown metric"
        out.append(
            finding(
                "best_checkpoint",
                f"The Trainer's best checkpoint is {run['best_model_checkpoint']} ({name} = {_r(run['best_metric'], 6)}).",
                best_model_checkpoint=run["best_model_checkpoint"],
                best_metric=run["best_metric"],
                metric=name,
            )
        )
    return out


def diagnose(state: TrainerState) -> dict:
    """Full analysis of one trainer state as a JSON-ready summary dict.

    Args:
        state: a parsed trainer state.

    Returns:
        The summary (keys ``run``, ``loss_table``, ``lowest_loss``, ``final_loss``,
        ``lr_schedule``, ``spikes``, ``eval``, ``overfitting``, ``recommended_epochs``,
        ``findings`` and more detail).
    """
    run = run_info(state)
    findings = _run_findings(state, run)
    if state.n_train == 0 and not state.evals:
        findings.append(
            finding(
                "empty_log",
                "The log_history has no training or evaluation entries: nothing to analyse.",
            )
        )
    loss, f_loss = loss_analysis(state)
    lr, f_lr = lr_schedule(state)
    grad, spikes, f_grad = (
        grad_norm_analysis(state) if state.n_train else ({"available": False}, [], [])
    )
    lspikes, f_lspikes = loss_spikes(state)
    rows = eval_rows(state)
    over, f_over = (
        overfitting_analysis(state, rows)
        if (rows or state.n_train)
        else ({"overfitting": None, "recommended_epochs": None}, [])
    )
    return {
        "schema": "reviewsense.analyze/1",
        "run": run,
        "loss_table": loss["loss_table"],
        "lowest_loss": loss["lowest_loss"],
        "final_loss": loss["final_loss"],
        "loss_trend": loss["loss_trend"],
        "loss_by_epoch": loss.get("loss_by_epoch", []),
        "lr_schedule": lr,
        "spikes": spikes,
        "grad_norm": grad,
        "loss_spikes": lspikes,
        "eval": rows,
        **over,
        "epoch_boundaries": [{"epoch": k, "step": s} for k, s in epoch_boundaries(state)][:1000],
        "findings": findings + f_loss + f_lr + f_grad + f_lspikes + f_over,
    }
