"""Compare several Trainer runs: one table, overlay plots aligned by epoch, per-run reports.

A sweep reuses :func:`compare_runs` with its run directories (and display labels); the CLI
calls it when ``reviewsense analyze`` gets several paths.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from reviewsense.analysis.diagnose import HEALTH_KINDS
from reviewsense.analysis.report import (
    REPORT_HTML,
    REPORT_MD,
    SUMMARY_JSON,
    Block,
    load_and_diagnose,
    prepare_output_dir,
    render_html,
    render_markdown,
    thin,
    write_reports,
)
from reviewsense.analysis.series import lower_is_better
from reviewsense.analysis.trainer_state import TrainerState, load_trainer_state
from reviewsense.errors import DataError
from reviewsense.jsonio import write_json

log = logging.getLogger(__name__)

COMPARISON_DIR = "comparison"


def run_label(path: str | Path) -> str:
    """A short display name: the run folder's name (skipping ``checkpoint-N``/the json file)."""
    p = Path(path).resolve()
    if p.is_file():
        p = p.parent
    if p.name.startswith("checkpoint-") or p.name == "checkpoints":
        p = p.parent if p.parent.name != "checkpoints" else p.parent.parent
    return p.name or str(p)


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        n = seen.get(lab, 0)
        seen[lab] = n + 1
        out.append(lab if n == 0 else f"{lab}-{n + 1}")
    return out


def default_comparison_dir(paths: list[str | Path]) -> Path:
    """``<common parent of the runs>/comparison``."""
    dirs = [str((Path(p).parent if Path(p).is_file() else Path(p)).resolve()) for p in paths]
    return Path(os.path.commonpath(dirs)) / COMPARISON_DIR


def _load(
    item: str | Path | dict, eval_size: int | None = None
) -> tuple[TrainerState | None, dict, str]:
    """(state or None, summary, label source) for a path or an already computed summary."""
    if isinstance(item, dict):
        src = (item.get("run") or {}).get("trainer_state")
        state = None
        if src and Path(src).is_file():
            try:
                state = load_trainer_state(src)
            except DataError:
                log.warning("cannot reload %s for curves; comparing its summary only", src)
        return state, item, src or "run"
    state, summary = load_and_diagnose(item, eval_size)
    return state, summary, str(item)


def _best_eval(summary: dict, key: str) -> tuple[float | None, object]:
    rows = summary.get("eval") or []
    vals = [(r["eval_loss"] if key == "loss" else r["metrics"].get(key), r["epoch"]) for r in rows]
    vals = [(v, e) for v, e in vals if v is not None]
    if not vals:
        return None, None
    pick = min if lower_is_better(key) else max
    return pick(vals, key=lambda ve: ve[0])


def comparison_table(labels: list[str], summaries: list[dict]) -> dict:
    """One row per run: steps, epochs, losses, best eval loss and metrics, verdicts, time."""
    metrics = sorted({m for s in summaries for r in s.get("eval") or [] for m in r["metrics"]})
    columns = [
        "run",
        "global_step",
        "epochs",
        "final_loss",
        "lowest_loss",
        "best_eval_loss",
        "best_eval_loss_epoch",
    ]
    columns += [f"best_{m}" for m in metrics]
    columns += [
        "selection_metric",
        "best_selection_value",
        "overfitting",
        "overfitting_by_loss",
        "overfitting_by_metric",
        "recommended_checkpoint",
        "recommended_checkpoint_by_loss",
        "health_findings",
        "recommended_epochs",
        "lr_schedule",
        "grad_norm_spikes",
        "train_runtime_s",
    ]
    rows = []
    for label, s in zip(labels, summaries, strict=True):
        run = s.get("run") or {}
        best_loss, best_loss_epoch = _best_eval(s, "loss")
        row = {
            "run": label,
            "global_step": run.get("global_step"),
            "epochs": run.get("epochs"),
            "final_loss": (s.get("final_loss") or {}).get("value"),
            "lowest_loss": (s.get("lowest_loss") or {}).get("value"),
            "best_eval_loss": best_loss,
            "best_eval_loss_epoch": best_loss_epoch,
        }
        for m in metrics:
            row[f"best_{m}"] = _best_eval(s, m)[0]
        detail = s.get("overfitting_detail") or {}
        key = s.get("selection_metric") or s.get("primary_metric") or "loss"
        row.update(
            selection_metric=key,
            best_selection_value=_best_eval(s, key)[0],
            overfitting=s.get("overfitting"),
            overfitting_by_loss=detail.get("by_loss"),
            overfitting_by_metric=detail.get("by_metric"),
            recommended_checkpoint=s.get("recommended_checkpoint"),
            recommended_checkpoint_by_loss=s.get("recommended_checkpoint_by_loss"),
            health_findings=",".join(
                sorted({f["kind"] for f in s.get("findings", [])} & set(HEALTH_KINDS))
            ),
            recommended_epochs=s.get("recommended_epochs"),
            lr_schedule=(s.get("lr_schedule") or {}).get("shape"),
            grad_norm_spikes=(s.get("grad_norm") or {}).get("spike_count"),
            train_runtime_s=run.get("train_runtime_s"),
        )
        rows.append(row)
    return {"columns": columns, "rows": rows}


def aligned_evals(labels: list[str], summaries: list[dict]) -> dict:
    """Runs lined up on the same steps: each run's selection metric and eval loss per step.

    Returns:
        ``{"steps": [...], "runs": {label: {"metric": name, "values": [...], "eval_loss":
        [...]}}}``; None where a run did not evaluate at that step.
    """
    steps = sorted({r["step"] for s in summaries for r in s.get("eval") or []})
    runs = {}
    for label, s in zip(labels, summaries, strict=True):
        key = s.get("selection_metric") or s.get("primary_metric") or "loss"
        by_step = {r["step"]: r for r in s.get("eval") or []}
        runs[label] = {
            "metric": key,
            "values": [
                (by_step[t]["eval_loss"] if key == "loss" else by_step[t]["metrics"].get(key))
                if t in by_step
                else None
                for t in steps
            ],
            "eval_loss": [by_step[t]["eval_loss"] if t in by_step else None for t in steps],
        }
    return {"steps": steps, "runs": runs}


def _leaders(table: dict) -> list[dict]:
    """Which run is best on final train loss, eval loss and each eval metric."""
    out = []
    for col in table["columns"]:
        if col.endswith("_epoch") or col == "best_selection_value":
            continue
        if col != "final_loss" and not col.startswith("best_"):
            continue
        vals = [(r[col], r["run"]) for r in table["rows"] if isinstance(r.get(col), int | float)]
        if len(vals) < 2:
            continue
        name = col.removeprefix("best_")
        v, who = (min if lower_is_better(name) else max)(vals)
        out.append(
            {
                "kind": "comparison",
                "message": f"Best {col}: {who} ({v:.4g}).",
                "evidence": {"column": col, "values": {r: x for x, r in vals}},
            }
        )
    return out


def compare_runs(
    paths_or_summaries: list[str | Path | dict],
    output_dir: str | Path,
    plots: bool = True,
    labels: list[str] | None = None,
    eval_size: int | None = None,
) -> dict:
    """Analyse and compare several runs; write the comparison and a report per run.

    Args:
        paths_or_summaries: run dirs / checkpoint dirs / json files, or summaries returned
            by :func:`~reviewsense.analysis.report.analyze_run` (curves are reloaded from the
            ``run.trainer_state`` file they name, when it still exists).
        output_dir: comparison folder; per-run reports go to ``<output_dir>/runs/<label>/``.
        plots: write overlay and per-run PNG plots.
        labels: display names, one per run (default: the run folder names).
        eval_size: examples per evaluation for every run, when known.

    Returns:
        ``{"runs": [{"label", "source", "summary"}], "comparison": {"columns", "rows"},
        "findings": [...]}``, also written as ``summary.json``.

    Raises:
        DataError: for any unreadable run (the message names it) or mismatched labels.
    """
    if labels is not None and len(labels) != len(paths_or_summaries):
        raise DataError(f"got {len(labels)} labels for {len(paths_or_summaries)} runs")
    loaded = [_load(item, eval_size) for item in paths_or_summaries]
    names = _unique(
        labels
        or [
            run_label(src) if src != "run" else f"run{i + 1}"
            for i, (_, _, src) in enumerate(loaded)
        ]
    )
    out = prepare_output_dir(output_dir)
    runs = []
    for name, (state, summary, src) in zip(names, loaded, strict=True):
        run_dir = prepare_output_dir(out / "runs" / name)
        plot_files: list[str] = []
        if plots and state is not None:
            from reviewsense.analysis.plots import plot_run

            plot_files = [p.name for p in plot_run(state, summary, run_dir)]
        write_reports(
            summary,
            run_dir,
            plot_files,
            title=f"Run {name}: {(summary.get('run') or {}).get('trainer_state')}",
        )
        runs.append({"label": name, "source": src, "report_dir": str(run_dir), "summary": summary})

    table = comparison_table(names, [r["summary"] for r in runs])
    aligned = aligned_evals(names, [r["summary"] for r in runs])
    result = {"runs": runs, "comparison": table, "aligned": aligned, "findings": _leaders(table)}
    plot_files = []
    if plots:
        from reviewsense.analysis.plots import plot_comparison

        curves = [
            (n, st, sm) for n, (st, sm, _) in zip(names, loaded, strict=True) if st is not None
        ]
        plot_files = [p.name for p in plot_comparison(curves, out)] if curves else []
    result["outputs"] = {"dir": str(out), "plots": plot_files}
    blocks = _blocks(result, plot_files)
    write_json(out / SUMMARY_JSON, result)
    (out / REPORT_MD).write_text(render_markdown(blocks), encoding="utf-8")
    (out / REPORT_HTML).write_text(render_html(blocks, out), encoding="utf-8")
    log.info("comparison of %d runs written to %s", len(runs), out)
    return result


def _blocks(result: dict, plot_files: list[str]) -> list[Block]:
    table = result["comparison"]
    b: list[Block] = [("h1", f"Comparison of {len(result['runs'])} training runs")]
    b.append(
        ("table", table["columns"], [[r.get(c) for c in table["columns"]] for r in table["rows"]])
    )
    if result["findings"]:
        b.append(("ul", [f["message"] for f in result["findings"]]))
    al = result.get("aligned") or {}
    if al.get("steps"):
        names = list(al["runs"])
        rows = [
            [t] + [al["runs"][n]["values"][i] for n in names] for i, t in enumerate(al["steps"])
        ]
        head = ["step"] + [f"{n} ({al['runs'][n]['metric']})" for n in names]
        b += [("h2", "Evaluations lined up by step"), ("table", head, thin(rows))]
    for f in plot_files:
        b.append(("img", f, f.removesuffix(".png").replace("_", " ")))
    b.append(("h2", "Runs"))
    items = []
    for r in result["runs"]:
        s = r["summary"]
        trend = (s.get("loss_trend") or {}).get("trend")
        health = sorted({f["kind"] for f in s.get("findings", [])} & set(HEALTH_KINDS))
        items.append(
            f"**{r['label']}** ({r['source']}): loss {trend}, overfitting {s.get('overfitting')}, "
            f"recommended {s.get('recommended_checkpoint')} (epoch {s.get('recommended_epochs')})"
            f", findings: {', '.join(health) or 'none'}; full report in "
            f"runs/{r['label']}/{REPORT_MD}"
        )
    b.append(("ul", items))
    return b
