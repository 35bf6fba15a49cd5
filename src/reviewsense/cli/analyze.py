"""`reviewsense analyze PATH [PATH ...]`: diagnose Trainer runs from their trainer_state.json."""

from __future__ import annotations

import argparse

HELP = "Diagnose Hugging Face Trainer runs from trainer_state.json (several paths: compare them)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="run directory, checkpoint-N/ folder, folder of checkpoints, or trainer_state.json",
    )
    parser.add_argument(
        "--output",
        metavar="DIR",
        help="where to write the report (default: <run>/analysis/; for several runs "
        "<their common folder>/comparison/)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (faster)")
    parser.add_argument(
        "--eval-size",
        type=int,
        metavar="N",
        help="examples per evaluation: metric changes then count only beyond the binomial "
        "noise band 1.96*sqrt(p(1-p)/N) (default: from metrics.json / eval_samples, else "
        "estimated from the eval series)",
    )
    parser.add_argument(
        "--fail-on",
        metavar="KINDS",
        help="comma list of finding kinds (e.g. overfitting,not_learning,loss_collapse): exit 3 "
        "when any run has one of them, so a CI job can stop a bad run",
    )


def parse_fail_on(text: str | None) -> set[str]:
    """The kinds named by ``--fail-on``; an unknown name is a one-line user error."""
    from reviewsense.analysis.diagnose import FINDING_KINDS
    from reviewsense.errors import ConfigError

    if not text:
        return set()
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(kinds - FINDING_KINDS)
    if unknown or not kinds:
        raise ConfigError(
            f"--fail-on: unknown finding kind(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(sorted(FINDING_KINDS))}"
        )
    return kinds


def _print_run(console, summary: dict) -> None:
    from rich.table import Table

    run = summary["run"]
    if run.get("checkpoint_note"):
        console.print(f"[dim]{run['checkpoint_note']}[/dim]")
    t = Table(title=f"Analysis of {run['trainer_state']}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    low, final = summary.get("lowest_loss") or {}, summary.get("final_loss") or {}
    lr = summary.get("lr_schedule") or {}
    over = {
        True: "[red]yes[/red]",
        False: "[green]no[/green]",
        None: "[yellow]cannot tell[/yellow]",
    }
    t.add_row("steps / epochs", f"{run.get('global_step')} / {run.get('epochs')}")
    t.add_row("final loss", f"{final.get('value')} (step {final.get('step')})" if final else "—")
    t.add_row(
        "lowest loss",
        f"{low.get('value')} (step {low.get('step')}, epoch {low.get('epoch')})" if low else "—",
    )
    t.add_row("loss trend", str((summary.get("loss_trend") or {}).get("trend")))
    t.add_row("LR schedule", f"{lr.get('shape')}, warmup {lr.get('warmup_steps')} steps")
    t.add_row("grad-norm spikes", str((summary.get("grad_norm") or {}).get("spike_count", "n/a")))
    detail = summary.get("overfitting_detail") or {}
    t.add_row(
        "overfitting",
        f"{over[summary.get('overfitting')]} (by loss: {detail.get('by_loss')}, by "
        f"{detail.get('metric')}: {detail.get('by_metric')}, noise band "
        f"{detail.get('noise_band')} {detail.get('noise_source') or ''})",
    )
    t.add_row(
        "recommended epochs",
        f"{summary.get('recommended_epochs')} ({summary.get('recommended_checkpoint')})",
    )
    if summary.get("recommended_checkpoint_by_loss"):
        t.add_row("lowest eval loss at", str(summary["recommended_checkpoint_by_loss"]))
    console.print(t)
    for f in summary["findings"]:
        console.print(f"• [bold]{f['kind']}[/bold]: {f['message']}", highlight=False)


def _print_comparison(console, result: dict) -> None:
    """Runs side by side: one column per run, one row per field of the comparison table."""
    from rich.table import Table

    table = result["comparison"]
    runs = [r["run"] for r in table["rows"]]
    t = Table(title=f"Comparison of {len(runs)} runs", title_justify="left")
    t.add_column("field", style="bold")
    for name in runs:
        t.add_column(name, overflow="fold")
    for col in table["columns"][1:]:
        values = [r.get(col) for r in table["rows"]]
        if all(v is None for v in values):
            continue
        t.add_row(col, *[f"{v:.4g}" if isinstance(v, float) else str(v) for v in values])
    console.print(t)
    for f in result["findings"]:
        console.print(f"• {f['message']}", highlight=False)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from reviewsense.analysis.compare import compare_runs, default_comparison_dir
    from reviewsense.analysis.report import analyze_run
    from reviewsense.errors import ConfigError

    fail_on = parse_fail_on(args.fail_on)
    if args.eval_size is not None and args.eval_size < 1:
        raise ConfigError(f"--eval-size must be a positive count of examples, got {args.eval_size}")
    console = Console()
    plots = not args.no_plots
    if len(args.paths) == 1:
        summary = analyze_run(args.paths[0], args.output, plots=plots, eval_size=args.eval_size)
        _print_run(console, summary)
        out, summaries = summary["outputs"]["dir"], [summary]
    else:
        out_dir = args.output or default_comparison_dir(args.paths)
        result = compare_runs(args.paths, out_dir, plots=plots, eval_size=args.eval_size)
        _print_comparison(console, result)
        out, summaries = result["outputs"]["dir"], [r["summary"] for r in result["runs"]]
    console.print(
        f"Report written to [bold]{out}[/bold] (report.md, report.html, summary.json)",
        highlight=False,
    )
    hits = sorted({f["kind"] for s in summaries for f in s["findings"]} & fail_on)
    if hits:
        console.print(f"[red]--fail-on: found {', '.join(hits)}[/red]", highlight=False)
        return 3
    return 0
