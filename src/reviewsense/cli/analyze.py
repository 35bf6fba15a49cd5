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
    t.add_row("overfitting", over[summary.get("overfitting")])
    t.add_row(
        "recommended epochs",
        f"{summary.get('recommended_epochs')} ({summary.get('recommended_checkpoint')})",
    )
    console.print(t)
    for f in summary["findings"]:
        console.print(f"• [bold]{f['kind']}[/bold]: {f['message']}", highlight=False)


def _print_comparison(console, result: dict) -> None:
    from rich.table import Table

    table = result["comparison"]
    t = Table(title=f"Comparison of {len(result['runs'])} runs", title_justify="left")
    for c in table["columns"]:
        t.add_column(c)
    for row in table["rows"]:
        t.add_row(
            *[
                f"{v:.4g}" if isinstance(v, float) else str(v)
                for v in (row.get(c) for c in table["columns"])
            ]
        )
    console.print(t)
    for f in result["findings"]:
        console.print(f"• {f['message']}", highlight=False)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from reviewsense.analysis.compare import compare_runs, default_comparison_dir
    from reviewsense.analysis.report import analyze_run

    console = Console()
    plots = not args.no_plots
    if len(args.paths) == 1:
        summary = analyze_run(args.paths[0], args.output, plots=plots)
        _print_run(console, summary)
        out = summary["outputs"]["dir"]
    else:
        out_dir = args.output or default_comparison_dir(args.paths)
        result = compare_runs(args.paths, out_dir, plots=plots)
        _print_comparison(console, result)
        out = result["outputs"]["dir"]
    console.print(
        f"Report written to [bold]{out}[/bold] (report.md, report.html, summary.json)",
        highlight=False,
    )
    return 0
