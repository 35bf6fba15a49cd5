"""`reviewsense train`: fine-tune a model from a preset plus overrides."""

from __future__ import annotations

import argparse

from reviewsense.cli._common import (
    add_data_arguments,
    add_training_runtime_arguments,
    data_overrides,
    parse_set,
)

HELP = "fine-tune a BERT-family model on review sentiment (offline default: MiniLM on IMDb)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help="preset under configs/ (default: offline)")
    p.add_argument("--config", help="a config YAML file (same layout as the presets)")
    p.add_argument("--model", help="Hub id, local model folder, or 'minilm' (offline)")
    p.add_argument(
        "--epochs",
        type=float,
        help="passes over the training reviews, fractions allowed (default: the preset's)",
    )
    p.add_argument("--batch-size", type=int, help="per-device batch size")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: the preset's)")
    p.add_argument("--early-stopping", type=int, metavar="N", help="patience in evaluations")
    p.add_argument(
        "--max-steps",
        type=int,
        help="stop after N optimizer steps (smoke runs; -1: train for the epochs)",
    )
    add_training_runtime_arguments(
        p,
        precision=None,
        seed=None,
        seed_help="the weight init, batch order and train/validation split",
    )
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
        help="continue the run in DIR from its last complete checkpoint, as DIR/config.yaml "
        "defines it (flags that would change the run are refused)",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key")
    p.add_argument("--no-analysis", action="store_true", help="skip the analysis report")
    add_data_arguments(p)


# train flag (argparse dest) -> config key; data flags: cli._common.data_overrides
_FLAG_KEYS = {
    "model": "model",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "weight_decay": "weight_decay",
    "seed": "seed",
    "precision": "precision",
    "early_stopping": "early_stopping",
    "max_steps": "max_steps",
    "threads": "num_threads",
    "attention_dropout": "attention_dropout",
}


def _overrides(args: argparse.Namespace) -> dict[str, tuple[str, object]]:
    """config key -> (the flag that set it, value); value None = flag not given."""
    out = {
        key: (f"--{dest.replace('_', '-')}", getattr(args, dest))
        for dest, key in _FLAG_KEYS.items()
    }
    out["analyze"] = ("--no-analysis", False if args.no_analysis else None)
    for key, value in data_overrides(args).items():
        out[key] = (f"--{key.replace('_', '-')}", value)
    for key, value in parse_set(args.set).items():
        out[key] = (f"--set {key}", value)
    return out


def _resume_config(args: argparse.Namespace, overrides: dict[str, tuple[str, object]]):
    """The run's own config.yaml; refuse flags that would change the run being resumed."""
    from pathlib import Path

    from reviewsense import config, rundir
    from reviewsense.errors import ConfigError

    run_dir = Path(args.resume)
    if not (run_dir / rundir.CONFIG_YAML).is_file():
        raise ConfigError(
            f"--resume {run_dir}: no {rundir.CONFIG_YAML} there (not a run directory)"
        )
    cfg = config.load_file(run_dir / rundir.CONFIG_YAML)
    refused = [f for f in ("preset", "config") if getattr(args, f)]
    if args.output and Path(args.output).resolve() != run_dir.resolve():
        refused.append("output")
    refused = [f"--{f}" for f in refused]
    changes = cfg.definition_changes({k: v for k, (_, v) in overrides.items()})
    refused += [overrides[k][0] for k in changes]
    if refused:
        raise ConfigError(
            f"--resume {run_dir} continues the run as its {rundir.CONFIG_YAML} defines it; "
            f"drop {', '.join(refused)} (or start a new run with --output)"
        )
    return cfg


def run(args: argparse.Namespace) -> int:
    from reviewsense import config
    from reviewsense.errors import ConfigError
    from reviewsense.train import run_training

    overrides = _overrides(args)
    if args.resume:
        cfg = _resume_config(args, overrides)
        output = args.resume
    else:
        if args.config and args.preset:
            raise ConfigError("give either --preset or --config, not both")
        cfg = (
            config.load_file(args.config)
            if args.config
            else config.load_preset(args.preset or "offline")
        )
        output = args.output
    cfg.override({k: v for k, (_, v) in overrides.items()})
    result = run_training(cfg, output_dir=output, resume=bool(args.resume))
    if result.metrics:
        print(f"run directory: {result.run_dir}")
    return 0
