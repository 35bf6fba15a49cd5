"""`reviewsense export`: ONNX / OpenVINO export (optional int8) that verifies itself."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

HELP = "export a model to ONNX (optionally int8) or OpenVINO and verify it against PyTorch"

EPILOG = """\
The output folder is self-contained (model.onnx or openvino_model.xml/.bin, config.json,
tokenizer files, export_report.json); `reviewsense predict OUTPUT ...` runs it with ONNX
Runtime or OpenVINO. Verification against PyTorch fp32 on 500 IMDb test reviews (when the
local data is there; else built-in samples) or on --verify-file fails the command (exit 2)
when label agreement is below --min-agreement, or beyond: fp32 max |dp| 1e-3; int8 99th
percentile |dp| 0.10 (the max is reported, not bounded: one borderline review must not decide),
mean |dp| 0.02 and label agreement 0.95 on reviews whose fp32 probability is more than 0.10
from 0.5.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reviewsense.inference.verify import MIN_AGREEMENT

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "model", metavar="MODEL_DIR", help="run directory, checkpoint or model folder"
    )
    parser.add_argument(
        "--format", choices=("onnx", "openvino"), default="onnx", help="runtime to export for"
    )
    parser.add_argument(
        "--quantize",
        choices=("int8", "int8-static"),
        help="ONNX int8: dynamic, or static (calibrated on 300 IMDb training reviews)",
    )
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="folder to write")
    parser.add_argument(
        "--verify-file", metavar="FILE", help="reviews to verify on (any predict input format)"
    )
    parser.add_argument("--text-column", metavar="NAME", help="text column of --verify-file")
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=MIN_AGREEMENT,
        metavar="F",
        help="least label agreement with PyTorch fp32 on the verification reviews (0..1, "
        f"default {MIN_AGREEMENT:g})",
    )
    parser.add_argument("--threads", type=int, metavar="N", help="threads for verification")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")


def _verify_texts(path: str, text_column: str | None) -> tuple[list[str], int]:
    """(the scorable reviews of --verify-file, how many rows were skipped as unscorable);
    the skipped rows are logged, and the count goes to export_report.json."""
    from reviewsense.errors import DataError
    from reviewsense.inference.io import OK, read_input

    table = read_input(path, text_column)
    bad = [(i, st) for i, st in enumerate(table.status) if st != OK]
    if bad:
        row, why = bad[0]
        log.warning(
            "%s: %d rows skipped (first: row %d, %s); verifying on the other %d",
            path, len(bad), row + 1, why, len(table.status) - len(bad),
        )  # fmt: skip
    texts = [t for t in table.texts if t is not None]
    if not texts:
        raise DataError(f"{path}: no scorable reviews to verify on")
    return texts, len(bad)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from transformers.utils import logging as hf_logging

    from reviewsense.errors import ConfigError
    from reviewsense.inference.export import REPORT_FILE, Tolerance, export_onnx

    if args.text_column and not args.verify_file:
        raise ConfigError(
            "--text-column names a column of --verify-file FILE; give both or neither"
        )
    hf_logging.disable_progress_bar()
    texts, skipped = None, 0
    if args.verify_file:
        texts, skipped = _verify_texts(args.verify_file, args.text_column)
    report = export_onnx(
        args.model,
        args.output,
        quantize=args.quantize,
        verify_texts=texts,
        num_threads=args.threads,
        overwrite=args.overwrite,
        fmt=args.format,
        min_agreement=args.min_agreement,
        verify_skipped_rows=skipped,
    )
    tol = Tolerance(**report.tolerance)
    Console(highlight=False).print(
        f"exported {report.precision} {report.format} to {report.output} "
        f"({report.onnx_mb:.1f} MiB, "
        f"PyTorch {report.source_mb:.1f} MiB) in {report.export_s:.1f} s; verified on "
        f"{report.n_samples} reviews ({report.verify_source}): max |dp| {report.max_abs_diff:.2e}, "
        f"p99 |dp| {report.p99_abs_diff:.2e}, mean |dp| {report.mean_abs_diff:.2e}, label "
        f"agreement {report.label_agreement:.3f} (tolerance: {tol.dp_name} |dp| <= {tol.dp_limit:g}) → "
        f"{report.output}/{REPORT_FILE}"
    )
    return 0
