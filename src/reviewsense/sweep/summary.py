"""Per-variant statistics over seeds and the comparison of every variant with the baseline.

The result is ``summary.json``'s content; :mod:`reviewsense.sweep.report` renders it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from reviewsense.rundir import METRICS_JSON, TEST_PREDICTIONS, is_complete_run
from reviewsense.sweep.plan import SweepPlan, plain
from reviewsense.sweep.spec import SweepError
from reviewsense.sweep.stats import (
    PairedData,
    mean_std,
    paired_bootstrap,
    sign_flip_test,
    t_interval,
)

# (key in the report, label, unit): what is averaged per variant.
REPORT_METRICS: list[tuple[str, str, str]] = [
    ("val_accuracy", "val accuracy", "pct"),
    ("val_f1", "val F1", "pct"),
    ("val_loss", "val loss", "num"),
    ("test_accuracy", "test accuracy", "pct"),
    ("test_f1", "test F1", "pct"),
    ("test_loss", "test loss", "num"),
    ("best_epoch", "best epoch", "num"),
    ("train_time_s", "train time (s)", "int"),
    ("examples_per_s", "examples/s", "num"),
    ("peak_rss_mb", "peak RSS (MB)", "int"),
    ("checkpoint_disk_mb", "checkpoints (MB)", "int"),
]
MEAN_KEYS = [k for k, _, _ in REPORT_METRICS] + ["wall_time_s"]
RELATIVE_KEYS = ("train_time_s", "wall_time_s", "peak_rss_mb", "checkpoint_disk_mb")
RELATIVE_KEYS += ("examples_per_s",)
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
SIGN_FLIP_RESAMPLES = 10_000

METHOD = {
    "mean_std": "mean and sample standard deviation (ddof=1) over the variant's complete seeds",
    "delta": "variant mean minus baseline mean; *_rel: relative change",
    "ci": (
        f"95% paired cluster bootstrap ({BOOTSTRAP_RESAMPLES} resamples) over test reviews, "
        "predictions of the same seed paired by row_id, averaged over seeds"
    ),
    "ci_seeds": "95% Student-t interval over per-seed differences (training variability)",
    "p_value": (
        "two-sided paired sign-flip (permutation) test with the test review as the unit: each "
        "review's correctness averaged over seeds, variant minus baseline "
        f"({SIGN_FLIP_RESAMPLES} sign patterns, exact when few reviews differ)"
    ),
}


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _best_row(metrics: dict) -> dict:
    """The validation row of the kept checkpoint (by step, else epoch), else the last."""
    val = metrics.get("validation") or []
    best = metrics.get("best") or {}
    for key in ("step", "epoch"):
        if best.get(key) is not None:
            row = next((v for v in val if v.get(key) == best[key]), None)
            if row is not None:
                return row
    return val[-1] if val else {}


def run_metrics(metrics: dict) -> dict[str, float | None]:
    """The per-run numbers the report averages, from a run's ``metrics.json``."""
    row = _best_row(metrics)
    best = metrics.get("best") or {}
    test = metrics.get("test") or {}
    train = metrics.get("train") or {}
    out = {
        "val_accuracy": _num(row.get("accuracy")),
        "val_f1": _num(row.get("f1")),
        "val_loss": _num(row.get("loss", row.get("log_loss"))),
        "test_accuracy": _num(test.get("accuracy")),
        "test_f1": _num(test.get("f1")),
        "test_loss": _num(test.get("loss", test.get("log_loss"))),
        "best_epoch": _num(best.get("epoch", row.get("epoch"))),
    }
    for k in ("train_time_s", "wall_time_s", "examples_per_s", "peak_rss_mb"):
        out[k] = _num(train.get(k))
    for k in ("checkpoint_disk_mb", "global_batch_size", "world_size"):
        out[k] = _num(train.get(k))
    return out


def _load_predictions(run_dir: Path):
    import pandas as pd

    df = pd.read_parquet(run_dir / TEST_PREDICTIONS, columns=["row_id", "label", "prediction"])
    df["row_id"] = df["row_id"].astype(str)
    return df.drop_duplicates("row_id").set_index("row_id")


def _joined(base: dict[int, Path], var: dict[int, Path]) -> list:
    """Per shared seed, baseline and variant predictions joined on row_id."""
    frames = []
    for s in sorted(set(base) & set(var)):
        b, v = _load_predictions(base[s]), _load_predictions(var[s])
        j = b.merge(v, how="inner", left_index=True, right_index=True, suffixes=("_b", "_v"))
        if (j["label_b"] != j["label_v"]).any():
            raise SweepError(
                f"seed {s}: test labels differ between {base[s]} and {var[s]} for the same row_id"
            )
        frames.append(j)
    return frames


def paired_predictions(base: dict[int, Path], var: dict[int, Path]) -> PairedData | None:
    """Baseline and variant test predictions aligned as (reviews × shared seeds) arrays."""
    frames = _joined(base, var)
    row_ids = sorted(set().union(*(set(j.index) for j in frames))) if frames else []
    if not row_ids:
        return None
    pos = {r: i for i, r in enumerate(row_ids)}
    n, k = len(row_ids), len(frames)
    labels, bp, vp = (np.zeros((n, k), dtype=np.int64) for _ in range(3))
    present = np.zeros((n, k), dtype=bool)
    for c, j in enumerate(frames):
        idx = np.fromiter((pos[r] for r in j.index), dtype=np.int64, count=len(j))
        labels[idx, c] = j["label_b"].to_numpy()
        bp[idx, c] = j["prediction_b"].to_numpy()
        vp[idx, c] = j["prediction_v"].to_numpy()
        present[idx, c] = True
    # A review's label is the same in every seed; fill absent cells from any present one.
    labels = labels.max(axis=1, keepdims=True).repeat(k, 1)
    return PairedData(labels=labels, base_pred=bp, var_pred=vp, present=present)


def _collect(plan: SweepPlan) -> tuple[list[dict], dict, dict]:
    """Run statuses, per-variant per-seed metrics, and run dirs with test predictions."""
    runs_info: list[dict] = []
    per_variant: dict[str, dict[int, dict]] = {v.name: {} for v in plan.spec.variants}
    dirs: dict[str, dict[int, Path]] = {v.name: {} for v in plan.spec.variants}
    for r in plan.runs:
        done = is_complete_run(r.run_dir)
        status = "complete" if done else ("partial" if r.run_dir.exists() else "missing")
        entry = {"variant": r.variant, "seed": r.seed, "status": status, "run_dir": str(r.run_dir)}
        if done:
            try:
                m = json.loads((r.run_dir / METRICS_JSON).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                entry.update(status="unreadable", error=str(e))
            else:
                per_variant[r.variant][r.seed] = run_metrics(m)
                if (r.run_dir / TEST_PREDICTIONS).is_file():
                    dirs[r.variant][r.seed] = r.run_dir
        runs_info.append(entry)
    return runs_info, per_variant, dirs


def _deltas(mean: dict, base_mean: dict) -> dict:
    out = {}
    for k in MEAN_KEYS:
        if mean[k] is not None and base_mean[k] is not None:
            out[k] = mean[k] - base_mean[k]
            if k in RELATIVE_KEYS and base_mean[k]:
                out[f"{k}_rel"] = mean[k] / base_mean[k] - 1
    return out


def _seed_intervals(entry: dict, runs: dict, base_runs: dict) -> None:
    """Student-t intervals over per-seed differences (seeds both variants finished)."""
    shared = sorted(set(runs) & set(base_runs))
    for k in ("test_accuracy", "test_f1", "val_accuracy", "val_f1"):
        d = [
            runs[s][k] - base_runs[s][k]
            for s in shared
            if runs[s][k] is not None and base_runs[s][k] is not None
        ]
        ti = t_interval(np.asarray(d))
        entry["ci_seeds"][k] = [ti.lo, ti.hi] if ti.lo is not None else None
        if k == "test_accuracy":
            entry["t_test_p_value"] = ti.p_value


def _review_level(entry: dict, base_dirs: dict, var_dirs: dict) -> None:
    """The primary test and the cluster bootstrap on the paired test predictions."""
    paired = paired_predictions(base_dirs, var_dirs)
    if paired is None:
        return
    test = sign_flip_test(paired, n_resamples=SIGN_FLIP_RESAMPLES, seed=0)
    entry["review_test"] = test.to_dict()
    entry["p_value"] = test.p_value
    entry["paired_seeds"] = sorted(set(base_dirs) & set(var_dirs))
    entry["n_paired_predictions"] = paired.n_pairs
    for metric in ("accuracy", "f1"):
        bs = paired_bootstrap(paired, metric=metric, n_resamples=BOOTSTRAP_RESAMPLES, seed=0)
        entry["ci"][f"test_{metric}"] = [bs.lo, bs.hi]
        entry["delta"][f"test_{metric}_paired"] = bs.estimate
        if metric == "accuracy":
            entry["p_value_bootstrap"] = bs.p_value


def _variant_entry(v, runs: dict) -> dict:
    mean, std = {}, {}
    for k in MEAN_KEYS:
        mean[k], std[k] = mean_std([m[k] for m in runs.values()])
    return {
        "overrides": {k: plain(x) for k, x in v.overrides.items()},
        "seeds": sorted(runs),
        "n_seeds": len(runs),
        "mean": mean,
        "std": std,
        "per_seed": {str(s): runs[s] for s in sorted(runs)},
        "delta": {},
        "ci": {},
        "ci_seeds": {},
        "p_value": None,
    }


def pt(x: float | None, signed: bool = True) -> str:
    """A fraction as percentage points, e.g. 0.012 -> '+1.2' (typographic minus)."""
    if x is None:
        return "n/a"
    s = f"{x * 100:+.1f}" if signed else f"{x * 100:.1f}"
    return s.replace("-", "−")


def fmt_mean(mean: dict, std: dict, k: str) -> str:
    if mean.get(k) is None:
        return "n/a"
    return f"{mean[k] * 100:.1f}% ± {(std.get(k) or 0) * 100:.1f}"


def _significance(acc: float, e: dict) -> str:
    """'(95% CI .., significantly better, p=..)' from the bootstrap CI and the review test."""
    inner = []
    ci = e["ci"].get("test_accuracy") or e["ci_seeds"].get("test_accuracy")
    if ci and ci[0] is not None:
        inner.append(f"95% CI {pt(ci[0])}..{pt(ci[1])}")
    p = e.get("p_value")
    if p is None:
        inner.append("no paired test predictions")
    elif p < ALPHA:
        inner.append(f"significantly {'better' if acc > 0 else 'worse'}, p={p:.3g}")
    else:
        inner.append(f"not significant, p={p:.2g}")
    return f" ({', '.join(inner)})"


def verdict(name: str, e: dict) -> str:
    """One plain sentence: effect on test accuracy with its interval, significance, time."""
    d = e["delta"]
    acc = d.get("test_accuracy_paired", d.get("test_accuracy"))
    if acc is None:
        return f"{name}: no finished runs paired with the baseline yet"
    parts = [f"{name}: accuracy {pt(acc)} pt" + _significance(acc, e)]
    f1 = d.get("test_f1_paired", d.get("test_f1"))
    if f1 is not None:
        parts.append(f"F1 {pt(f1)} pt")
    rel = d.get("train_time_s_rel")
    if rel is not None:
        parts.append(f"{abs(rel) * 100:.0f}% {'less' if rel < 0 else 'more'} training time")
    sentence = ", ".join(parts)
    cs = e["ci_seeds"].get("test_accuracy")
    sig = e.get("p_value") is not None and e["p_value"] < ALPHA
    if e["n_seeds"] < 2:
        sentence += "; 1 seed only: seed-to-seed variation not measured"
    elif sig and cs and cs[0] is not None and cs[0] <= 0 <= cs[1]:
        sentence += f"; but not consistent across seeds (seed 95% CI {pt(cs[0])}..{pt(cs[1])} pt)"
    return sentence


def summarize(plan: SweepPlan) -> dict:
    """Statistics per variant over its complete runs, and the comparison with the baseline.

    Returns:
        The ``summary.json`` content: ``{"sweep", "baseline", "seeds", "runs", "method",
        "variants": {name: {"mean", "std", "delta", "ci", "ci_seeds", "p_value",
        "review_test", "verdict", ...}}}``.
    """
    spec = plan.spec
    baseline = spec.baseline_name
    runs_info, per_variant, dirs = _collect(plan)
    base_runs = per_variant.get(baseline, {})
    base_mean = {k: mean_std([m[k] for m in base_runs.values()])[0] for k in MEAN_KEYS}
    variants: dict[str, dict] = {}
    for v in spec.variants:
        runs = per_variant[v.name]
        entry = _variant_entry(v, runs)
        entry["is_baseline"] = v.name == baseline
        if entry["is_baseline"]:
            mean_acc = fmt_mean(entry["mean"], entry["std"], "test_accuracy")
            entry["verdict"] = f"{v.name}: baseline ({mean_acc} test accuracy, {len(runs)} seed(s))"
        else:
            entry["delta"] = _deltas(entry["mean"], base_mean)
            _seed_intervals(entry, runs, base_runs)
            _review_level(entry, dirs[baseline], dirs[v.name])
            entry["verdict"] = verdict(v.name, entry)
        variants[v.name] = entry
    return {
        "sweep": spec.name,
        "output_dir": str(plan.output_dir),
        "base": spec.base_source,
        "baseline": baseline,
        "seeds": plan.seeds,
        "complete_runs": sum(r["status"] == "complete" for r in runs_info),
        "total_runs": len(plan.runs),
        "alpha": ALPHA,
        "method": dict(METHOD),
        "variants": variants,
        "runs": runs_info,
    }
