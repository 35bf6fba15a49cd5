"""`reviewsense train`: fine-tune a model from a preset plus overrides."""

from __future__ import annotations

import argparse

from reviewsense.cli._common import add_data_arguments, data_overrides, parse_set

HELP = "fine-tune a BERT-family model on review sentiment (offline default: MiniLM on IMDb)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help="preset under configs/ (default: offline)")
    p.add_argument("--config", help="a config YAML file (same layout as the presets)")
    p.add_argument("--model", help="Hub id, local model folder, or 'minilm' (offline)")
    p.add_argument("--epochs", type=float)
    p.add_argument("--batch-size", type=int, help="per-device batch size")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--early-stopping", type=int, metavar="N", help="patience in evaluations")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (smoke runs)")
    p.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    p.add_argument(
        "--attention-dropout",
        type=float,
        metavar="P",
        help="attention-probability dropout (default 0: the fused attention kernel, faster; "
        "0.1 = the checkpoint's, the user's original recipe)",
    )
    p.add_argument("--output", help="run directory (default runs/<timestamp>-<preset>)")
    p.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR from its last complete checkpoint (uses DIR/config.yaml)",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key")
    p.add_argument("--no-analysis", action="store_true", help="skip the analysis report")
    add_data_arguments(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reviewsense import config, rundir
    from reviewsense.errors import ConfigError
    from reviewsense.train import run_training

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / rundir.CONFIG_YAML).is_file():
            raise ConfigError(
                f"--resume {run_dir}: no {rundir.CONFIG_YAML} there (not a run directory)"
            )
        cfg = config.load_file(run_dir / rundir.CONFIG_YAML)
        output = run_dir
    else:
        if args.config and args.preset:
            raise ConfigError("give either --preset or --config, not both")
        cfg = (
            config.load_file(args.config)
            if args.config
            else config.load_preset(args.preset or "offline")
        )
        output = args.output
    cfg.override(
        {
            "model": args.model,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "seed": args.seed,
            "precision": args.precision,
            "early_stopping": args.early_stopping,
            "max_steps": args.max_steps,
            "num_threads": args.threads,
            "attention_dropout": args.attention_dropout,
            "analyze": False if args.no_analysis else None,
            **data_overrides(args),
            **parse_set(args.set),
        }
    )
    result = run_training(cfg, output_dir=output, resume=bool(args.resume))
    if result.metrics:
        print(f"run directory: {result.run_dir}")
    return 0
