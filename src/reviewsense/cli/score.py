"""`reviewsense score`: batch-score review files into a Parquet dataset (local or Ray)."""

from __future__ import annotations

import argparse
from pathlib import Path

from reviewsense.cli._common import add_inference_arguments

HELP = "batch-score review files into a Parquet dataset (--engine local or ray), resumable"

EPILOG = """\
input: a .parquet/.csv/.tsv/.jsonl file, a folder of .parquet files, or a quoted glob.
output: a folder of Parquet files, one per block of input rows (--block-rows rows of a Parquet
file; a whole CSV/TSV/JSONL/TXT file), every input row kept: row_id,
the --keep-columns, label, prob_negative, prob_positive, truncated, and error (null, or why
the row was not scored: missing text, empty text, not text, invalid utf-8, invalid json).
Running again with the same --output skips the blocks already written.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reviewsense.score.run import DEFAULT_BLOCK_ROWS

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("model", metavar="MODEL", help="run directory, model folder or export")
    parser.add_argument("--input", "-i", required=True, metavar="PATH", help="file, folder, glob")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: one process; ray: Ray Data actor pool (pip install 'reviewsense[scale]')",
    )
    parser.add_argument(
        "--address", metavar="ADDR", help="Ray cluster: auto or ray://host:port (default: local)"
    )
    parser.add_argument("--text-column", metavar="NAME", help="column with the review text")
    parser.add_argument(
        "--keep-columns", metavar="A,B", default="", help="input columns to copy to the output"
    )
    parser.add_argument(
        "--block-rows",
        type=int,
        default=DEFAULT_BLOCK_ROWS,
        metavar="N",
        help=f"rows per output file of a Parquet input (default {DEFAULT_BLOCK_ROWS}); a "
        "CSV/TSV/JSONL/TXT file is always one block, whatever N",
    )
    parser.add_argument(
        "--actors", type=int, metavar="N", help="Ray: Predictor actors (default CPUs / threads)"
    )
    parser.add_argument(
        "--threads-per-actor",
        type=int,
        metavar="N",
        help="intra-op threads per Predictor (default: local all cores, Ray min(4, CPUs))",
    )
    add_inference_arguments(parser, threads=False)  # threads: --threads-per-actor


def _config(args: argparse.Namespace):
    from reviewsense.score.run import ScoreConfig

    keep = tuple(c.strip() for c in args.keep_columns.split(",") if c.strip())
    return ScoreConfig(
        model=args.model,
        input=args.input,
        output=Path(args.output),
        engine=args.engine,
        address=args.address,
        text_column=args.text_column,
        keep_columns=keep,
        batch_size=args.batch_size,
        block_rows=args.block_rows,
        actors=args.actors,
        threads_per_actor=args.threads_per_actor,
        backend=args.backend,
        precision=args.precision,
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from transformers.utils import logging as hf_logging

    from reviewsense.score.run import score

    hf_logging.disable_progress_bar()
    config = _config(args)
    err = Console(stderr=True, highlight=False)
    progress = Progress(
        TextColumn("scoring blocks"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    task = progress.add_task("score", total=None, rate="")
    rows = [0]

    def on_start(pending: int, skipped: int) -> None:
        progress.update(task, total=pending)
        if skipped:
            err.print(f"resuming: {skipped:,} block(s) already in {config.output}")

    def on_block(result) -> None:
        rows[0] += result.rows
        elapsed = progress.tasks[0].elapsed or 1e-9
        progress.update(task, advance=1, rate=f"{rows[0]:,} rows, {rows[0] / elapsed:,.1f} rows/s")

    with progress:
        summary = score(config, on_block=on_block, on_start=on_start)
    why = ", ".join(f"{c:,} {reason}" for reason, c in summary.errors.most_common())
    err.print(
        f"scored {summary.rows:,} rows in {summary.seconds:.1f} s "
        f"({summary.rows_per_s:,.1f} rows/s, engine {config.engine}); "
        f"errors {summary.n_errors:,}{f' ({why})' if why else ''}; "
        f"{summary.blocks:,} block(s) written, {summary.skipped_blocks:,} skipped → {config.output}"
    )
    return 0
