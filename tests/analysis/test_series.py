"""Noise bands, rounding and epochs recomputed from steps after a resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from reviewsense.analysis.series import (
    binomial_band,
    epochs_from_steps,
    noise_band,
    rnd,
    series_band,
    steps_per_epoch,
)
from reviewsense.analysis.trainer_state import parse_trainer_state


def test_binomial_band_matches_the_formula():
    assert binomial_band(0.884, 500) == pytest.approx(1.96 * math.sqrt(0.884 * 0.116 / 500))
    assert binomial_band(1.0, 100) == 0.0


def test_series_band_ignores_a_steady_trend_but_sees_jitter():
    steady = [0.80 + 0.01 * i for i in range(8)]
    jitter = [0.80 + (0.02 if i % 2 else 0.0) for i in range(8)]
    assert series_band(steady) == pytest.approx(0.0, abs=1e-9)
    assert series_band(jitter) > 0.03  # 1.96 * 1.4826 * MAD of +-0.02 steps
    assert series_band([0.8, 0.9, 0.85]) is None  # too short to estimate


def test_series_band_of_repeated_values_is_not_zero():
    # accuracy in steps of 1/196 often repeats exactly: MAD is 0, the mean deviation is not
    values = [0.8214, 0.8214, 0.8265, 0.8214, 0.8214, 0.8163, 0.8214, 0.8214]
    assert series_band(values) > 0.003


def test_noise_band_sources_and_floor():
    assert noise_band([0.88, 0.87, 0.86], False, 500)[1] == "binomial"
    band, src = noise_band([0.5, 0.4, 0.45], True, 500)  # binomial never applies to a loss
    assert src == "floor" and band == pytest.approx(0.02)
    band, src = noise_band([0.80 + 0.01 * i for i in range(8)], False, None)
    assert src == "floor" and band == pytest.approx(0.0087)
    assert noise_band([0.8, 0.82, 0.8, 0.82, 0.8, 0.82], False, None)[1] == "series_mad"


def test_rnd_drops_non_finite():
    assert rnd(float("nan")) is None and rnd(None) is None and rnd(0.123456) == 0.1235


def test_epochs_from_steps_after_a_reset():
    log = [{"step": s, "epoch": (s % 50) / 50 or 1.0, "loss": 1.0} for s in range(10, 160, 10)]
    state = parse_trainer_state({"log_history": log}, Path("t.json"))
    assert state.epoch_resets  # the counter went back at step 50 and 100
    assert steps_per_epoch(state) == pytest.approx(50)
    fixed = epochs_from_steps(state)
    assert fixed.epoch[-1] == pytest.approx(3.0) and state.epoch[-1] != fixed.epoch[-1]
