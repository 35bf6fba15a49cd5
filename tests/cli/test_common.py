"""Shared flags of cli._common: the help says where each default comes from."""

from __future__ import annotations

import argparse

import pytest

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
