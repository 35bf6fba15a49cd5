"""`reviewsense evaluate`: metrics of a trained model on labelled data."""

from __future__ import annotations

import argparse

from reviewsense.cli._common import add_data_arguments, add_inference_arguments, data_overrides

HELP = "evaluate a trained model (run directory or model folder) on labelled reviews"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        metavar="MODEL_OR_RUN_DIR",
        help="a run directory, its model/ folder, or a checkpoint (runs/X/checkpoints/"
        "checkpoint-N): the run's truncation settings are used",
    )
    p.add_argument("--output", help="write the full report as JSON here")
    p.add_argument(
        "--predictions",
        metavar="FILE",
        help="write per-review predictions (row_id, label, prob_positive, prediction) as Parquet",
    )
    add_inference_arguments(p, batch_size=64)
    from reviewsense.inference.predictor import INFERENCE_TRUNCATION_MODES

    p.add_argument(
        "--seed",
        type=int,
        help="data seed of the stratified --test-size subset (default: the run's split_seed, "
        "0); only with a --test-size subset (the run's or given)",
    )
    p.add_argument(
        "--truncation",
        choices=INFERENCE_TRUNCATION_MODES,
        help="override the model's truncation at inference time (default: the run's)",
    )
    # the old spelling, kept working but not advertised
    p.add_argument(
        "--inference-truncation",
        dest="truncation",
        choices=INFERENCE_TRUNCATION_MODES,
        help=argparse.SUPPRESS,
    )
    add_data_arguments(p, training=False)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from reviewsense.evaluate import eval_data_config, evaluate_model
    from reviewsense.jsonio import write_json

    overrides = {**data_overrides(args, training=False), "split_seed": args.seed}
    report = evaluate_model(
        args.model,
        eval_data_config(args.model, overrides),
        backend=args.backend,
        precision=args.precision,
        batch_size=args.batch_size,
        num_threads=args.threads,
        truncation=args.truncation,
        predictions_file=args.predictions,
    )
    console = Console()
    m = report["metrics"]
    t = Table(title=f"{report['model']} on {report['data']['source']}")
    for k in ("n", "accuracy", "f1", "f1_macro", "precision", "recall", "roc_auc", "log_loss"):
        t.add_column(k, justify="right")
    t.add_row(
        *(
            f"{m[k]:.4f}" if isinstance(m[k], float) else str(m[k])
            for k in (
                "n",
                "accuracy",
                "f1",
                "f1_macro",
                "precision",
                "recall",
                "roc_auc",
                "log_loss",
            )
        )
    )
    console.print(t)
    lo, hi = m["accuracy_ci95"]
    console.print(
        f"accuracy 95% CI {lo:.4f}..{hi:.4f}; confusion [[tn, fp], [fn, tp]] = {m['confusion_matrix']}",
        markup=False,  # brackets are data here, not rich markup
    )
    b = Table(title="accuracy by review length (words)")
    b.add_column("words")
    b.add_column("n", justify="right")
    b.add_column("accuracy", justify="right")
    for row in report["by_length"]:
        b.add_row(
            row["words"],
            str(row["n"]),
            "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}",
        )
    console.print(b)
    mk = report["confident_mistakes"][:5]
    if mk:
        console.print(f"most confident mistakes (top 5 of {len(report['confident_mistakes'])}):")
        for r in mk:
            console.print(
                f"  {r['row_id']} label={r['label']} p(pos)={r['prob_positive']:.3f}: {r['text'][:100]!r}",
                markup=False,  # review text may hold [brackets]
            )
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.output, report)
        console.print(f"report written to {args.output}")
    return 0
