"""Flags shared by several commands: data selection, inference options, service model options,
preset/config overrides. Each flag is declared here once, with its help."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_data_arguments(p: argparse.ArgumentParser, *, training: bool = True) -> None:
    """The data flags; ``training=False`` (evaluate) leaves out those only training uses.

    Evaluation reads test data only and cuts reviews the way the model was trained (its own
    settings), so it has no --train-file/--train-size/--val-size/--max-length, and its
    ``--truncation`` is the inference override that the command itself declares.
    """
    from reviewsense.truncation import TRUNCATION_MODES

    # train starts from a preset, evaluate from the run's own config.yaml (and a data source
    # given to evaluate replaces the run's: evaluate.eval_data_config)
    default = f"default: the {'preset' if training else 'run'}'s, else"
    replaces = "" if training else " (replaces the run's data)"
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", help=f"IMDb parquet folder, or a raw aclImdb/ folder{replaces}")
    if training:
        g.add_argument("--train-file", help="CSV, JSONL or Parquet training file")
    g.add_argument("--test-file", help=f"CSV, JSONL or Parquet test file{replaces}")
    g.add_argument("--text-column", help=f"text column of the data files ({default} text)")
    g.add_argument("--label-column", help=f"label column ({default} label): 0/1, neg/pos, ...")
    if training:
        g.add_argument("--train-size", help="training reviews, stratified (or 'all')")
        g.add_argument(
            "--val-size",
            help="validation reviews, disjoint from training: a count, or a fraction below 1 "
            "of the reviews used (0.2: an 80/20 train/validation split)",
        )
    g.add_argument("--test-size", help=f"test reviews, stratified (or 'all'; {default} all)")
    if training:
        g.add_argument("--max-length", type=int, help="tokens per review incl. [CLS]/[SEP]")
        g.add_argument("--truncation", choices=TRUNCATION_MODES, help="how long reviews are cut")
    g.add_argument(
        "--skip-invalid",
        action="store_true",
        default=None,
        help="skip bad rows (counted and logged) instead of failing",
    )


def _size(v: str | None) -> str | None:
    return None if v is None else ("none" if v.strip().lower() == "all" else v)


# data flag -> config key; flags a command did not declare are simply absent from ``args``.
_DATA_KEYS = {
    "data_dir": "data_dir",
    "train_file": "train_file",
    "test_file": "test_file",
    "text_column": "text_column",
    "label_column": "label_column",
    "train_size": "train_size",
    "val_size": "val_size",
    "test_size": "test_size",
    "max_length": "max_length",
    "truncation": "truncation",
    "skip_invalid": "skip_invalid",
}


def data_overrides(args: argparse.Namespace, *, training: bool = True) -> dict:
    """CLI data flags -> config overrides (None = not given, keeps the preset's value).

    Which dataset the flags select is decided in one place: ``data.splits.resolve_dataset``.
    """
    skip = () if training else ("truncation",)  # evaluate's --truncation is the inference one
    out = {}
    for flag, key in _DATA_KEYS.items():
        if flag in skip or not hasattr(args, flag):
            continue
        value = getattr(args, flag)
        out[key] = _size(value) if flag in ("train_size", "test_size") else value
    return out


def parse_set(pairs: list[str] | None) -> dict:
    """``--set key=value`` pairs -> dict (validated later by RunConfig.set); the one parser
    of --set is ``sweep.parse_set_args``, shared by train and sweep."""
    if not pairs:
        return {}
    from reviewsense.sweep.spec import parse_set_args

    return parse_set_args(pairs)


def add_inference_arguments(
    p: argparse.ArgumentParser, *, batch_size: int = 32, threads: bool = True
) -> None:
    """--backend, --precision, --batch-size (and --threads) for the commands that run a
    :class:`~reviewsense.inference.Predictor` on files: predict, evaluate, score."""
    from reviewsense.inference.backends import BACKENDS

    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto: the folder's own format (an OpenVINO/ONNX export, else PyTorch)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="torch: auto = bf16 where this CPU has a fast bf16 path (AMX / avx512_bf16)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=batch_size,
        metavar="N",
        help=f"texts per forward pass (default {batch_size})",
    )
    if threads:
        p.add_argument("--threads", type=int, metavar="N", help="intra-op threads")


def settings_default(field: str) -> str:
    """ServiceSettings' default of ``field``, for help texts (so they cannot drift)."""
    from reviewsense.settings import ServiceSettings

    value = ServiceSettings.model_fields[field].default
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_service_model_arguments(p: argparse.ArgumentParser) -> None:
    """--db, --threshold, --num-threads, --backend: what ``serve`` and ``consume`` share. No
    defaults here: unset flags fall back to the environment, then ``ServiceSettings``."""
    from reviewsense.inference.backends import BACKENDS
    from reviewsense.metrics import DEFAULT_THRESHOLD

    p.add_argument(
        "--db",
        metavar="URL",
        help=f"database: sqlite:///FILE (default {settings_default('db_url')}) or "
        "postgresql://user:pass@host/db (env REVIEWSENSE_DB_URL)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        metavar="P",
        help="flag reviews with P(negative) >= P (default: the model folder's threshold, "
        f"set by `reviewsense threshold`; {DEFAULT_THRESHOLD:g} when it has none)",
    )
    p.add_argument(
        "--num-threads",
        type=int,
        help="torch intra-op threads (default: REVIEWSENSE_NUM_THREADS, else the backend's own)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        help=f"inference backend (default {settings_default('backend')}, env REVIEWSENSE_BACKEND)",
    )


def migrated_engine(url: str):
    """The engine of the database at ``url``, migrated to the newest schema (caller disposes).

    The one start-up check of ``--db`` that serve, consume and keys share.

    Raises:
        ConfigError: naming --db, for a bad URL or a database that cannot be opened or migrated.
    """
    from reviewsense.errors import ConfigError
    from reviewsense.service.db import make_engine, run_migrations

    engine = make_engine(url)
    try:
        run_migrations(engine)
    except Exception as e:
        engine.dispose()
        msg = str(getattr(e, "orig", None) or e).splitlines()[0]
        raise ConfigError(
            f"--db: cannot open or migrate the database: {msg}; "
            "check the URL, that the server is up and that you may write there"
        ) from None
    return engine


def add_training_runtime_arguments(
    p: argparse.ArgumentParser, *, precision: str | None, seed: int | None, seed_help: str
) -> None:
    """--precision, --seed, --threads of the training commands (train, pretrain, distill).

    ``precision``/``seed``: the command's defaults (None: the preset's, applied later);
    ``seed_help``: what the seed draws in that command.
    """
    from reviewsense.runtime import AUTO_PRECISION, PRECISIONS, THREADS_DEFAULT

    shown = "the preset's" if precision is None else precision
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=precision,
        help=f"training precision; {AUTO_PRECISION} (default: {shown})",
    )
    shown = "the preset's" if seed is None else seed
    p.add_argument("--seed", type=int, default=seed, help=f"seed of {seed_help} (default: {shown})")
    p.add_argument("--threads", type=int, help=f"CPU threads (default: {THREADS_DEFAULT})")
