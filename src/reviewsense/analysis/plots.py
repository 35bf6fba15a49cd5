"""PNG plots of one run or several (matplotlib, Agg; no display needed).

matplotlib is imported inside the functions: importing this module stays cheap. Figures are
built with ``matplotlib.figure.Figure`` directly (no pyplot global state), so plotting is safe
from any thread and leaks no figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from reviewsense.analysis.series import ema, epoch_boundaries, smoothing_span
from reviewsense.analysis.trainer_state import TrainerState

LOSS_PNG = "loss.png"
EVAL_PNG = "eval.png"
LR_PNG = "learning_rate.png"
GRAD_PNG = "grad_norm.png"
MAX_BOUNDARY_LINES = 30  # more epochs than this: draw every k-th boundary


def _figure(ncols: int = 1, width: float = 8.0):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols if ncols > 1 else width, 4.0))
    # Fixed margins: constrained/tight layout would draw every figure twice (half the time).
    fig.subplots_adjust(left=0.1 / ncols, right=0.97, bottom=0.13, top=0.9, wspace=0.25)
    axes = fig.subplots(1, ncols)
    return fig, (list(axes) if ncols > 1 else [axes])


def _nan(v: float | None) -> float:
    return np.nan if v is None else v


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    return path


def _epoch_lines(ax, state: TrainerState) -> None:
    bounds = epoch_boundaries(state)
    stride = max(1, math.ceil(len(bounds) / MAX_BOUNDARY_LINES))
    for i, (_epoch, step) in enumerate(bounds[stride - 1 :: stride]):
        ax.axvline(step, color="grey", lw=0.6, ls=":", label="epoch boundary" if i == 0 else None)


def plot_loss(state: TrainerState, path: Path) -> Path | None:
    """Training loss, raw and EMA-smoothed, against step with epoch boundaries."""
    ok = np.isfinite(state.loss)
    if not ok.any():
        return None
    steps, loss = state.step[ok], state.loss[ok]
    fig, (ax,) = _figure()
    ax.plot(steps, loss, color="tab:blue", alpha=0.35, lw=0.8, label="loss (raw)")
    ax.plot(
        steps, ema(loss, smoothing_span(loss.size)), color="tab:blue", lw=1.8, label="loss (EMA)"
    )
    ev = [(r.step, r.loss) for r in state.evals if r.loss is not None and math.isfinite(r.loss)]
    if ev:
        ax.plot(*zip(*ev, strict=True), "o", color="tab:orange", ms=4, label="eval loss")
    _epoch_lines(ax, state)
    if loss.min() > 0 and loss.max() / loss.min() > 100:
        ax.set_yscale("log")  # near-zero late losses would otherwise be a flat line
    ax.set(xlabel="step", ylabel="loss", title="Training loss")
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_eval(state: TrainerState, summary: dict, path: Path) -> Path | None:
    """Eval loss (with train loss near each eval) and every eval metric, per epoch."""
    rows = summary.get("eval") or []
    if not rows:
        return None
    x = [r["epoch"] if r["epoch"] is not None else r["step"] for r in rows]
    xlabel = "epoch" if all(r["epoch"] is not None for r in rows) else "step"
    fig, (ax_l, ax_m) = _figure(2, width=6.0)
    ev = [_nan(r["eval_loss"]) for r in rows]
    tr = [_nan(r["train_loss"]) for r in rows]
    ax_l.plot(x, ev, "o-", color="tab:orange", label="eval loss")
    ax_l.plot(x, tr, "s--", color="tab:blue", alpha=0.7, label="train loss (since prev. eval)")
    start = summary.get("overfitting_start_epoch")
    if summary.get("overfitting") and start is not None:
        ax_l.axvline(start, color="red", ls="--", lw=1, label=f"overfitting after epoch {start}")
    ax_l.set(xlabel=xlabel, ylabel="loss", title="Eval vs train loss")
    ax_l.legend(fontsize=8)
    names = sorted({m for r in rows for m in r["metrics"]})
    for name in names:
        ax_m.plot(x, [_nan(r["metrics"].get(name)) for r in rows], "o-", ms=3, label=name)
    ax_m.set(xlabel=xlabel, title="Eval metrics")
    if names:
        ax_m.legend(fontsize=8)
    else:
        ax_m.text(0.5, 0.5, "no eval metrics logged", ha="center", transform=ax_m.transAxes)
    return _save(fig, path)


def plot_lr(state: TrainerState, summary: dict, path: Path) -> Path | None:
    """Learning rate against step, with the detected shape and warmup."""
    ok = np.isfinite(state.learning_rate)
    if not ok.any():
        return None
    fig, (ax,) = _figure()
    ax.plot(state.step[ok], state.learning_rate[ok], color="tab:green", lw=1.5)
    info = summary.get("lr_schedule") or {}
    if info.get("warmup_steps"):
        ax.axvline(
            info["warmup_steps"],
            color="grey",
            ls="--",
            lw=1,
            label=f"warmup ends ({info['warmup_steps']})",
        )
        ax.legend(fontsize=8)
    ax.set(xlabel="step", ylabel="learning rate", title=f"Learning rate ({info.get('shape')})")
    return _save(fig, path)


def plot_grad_norm(state: TrainerState, summary: dict, path: Path) -> Path | None:
    """Gradient norm (log scale) with spikes and non-finite steps marked."""
    ok = np.isfinite(state.grad_norm) & (state.grad_norm > 0)
    if not ok.any():
        return None
    fig, (ax,) = _figure()
    ax.plot(state.step[ok], state.grad_norm[ok], color="tab:purple", lw=0.8, label="grad norm")
    spikes = summary.get("spikes") or []
    if spikes:
        ax.plot(
            [s["step"] for s in spikes],
            [s["value"] for s in spikes],
            "o",
            mfc="none",
            color="red",
            ms=6,
            label=f"spikes ({len(spikes)})",
        )
    bad = (summary.get("grad_norm") or {}).get("nonfinite_steps") or []
    for i, step in enumerate(bad[:50]):
        ax.axvline(
            step, color="black", lw=0.8, ls="--", label="NaN/Inf grad norm" if i == 0 else None
        )
    ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="grad norm (log)", title="Gradient norm")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_run(state: TrainerState, summary: dict, out_dir: Path) -> list[Path]:
    """Write every plot that the log has data for; returns the files written."""
    made = [
        plot_loss(state, out_dir / LOSS_PNG),
        plot_eval(state, summary, out_dir / EVAL_PNG),
        plot_lr(state, summary, out_dir / LR_PNG),
        plot_grad_norm(state, summary, out_dir / GRAD_PNG),
    ]
    return [p for p in made if p is not None]


def _train_by_epoch(state: TrainerState) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(state.loss) & np.isfinite(state.epoch)
    loss = state.loss[ok]
    return state.epoch[ok], ema(loss, smoothing_span(loss.size)) if loss.size else loss


def plot_comparison(runs: list[tuple[str, TrainerState, dict]], out_dir: Path) -> list[Path]:
    """Overlay plots aligned by epoch: smoothed train loss, eval loss, primary metric, LR."""
    made: list[Path] = []
    fig, (ax,) = _figure()
    # One colour per run across all comparison plots, even where a run has no data.
    for i, (label, state, _) in enumerate(runs):
        x, y = _train_by_epoch(state)
        if x.size:
            ax.plot(x, y, lw=1.5, label=label, color=f"C{i % 10}")
    ax.set(xlabel="epoch", ylabel="train loss (EMA)", title="Training loss by epoch")
    ax.legend(fontsize=8)
    made.append(_save(fig, out_dir / "compare_loss.png"))

    if any(s.get("eval") for _, _, s in runs):
        fig, (ax_l, ax_m) = _figure(2, width=6.0)
        for i, (label, _, s) in enumerate(runs):
            rows = [r for r in s.get("eval") or [] if r["epoch"] is not None]
            if any(r["eval_loss"] is not None for r in rows):
                pts = [(r["epoch"], r["eval_loss"]) for r in rows if r["eval_loss"] is not None]
                ax_l.plot(*zip(*pts, strict=True), "o-", ms=3, label=label, color=f"C{i % 10}")
            metric = s.get("primary_metric")
            pts = [
                (r["epoch"], r["metrics"][metric])
                for r in rows
                if metric and r["metrics"].get(metric) is not None
            ]
            if pts:
                ax_m.plot(
                    *zip(*pts, strict=True),
                    "o-",
                    ms=3,
                    label=f"{label}: {metric}",
                    color=f"C{i % 10}",
                )
        ax_l.set(xlabel="epoch", ylabel="eval loss", title="Eval loss by epoch")
        ax_m.set(xlabel="epoch", title="Main eval metric by epoch")
        for a in (ax_l, ax_m):
            if a.get_legend_handles_labels()[0]:
                a.legend(fontsize=8)
        made.append(_save(fig, out_dir / "compare_eval.png"))

    fig, (ax,) = _figure()
    for i, (label, state, _) in enumerate(runs):
        ok = np.isfinite(state.learning_rate) & np.isfinite(state.epoch)
        if ok.any():
            ax.plot(
                state.epoch[ok], state.learning_rate[ok], lw=1.2, label=label, color=f"C{i % 10}"
            )
    ax.set(xlabel="epoch", ylabel="learning rate", title="Learning rate by epoch")
    ax.legend(fontsize=8)
    made.append(_save(fig, out_dir / "compare_lr.png"))
    return made
