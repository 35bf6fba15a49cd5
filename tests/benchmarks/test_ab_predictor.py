"""ab_predictor's flags: help with defaults, bad values refused in one line."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import ab_predictor  # noqa: E402


def _args(*argv: str):
    return ab_predictor.parser().parse_args(["--model", "m", *argv])


def test_threads_has_help_with_its_default():
    text = " ".join(ab_predictor.parser().format_help().split())
    assert "intra-op threads of both settings (default: 2)" in text


@pytest.mark.parametrize("flag", ["--n", "--rounds", "--threads"])
def test_counts_below_one_are_refused(flag):
    with pytest.raises(SystemExit, match=f"{flag} must be at least 1"):
        ab_predictor.check_args(_args(flag, "0"))


def test_settings_are_parsed_and_bad_ones_refused():
    settings = ab_predictor.check_args(_args("--a", "linear=torch", "--b", "batch_size=64"))
    assert settings == {"a": {"linear": "torch"}, "b": {"batch_size": 64}}
    with pytest.raises(SystemExit, match="unknown option"):
        ab_predictor.check_args(_args("--a", "dtype=bf16"))
    with pytest.raises(SystemExit, match="batch_size: not an int"):
        ab_predictor.check_args(_args("--b", "batch_size=big"))


def test_call_size_zero_means_one_call_and_negative_is_refused():
    assert _args().call_size == 0
    assert _args("--call-size", "4").call_size == 4
    with pytest.raises(SystemExit, match="--call-size must be 0"):
        ab_predictor.check_args(_args("--call-size", "-1"))
