"""`reviewsense threshold RUN_DIR --precision P`: choose the flagging threshold.

Picks the lowest threshold on P(negative) whose precision for the negative class reaches the
target on the run's validation predictions — the most negative reviews caught (recall) while
at most ``1 - P`` of the flags are false alarms — and stores it in the model folder, where
`reviewsense serve` reads it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "choose the negative-class threshold reaching a target precision; store it in the model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory with val_predictions")
    parser.add_argument(
        "--precision",
        type=float,
        required=True,
        help="target precision of the negative class (flags), e.g. 0.9",
    )
    parser.add_argument(
        "--model",
        metavar="MODEL_DIR",
        help="model folder to write to (default RUN_DIR/model)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the threshold, change nothing"
    )


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from reviewsense import rundir
    from reviewsense.errors import ConfigError, DataError
    from reviewsense.metrics import choose_threshold

    if not 0.0 < args.precision <= 1.0:
        raise ConfigError(f"--precision must be in (0, 1], got {args.precision}")
    run_dir = Path(args.run_dir)
    path = run_dir / rundir.VAL_PREDICTIONS
    if not path.is_file():
        raise DataError(f"{path} not found (written by `reviewsense train`)")
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise DataError(f"cannot read {path}: {e}") from None
    missing = {"label", "prob_positive"} - set(df.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if df.empty:
        raise DataError(f"{path}: no rows")
    if df["label"].isna().any() or not set(df["label"].unique()) <= {0, 1}:
        raise DataError(f"{path}: column label must hold only 0 and 1")
    prob_pos = pd.to_numeric(df["prob_positive"], errors="coerce")
    if prob_pos.isna().any() or ((prob_pos < 0) | (prob_pos > 1)).any():
        raise DataError(f"{path}: column prob_positive must hold probabilities in [0, 1]")
    result = choose_threshold(
        df["label"].to_numpy(), 1.0 - prob_pos.to_numpy(), precision_target=args.precision
    )
    model_dir = rundir.resolve_model_dir(args.model or run_dir)
    sys.stdout.write(
        f"threshold P(negative) >= {result['threshold']:.6f}: precision {result['precision']:.4f}"
        f", recall {result['recall']:.4f} for the negative class "
        f"({result['flagged']} of {result['n']} validation reviews flagged)\n"
    )
    if args.dry_run:
        return 0
    settings = rundir.read_model_settings(model_dir)
    settings.threshold = result["threshold"]
    settings.threshold_info = {
        "precision_target": args.precision,
        "precision": result["precision"],
        "recall": result["recall"],
        "n": result["n"],
        "source": str(path),
    }
    rundir.write_model_settings(model_dir, settings)
    sys.stdout.write(f"stored in {model_dir / rundir.MODEL_CONFIG}\n")
    return 0
