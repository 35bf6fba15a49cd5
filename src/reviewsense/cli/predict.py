"""`reviewsense predict`: score reviews given on the command line or in a file."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from reviewsense.cli._common import add_inference_arguments

HELP = "predict review sentiment (texts on the command line, or --input FILE --output FILE)"

EPILOG = """\
file formats (by extension): .csv .tsv .jsonl .ndjson .parquet, and .txt (input only, one
review per line). The output keeps every input row and adds label, score, prob_negative,
prob_positive, truncated and status ("ok" or why the row was not scored: missing text, empty
text, invalid utf-8, invalid json, not text).
"""


class _IntermixedParser(argparse.ArgumentParser):
    """Accept options between MODEL and the TEXTs (``predict M --backend onnx "text"``).

    Plain argparse stops filling ``TEXT...`` at the first option; the intermixed parse does
    not. The guard stops the recursion: the intermixed parse calls ``parse_known_args``.
    """

    _intermixed_active = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixed_active:
            return super().parse_known_args(args, namespace)
        self._intermixed_active = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixed_active = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reviewsense.inference.predictor import INFERENCE_TRUNCATION_MODES

    parser.__class__ = _IntermixedParser  # see its docstring
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("model", metavar="MODEL", help="run directory, model folder or export")
    parser.add_argument("texts", metavar="TEXT", nargs="*", help="reviews to score")
    parser.add_argument("--input", "-i", metavar="FILE", help="file of reviews to score")
    parser.add_argument("--output", "-o", metavar="FILE", help="where to write the scored rows")
    parser.add_argument(
        "--text-column", metavar="NAME", help="column of --input with the review text"
    )
    add_inference_arguments(parser)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (torch backend; faster once each shape has compiled)",
    )
    parser.add_argument(
        "--truncation",
        choices=INFERENCE_TRUNCATION_MODES,
        help="override the model's trained truncation (chunks: average overlapping windows)",
    )


def _load(args: argparse.Namespace):
    from transformers.utils import logging as hf_logging

    from reviewsense.inference.predictor import Predictor
    from reviewsense.runtime import tune_allocator

    tune_allocator()  # a batch job: keep freed activations for the next batch
    hf_logging.disable_progress_bar()
    return Predictor.from_pretrained(
        args.model,
        backend=args.backend,
        num_threads=args.threads,
        precision=args.precision,
        batch_size=args.batch_size,
        truncation=args.truncation,
        compile=args.compile,
    )


def _run_texts(args: argparse.Namespace) -> int:
    """One tab-separated line per text: label, score, text (+ "truncated"), for scripts."""
    from reviewsense.inference.io import OK, clean_text, text_status

    predictor = _load(args)
    checked = [text_status(t) for t in args.texts]
    ok = [t for t, st in checked if st == OK]
    preds = iter(predictor.predict(ok))
    for text, (_, st) in zip(args.texts, checked, strict=True):
        snippet = clean_text(" ".join(text.split())[:70])
        if st != OK:
            line = f"-\t-\t{snippet}\t{st}"
        else:
            p = next(preds)
            line = f"{p.label}\t{p.score:.4f}\t{snippet}" + ("\ttruncated" if p.truncated else "")
        sys.stdout.write(line + "\n")
    return 0


def _run_file(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from reviewsense.inference.io import (
        OK,
        WRITE_FORMATS,
        add_predictions,
        detect_format,
        read_input,
        write_output,
    )

    err = Console(stderr=True, highlight=False)
    detect_format(Path(args.output), WRITE_FORMATS)  # fail before a long scoring run
    table = read_input(args.input, args.text_column)
    predictor = _load(args)
    ok_rows = [i for i, st in enumerate(table.status) if st == OK]
    t0 = time.perf_counter()
    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task("score", total=len(ok_rows), rate="")

        def shown(done: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            progress.update(task, completed=done, rate=f"{rate:,.1f} reviews/s")

        preds = predictor.predict_many([table.texts[i] for i in ok_rows], on_progress=shown)
    results = dict(zip(ok_rows, preds, strict=True))
    elapsed = time.perf_counter() - t0
    write_output(add_predictions(table, results), args.output)

    n, n_ok = len(table.status), len(ok_rows)
    skipped = Counter(st for st in table.status if st != OK)
    why = ", ".join(f"{c} {reason}" for reason, c in skipped.most_common())
    rate = n_ok / elapsed if elapsed > 0 else 0.0
    err.print(
        f"scored {n_ok:,} of {n:,} rows in {elapsed:.1f} s ({rate:,.1f} reviews/s, "
        f"{predictor.backend} {predictor.precision}, truncation {predictor.settings.truncation}); "
        f"unscored {n - n_ok:,}{f' ({why})' if why else ''} → {args.output}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from reviewsense.errors import ConfigError

    if args.input and args.texts:
        raise ConfigError("give TEXT arguments or --input FILE, not both")
    if args.input and not args.output:
        raise ConfigError("--input needs --output FILE (.csv, .tsv, .jsonl or .parquet)")
    if args.output and not args.input:
        raise ConfigError("--output needs --input FILE")
    if not args.input and not args.texts:
        raise ConfigError("nothing to score: give TEXT arguments or --input FILE --output FILE")
    if args.text_column and not args.input:
        raise ConfigError(
            "--text-column names a column of --input FILE; drop it with TEXT arguments"
        )
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    return _run_file(args) if args.input else _run_texts(args)
