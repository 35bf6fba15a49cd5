"""Shared flags of cli._common: the help says where each default comes from."""

from __future__ import annotations

import argparse
import re

import pytest

from reviewsense.cli import main as cli_main
from reviewsense.cli._common import add_data_arguments, parse_set
from reviewsense.errors import ConfigError


def _help(training: bool) -> str:
    p = argparse.ArgumentParser(prog="x")
    add_data_arguments(p, training=training)
    return " ".join(p.format_help().split())


def test_evaluate_data_help_names_the_runs_defaults():
    text = _help(training=False)
    assert "text column of the data files (default: the run's, else text)" in text
    assert "label column (default: the run's, else label)" in text
    assert "(or 'all'; default: the run's, else all)" in text
    assert text.count("(replaces the run's data)") == 2  # --data-dir, --test-file
    assert "'all', the default" not in text


def test_train_data_help_names_the_presets_defaults_and_the_val_size_base():
    text = _help(training=True)
    assert "(default: the preset's, else text)" in text
    assert "the run's" not in text
    assert "a fraction below 1 of the reviews used (0.2: an 80/20 train/validation split)" in text


def test_parse_set():
    assert parse_set(None) == {} and parse_set([]) == {}
    assert parse_set([" epochs = 2", "lr=1e-4", "name=a=b"]) == {
        "epochs": "2",
        "lr": "1e-4",
        "name": "a=b",
    }
    with pytest.raises(ConfigError, match=r"--set expects key=value, e.g. .*\(got '=1'\)"):
        parse_set(["=1"])


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        ("train", ("the preset's", "the preset's")),
        ("pretrain", ("pretrain", None)),
        ("distill", ("distill", None)),
    ],
)
def test_training_commands_declare_precision_seed_threads_alike(capsys, command, defaults):
    from reviewsense.distill import DistillConfig
    from reviewsense.pretrain import PretrainConfig
    from reviewsense.runtime import PRECISIONS

    config = {"pretrain": PretrainConfig(), "distill": DistillConfig()}.get(command)
    precision, seed = (config.precision, config.seed) if config else defaults
    with pytest.raises(SystemExit):
        cli_main.main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"--precision {{{','.join(PRECISIONS)}}} training precision; auto = bf16" in out
    assert f"fp16 on a GPU without bf16) (default: {precision})" in out
    assert re.search(rf"--seed SEED seed of [A-Za-z ,/-]+ \(default: {re.escape(str(seed))}\)", out)
    assert "--threads THREADS CPU threads (default: REVIEWSENSE_NUM_THREADS" in out
