"""What a training run reports: the validation history, the console summary
and the analysis report (helpers of :mod:`reviewsense.train`)."""

from __future__ import annotations

import logging
from pathlib import Path

from reviewsense import rundir

log = logging.getLogger(__name__)


def validation_history(log_history: list[dict]) -> list[dict]:
    """Per-evaluation validation metrics from the Trainer's log (``eval_*`` keys)."""
    rows = []
    for entry in log_history:
        if "eval_loss" not in entry:
            continue
        row = {"epoch": entry.get("epoch"), "step": entry.get("step")}
        for k, v in entry.items():
            if k.startswith("eval_") and not k.endswith(("_runtime", "_per_second")):
                row[k[len("eval_") :]] = v
        rows.append(row)
    return rows


def print_summary(metrics: dict, run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"reviewsense run: {run_dir}", show_lines=False)
    t.add_column("split")
    for k in ("accuracy", "f1", "f1_macro", "roc_auc", "log_loss", "n"):
        t.add_column(k, justify="right")
    for name, m in [
        ("validation (best)", metrics.get("best_validation")),
        ("test", metrics.get("test")),
    ]:
        if not m:
            continue
        t.add_row(
            name,
            *(
                f"{m[k]:.4f}" if isinstance(m.get(k), float) else str(m.get(k, ""))
                for k in ("accuracy", "f1", "f1_macro", "roc_auc", "log_loss", "n")
            ),
        )
    console = Console(stderr=True)
    console.print(t)
    test = metrics.get("test")
    tr = metrics["train"]
    if test:
        lo, hi = test["accuracy_ci95"]
        console.print(
            f"test accuracy {test['accuracy']:.4f} (95% CI {lo:.4f}..{hi:.4f}, n={test['n']}), "
            f"F1 {test['f1']:.4f}"
        )
    speed = tr.get("examples_per_s")
    console.print(
        f"train {tr['train_time_s']:.0f} s, "
        + (f"{speed:.1f} examples/s, " if speed is not None else "no steps left to train, ")
        + f"peak RSS {tr['peak_rss_mb']:.0f} MiB, checkpoints {tr['checkpoint_disk_mb']:.0f} MiB, "
        f"precision {tr['precision']}"
    )


def run_analysis(run_dir: Path) -> None:
    """``reviewsense analyze`` into ``<run>/analysis``; a failure there never fails the run."""
    try:
        from reviewsense.analysis.report import analyze_run

        analyze_run(run_dir, output_dir=run_dir / rundir.ANALYSIS_DIR, plots=True)
        log.info("analysis written to %s", run_dir / rundir.ANALYSIS_DIR)
    except Exception as e:  # noqa: BLE001 - the trained model matters more than the report
        log.warning("analysis of %s failed: %s", run_dir, e)
