"""Write the analysis of one run: ``summary.json``, ``report.md``, ``report.html``, plots.

``report.html`` is self-contained (plots embedded as base64 PNG) so it can be mailed or
attached to an issue as one file. Both reports are rendered from the same list of blocks.
"""

from __future__ import annotations

import base64
import html
import logging
import math
from pathlib import Path

from reviewsense.analysis.diagnose import diagnose
from reviewsense.analysis.trainer_state import TrainerState, load_trainer_state
from reviewsense.errors import DataError
from reviewsense.jsonio import write_json
from reviewsense.rundir import ANALYSIS_DIR

log = logging.getLogger(__name__)

SUMMARY_JSON = "summary.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
MAX_TABLE_ROWS = 40

Block = (
    tuple  # ("h1"|"h2"|"p", text) | ("ul", [str]) | ("table", headers, rows) | ("img", file, alt)
)


def default_output_dir(path: str | Path) -> Path:
    """``<path>/analysis`` for a folder, ``<parent>/analysis`` for a json file."""
    p = Path(path)
    return (p.parent if p.is_file() else p) / ANALYSIS_DIR


def load_and_diagnose(path: str | Path, eval_size: int | None = None) -> tuple[TrainerState, dict]:
    """Load a trainer state (any accepted path form) and diagnose it."""
    state = load_trainer_state(path)
    return state, diagnose(state, eval_size)


def _fmt(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def thin(rows: list, limit: int = MAX_TABLE_ROWS) -> list:
    """At most ``limit`` rows, evenly spaced, always keeping the last."""
    if len(rows) <= limit:
        return rows
    step = math.ceil(len(rows) / limit)
    kept = rows[::step]
    return kept if kept[-1] is rows[-1] else [*kept, rows[-1]]


def _verdict(summary: dict) -> list[str]:
    over = summary.get("overfitting")
    over_txt = {True: "**yes**", False: "no", None: "cannot tell from this log"}[over]
    if over and summary.get("overfitting_start_epoch") is not None:
        detail = summary.get("overfitting_detail") or {}
        what = "eval loss" if detail.get("by_loss") else (detail.get("metric") or "eval")
        over_txt += f" ({what} gets worse after epoch {summary['overfitting_start_epoch']})"
    over_txt += _detail_text(summary.get("overfitting_detail") or {})
    trend = (summary.get("loss_trend") or {}).get("trend")
    lr = summary.get("lr_schedule") or {}
    items = [
        f"Training loss: {trend or 'no training loss logged'}",
        f"Overfitting: {over_txt}",
        f"Recommended epochs: {_fmt(summary.get('recommended_epochs'))}; checkpoint: "
        f"{_fmt(summary.get('recommended_checkpoint'))}"
        + (
            f" (lowest eval loss: {summary['recommended_checkpoint_by_loss']})"
            if summary.get("recommended_checkpoint_by_loss")
            else ""
        ),
        f"Learning-rate schedule: {_fmt(lr.get('shape'))}, warmup {_fmt(lr.get('warmup_steps'))} steps",
        f"Gradient-norm spikes: {(summary.get('grad_norm') or {}).get('spike_count', 'n/a (no grad_norm)')}",
    ]
    if summary.get("lowest_loss"):
        low = summary["lowest_loss"]
        items.append(
            f"Lowest training loss: {low['value']} at step {low['step']} (epoch {low['epoch']})"
        )
    return items


def _detail_text(d: dict) -> str:
    """``; by loss: yes, by accuracy: no (noise ±0.02, binomial)`` for the verdict line."""
    if not d:
        return ""
    parts = [f"by loss: {_fmt(d.get('by_loss'))}"]
    if d.get("metric"):
        parts.append(f"by {d['metric']}: {_fmt(d.get('by_metric'))}")
    if d.get("noise_band") is not None:
        parts.append(f"noise band ±{_fmt(d['noise_band'])} ({d.get('noise_source')})")
    return " — " + ", ".join(parts)


def build_blocks(summary: dict, plot_files: list[str], title: str | None = None) -> list[Block]:
    """The report's content, independent of the output format."""
    run = summary["run"]
    b: list[Block] = [("h1", title or f"Training run analysis: {run['trainer_state']}")]
    if run.get("checkpoint_note"):
        b.append(("p", run["checkpoint_note"]))
    b += [("h2", "Verdict"), ("ul", _verdict(summary)), ("h2", "Findings")]
    b.append(("ul", [f"**{f['kind']}**: {f['message']}" for f in summary["findings"]]))
    b += [
        ("h2", "Run"),
        (
            "table",
            ["field", "value"],
            [[k, _fmt(v)] for k, v in run.items() if k != "checkpoint_note"],
        ),
    ]

    b.append(("h2", "Training loss"))
    if summary["loss_table"]:
        rows = [
            [r["step"], r["epoch"], r["loss"], r["smoothed"], r["note"]]
            for r in summary["loss_table"]
        ]
        b.append(("table", ["step", "epoch", "loss", "smoothed (EMA)", "note"], rows))
    if "loss.png" in plot_files:
        b.append(("img", "loss.png", "training loss"))
    by_epoch = summary.get("loss_by_epoch") or []
    if by_epoch:
        rows = [
            [r["epoch"], r["n_logs"], r["mean_loss"], r["smoothed_end"], r["change_vs_prev"]]
            for r in by_epoch
        ]
        b.append(
            (
                "table",
                ["epoch", "logs", "mean loss", "smoothed at end", "change vs prev"],
                thin(rows),
            )
        )

    return b + _eval_and_curve_blocks(summary, plot_files)


def _eval_and_curve_blocks(summary: dict, plot_files: list[str]) -> list[Block]:
    """Evaluation table, learning rate and gradient-norm sections of the report."""
    b: list[Block] = []
    b.append(("h2", "Evaluation"))
    ev = summary.get("eval") or []
    if ev:
        names = sorted({m for r in ev for m in r["metrics"]})
        rows = [
            [r["epoch"], r["step"], r["eval_loss"], r["train_loss"], r["train_eval_gap"]]
            + [r["metrics"].get(n) for n in names]
            for r in ev
        ]
        b.append(("table", ["epoch", "step", "eval loss", "train loss", "gap", *names], thin(rows)))
    else:
        b.append(("p", "No evaluation entries in the log."))
    if "eval.png" in plot_files:
        b.append(("img", "eval.png", "evaluation"))

    b.append(("h2", "Learning rate"))
    lr = summary.get("lr_schedule") or {}
    b.append(("table", ["field", "value"], [[k, _fmt(v)] for k, v in lr.items()]))
    if "learning_rate.png" in plot_files:
        b.append(("img", "learning_rate.png", "learning rate"))

    b.append(("h2", "Gradient norm"))
    spikes = sorted(summary.get("spikes") or [], key=lambda s: -(s["ratio_to_median"] or 0))[:20]
    if spikes:
        rows = [
            [
                s["step"],
                s["epoch"],
                s["value"],
                s["local_median"],
                s["ratio_to_median"],
                s["loss_jumped"],
            ]
            for s in spikes
        ]
        b.append(
            ("p", f"Largest {len(spikes)} of {summary['grad_norm'].get('spike_count')} spikes:")
        )
        b.append(
            ("table", ["step", "epoch", "grad norm", "local median", "ratio", "loss jumped"], rows)
        )
    elif not (summary.get("grad_norm") or {}).get("available"):
        b.append(("p", "No grad_norm in this log."))
    else:
        b.append(("p", "No gradient-norm spikes."))
    if "grad_norm.png" in plot_files:
        b.append(("img", "grad_norm.png", "gradient norm"))
    return b


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for blk in blocks:
        kind = blk[0]
        if kind == "h1":
            out.append(f"# {blk[1]}")
        elif kind == "h2":
            out.append(f"## {blk[1]}")
        elif kind == "p":
            out.append(blk[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in blk[1]))
        elif kind == "table":
            head, rows = blk[1], blk[2]
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += [
                "| " + " | ".join(_fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows
            ]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{blk[2]}]({blk[1]})")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape for HTML, then turn the markdown ``**bold**`` we emit into <strong>."""
    parts = html.escape(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
    "font-size:13px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
    "img{max-width:100%}li{margin:.3em 0}"
)


def render_html(blocks: list[Block], image_dir: Path) -> str:
    """Self-contained HTML: images are read from ``image_dir`` and embedded as base64."""
    out = ["<!doctype html><html><head><meta charset='utf-8'>"]
    title = next((b[1] for b in blocks if b[0] == "h1"), "reviewsense analysis")
    out.append(f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>")
    for blk in blocks:
        kind = blk[0]
        if kind in ("h1", "h2", "p"):
            out.append(f"<{kind}>{_inline(blk[1])}</{kind}>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in blk[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in blk[1])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>"
                for row in blk[2]
            )
            out.append(f"<table><tr>{head}</tr>{body}</table>")
        elif kind == "img":
            data = base64.b64encode((image_dir / blk[1]).read_bytes()).decode("ascii")
            out.append(
                f"<p><img alt='{html.escape(blk[2])}' src='data:image/png;base64,{data}'></p>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_reports(
    summary: dict, out_dir: Path, plot_files: list[str], title: str | None = None
) -> list[Path]:
    """Write summary.json, report.md and report.html into ``out_dir``."""
    blocks = build_blocks(summary, plot_files, title)
    paths = [out_dir / SUMMARY_JSON, out_dir / REPORT_MD, out_dir / REPORT_HTML]
    write_json(paths[0], summary)
    paths[1].write_text(render_markdown(blocks), encoding="utf-8")
    paths[2].write_text(render_html(blocks, out_dir), encoding="utf-8")
    return paths


def prepare_output_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create output directory {out}: {e.strerror or e}") from None
    return out


def analyze_run(
    path: str | Path,
    output_dir: str | Path | None = None,
    plots: bool = True,
    eval_size: int | None = None,
) -> dict:
    """Analyse one Trainer run and write its report files.

    Args:
        path: run directory, ``checkpoint-N/`` folder, folder of checkpoints or a
            ``trainer_state.json`` file.
        output_dir: where to write; default ``<path>/analysis`` (``<parent>/analysis`` for a file).
        plots: write PNG plots (and embed them in the HTML report).
        eval_size: examples per evaluation, when known (binomial noise band).

    Returns:
        The summary dict (also written as ``summary.json``), with ``outputs`` listing the files.

    Raises:
        DataError: for a missing path, unreadable or non-trainer-state JSON, or an output
            directory that cannot be created.
    """
    state, summary = load_and_diagnose(path, eval_size)
    out = prepare_output_dir(output_dir if output_dir is not None else default_output_dir(path))
    plot_paths: list[Path] = []
    if plots:
        from reviewsense.analysis.plots import plot_run

        plot_paths = plot_run(state, summary, out)
    summary["outputs"] = {"dir": str(out), "plots": [p.name for p in plot_paths]}
    files = write_reports(summary, out, [p.name for p in plot_paths])
    summary["outputs"]["files"] = [p.name for p in files + plot_paths]
    log.info("analysis of %s written to %s", state.path, out)
    return summary
