"""Training curves: loss trend and table, learning-rate schedule, grad-norm and loss spikes.

Pure computation on :class:`TrainerState`; each function returns JSON-ready info and the
findings (``finding(kind, message, **evidence)``) that state its conclusions with numbers.
"""

from __future__ import annotations

import math

import numpy as np

from reviewsense.analysis.series import (
    SPIKE_MIN_RATIO,
    SPIKE_MIN_Z,
    ema,
    epoch_boundaries,
    epoch_num,
    finding,
    rnd,
    robust_spikes,
    smoothing_span,
)
from reviewsense.analysis.trainer_state import TrainerState

LOSS_JUMP_RATIO = 1.5  # loss after a spike vs the median of the losses just before it
MAX_SPIKES_LISTED = 200

# --------------------------------------------------------------------------- loss


def _point(state: TrainerState, i: int, value: float) -> dict:
    return {"step": int(state.step[i]), "epoch": epoch_num(state.epoch[i]), "value": rnd(value, 6)}


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
            "epoch": epoch_num(epochs[i]),
            "loss": rnd(state.loss[i], 6),
            "smoothed": rnd(smooth[i], 6),
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
                "mean_loss": rnd(mean, 5),
                "smoothed_end": rnd(float(sm[sel][-1]), 5),
                "change_vs_prev": None if not prev else rnd((mean - prev) / prev, 3),
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
        "quarter_median_losses": [rnd(v) for v in q],
        "quarter_step_edges": [int(e) for e in edges],
        "last_quarter_change": rnd(-recent, 3),
        "previous_quarter_change": rnd(-earlier, 3),
    }
    msg = (
        f"Training loss is {trend}: median loss by quarter of the run {', '.join(str(rnd(v)) for v in q)} "
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
        "start": rnd(float(lr[0])),
        "peak": rnd(peak_val),
        "peak_step": int(steps[pk]),
        "end": rnd(float(lr[-1])),
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
        max_steps = state.header.get("max_steps")
        total = float(max_steps) if isinstance(max_steps, int | float) else 0.0
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
    return {
        "shape": shape,
        "fit_rmse_linear": rnd(rmse_lin, 3),
        "fit_rmse_cosine": rnd(rmse_cos, 3),
    }


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
            median=rnd(float(np.median(g[fin]))),
            max={"step": int(state.step[j]), "value": rnd(float(g[j]), 6)},
        )
    spikes = []
    for i, med, ratio in robust_spikes(g):
        before, after, jumped = _loss_jump(state.loss, i)
        spikes.append(
            {
                "step": int(state.step[i]),
                "epoch": epoch_num(state.epoch[i]),
                "value": rnd(float(g[i]), 6),
                "local_median": rnd(med),
                "ratio_to_median": rnd(ratio, 3),
                "loss_jumped": jumped,
                "loss_before": rnd(before),
                "loss_after": rnd(after),
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
            "value": rnd(float(state.loss[i]), 6),
            "local_median": rnd(m),
            "ratio_to_median": rnd(r, 3),
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
