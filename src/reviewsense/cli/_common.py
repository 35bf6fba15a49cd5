"""Flags shared by several commands (data selection, preset/config overrides)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", help="IMDb parquet folder, or a raw aclImdb/ folder")
    g.add_argument("--train-file", help="CSV, JSONL or Parquet training file")
    g.add_argument("--test-file", help="CSV, JSONL or Parquet test file")
    g.add_argument("--text-column", help="text column of --train-file/--test-file (default text)")
    g.add_argument("--label-column", help="label column (default label): 0/1, neg/pos, ...")
    g.add_argument("--train-size", help="training reviews, stratified (or 'all')")
    g.add_argument("--val-size", help="validation reviews carved from train (count or fraction)")
    g.add_argument("--test-size", help="test reviews, stratified (or 'all', the default)")
    g.add_argument("--max-length", type=int, help="tokens per review incl. [CLS]/[SEP]")
    g.add_argument("--truncation", choices=["head", "head_tail"], help="how long reviews are cut")
    g.add_argument(
        "--skip-invalid",
        action="store_true",
        default=None,
        help="skip bad rows (counted and logged) instead of failing",
    )


def _size(v: str | None) -> str | None:
    return None if v is None else ("none" if v.strip().lower() == "all" else v)


def data_overrides(args: argparse.Namespace) -> dict:
    """CLI data flags -> config overrides (None = not given, keeps the preset's value)."""
    o = {
        "data_dir": args.data_dir,
        "train_file": args.train_file,
        "test_file": args.test_file,
        "text_column": args.text_column,
        "label_column": args.label_column,
        "train_size": _size(args.train_size),
        "val_size": args.val_size,
        "test_size": _size(args.test_size),
        "max_length": args.max_length,
        "truncation": args.truncation,
        "skip_invalid": args.skip_invalid,
    }
    # Which dataset these flags select is decided in one place: data.splits.resolve_dataset.
    return o


def parse_set(pairs: list[str] | None) -> dict:
    """``--set key=value`` pairs -> dict (validated later by RunConfig.set)."""
    from reviewsense.errors import ConfigError

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
