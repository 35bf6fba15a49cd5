"""Write a sweep's ``summary.json``, ``report.md`` and ``report.html`` (and overlay curves).

Rendering reuses ``analysis/report.py``'s blocks (the same markdown and self-contained HTML
as ``reviewsense analyze``) and the strict JSON writer (``jsonio.write_json``).
"""

from __future__ import annotations

import logging

from reviewsense.analysis.report import render_html, render_markdown
from reviewsense.jsonio import write_json
from reviewsense.rundir import is_complete_run
from reviewsense.sweep.plan import SweepPlan
from reviewsense.sweep.summary import REPORT_METRICS, pt, summarize

log = logging.getLogger(__name__)

SUMMARY_JSON = "summary.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
CURVES_DIR = "curves"

Block = tuple  # see reviewsense.analysis.report: ("h1"|"h2"|"p", text) | ("ul", [..]) | ...


def _cell(v: float | None, sd: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "pct":
        return f"{v * 100:.2f} ± {(sd or 0) * 100:.2f}"
    if unit == "int":
        return f"{v:.0f} ± {(sd or 0):.0f}"
    return f"{v:.3f} ± {(sd or 0):.3f}"


def _ci(ci: list | None) -> str:
    return "n/a" if not ci or ci[0] is None else f"{pt(ci[0])}..{pt(ci[1])}"


def _means_table(summary: dict) -> Block:
    head = ["variant", "seeds"] + [label for _, label, _ in REPORT_METRICS]
    rows = [
        [name + (" (baseline)" if e.get("is_baseline") else ""), str(e["n_seeds"])]
        + [_cell(e["mean"].get(k), e["std"].get(k), u) for k, _, u in REPORT_METRICS]
        for name, e in summary["variants"].items()
    ]
    return ("table", head, rows)


DIFF_HEAD = [
    "variant",
    "Δ test acc (pt)",
    "95% CI (bootstrap)",
    "95% CI (seeds)",
    "Δ test F1 (pt)",
    "95% CI (bootstrap)",
    "reviews better/worse",
    "p-value (reviews)",
    "Δ train time",
]


def _diff_row(name: str, e: dict) -> list[str]:
    d = e["delta"]
    rt = e.get("review_test")
    rel = d.get("train_time_s_rel")
    return [
        name,
        pt(d.get("test_accuracy_paired", d.get("test_accuracy"))),
        _ci(e["ci"].get("test_accuracy")),
        _ci(e["ci_seeds"].get("test_accuracy")),
        pt(d.get("test_f1_paired", d.get("test_f1"))),
        _ci(e["ci"].get("test_f1")),
        f"{rt['better']}/{rt['worse']}" if rt else "n/a",
        f"{e['p_value']:.3g}" if e.get("p_value") is not None else "n/a",
        f"{rel * 100:+.0f}%".replace("-", "−") if rel is not None else "n/a",
    ]


def build_blocks(summary: dict, curve_files: list[str]) -> list[Block]:
    """The report as ``analysis.report`` blocks: verdicts first, then tables and method."""
    diff_rows = [_diff_row(n, e) for n, e in summary["variants"].items() if not e["is_baseline"]]
    blocks: list[Block] = [
        ("h1", f"Sweep {summary['sweep']}"),
        (
            "p",
            f"Base: {summary['base']} · baseline variant: {summary['baseline']} · seeds: "
            f"{', '.join(map(str, summary['seeds']))} · complete runs: "
            f"{summary['complete_runs']}/{summary['total_runs']}",
        ),
        ("h2", "Verdicts"),
        ("ul", [e["verdict"] for e in summary["variants"].values()]),
        ("h2", "Per variant (mean ± std over seeds)"),
        _means_table(summary),
        ("h2", "Difference from the baseline"),
        ("table", DIFF_HEAD, diff_rows) if diff_rows else ("p", "(no other variant)"),
        ("h2", "Method"),
        ("ul", [f"**{k}**: {v}" for k, v in summary["method"].items()]),
        (
            "p",
            f"Significant: p < {summary['alpha']}. The review-level test and the bootstrap "
            "measure test-set noise for these trained models; the seed interval measures how "
            "much the difference moves between seeds. A recipe change is convincing when both "
            "agree.",
        ),
    ]
    if curve_files:
        blocks += [("h2", "Curves"), *[("img", f, f) for f in curve_files]]
    runs = [[r["variant"], str(r["seed"]), r["status"], r["run_dir"]] for r in summary["runs"]]
    blocks += [("h2", "Runs"), ("table", ["variant", "seed", "status", "run dir"], runs)]
    return blocks


def _write_curves(plan: SweepPlan) -> list[str]:
    """Overlay curves via ``analyze``'s comparison (one run per variant: its first seed)."""
    chosen, labels = [], []
    for v in plan.spec.variants:
        run = next(
            (r for r in plan.runs if r.variant == v.name and is_complete_run(r.run_dir)), None
        )
        if run is not None:
            chosen.append(str(run.run_dir))
            labels.append(f"{v.name}/seed-{run.seed}")
    if not chosen:
        return []
    try:
        from reviewsense.analysis.compare import compare_runs

        compare_runs(chosen, plan.output_dir / CURVES_DIR, plots=True, labels=labels)
    except Exception as e:  # curves are a nice-to-have; the statistics stand alone
        log.warning(
            "sweep curves skipped: analyze's compare_runs failed (%s: %s)", type(e).__name__, e
        )
    return _curve_files(plan)


def _curve_files(plan: SweepPlan) -> list[str]:
    """The overlay plots (top level of ``curves/``; per-run plots live in its subfolders)."""
    out = plan.output_dir / CURVES_DIR
    if not out.is_dir():
        return []
    return sorted(str(p.relative_to(plan.output_dir)) for p in out.glob("*.png"))


def _write_text(path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_report(plan: SweepPlan, curves: bool = True) -> dict:
    """Write ``summary.json``, ``report.md`` and ``report.html`` into the sweep folder.

    Args:
        plan: the sweep (from ``plan_sweep`` or ``load_plan``).
        curves: also overlay training curves into ``DIR/curves`` (via ``analyze``).

    Returns:
        The summary dict written to ``summary.json``.
    """
    summary = summarize(plan)
    curve_files = _write_curves(plan) if curves else _curve_files(plan)
    out = plan.output_dir
    write_json(out / SUMMARY_JSON, summary)
    blocks = build_blocks(summary, curve_files)
    _write_text(out / REPORT_MD, render_markdown(blocks))
    _write_text(out / REPORT_HTML, render_html(blocks, out))
    for e in summary["variants"].values():
        log.info("%s", e["verdict"])
    return summary
