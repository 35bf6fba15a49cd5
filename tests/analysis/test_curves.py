"""Training curves: LR schedule shapes, grad-norm and loss spikes, loss table and trend."""

from __future__ import annotations

import math

import pytest

from .logs import run, synthetic


def test_cosine_with_warmup():
    n, w = 1000, 100

    def lr(s):
        return 3e-5 * s / w if s <= w else 3e-5 * 0.5 * (1 + math.cos(math.pi * (s - w) / (n - w)))

    info = run(synthetic(n=n, lr=lr))["lr_schedule"]
    assert info["shape"] == "cosine" and info["warmup_steps"] == w
    assert info["peak"] == pytest.approx(3e-5)


def test_constant_lr_and_linear_with_warmup():
    assert run(synthetic(lr=lambda s: 5e-5))["lr_schedule"]["shape"] == "constant"
    info = run(synthetic(n=400, lr=lambda s: 2e-5 * min(s / 40, (400 - s) / 360)))["lr_schedule"]
    assert info["shape"] == "linear" and info["warmup_steps"] == 40


def test_step_schedule_is_other():
    info = run(synthetic(lr=lambda s: 1e-4 if s < 200 else 1e-5))["lr_schedule"]
    assert info["shape"] == "other"


def test_no_grad_norm_and_injected_spike():
    s = run(synthetic(grad=False))
    assert s["spikes"] == [] and s["grad_norm"]["available"] is False
    data = synthetic()
    data["log_history"][250]["grad_norm"] = 25.0  # step 251
    data["log_history"][251]["loss"] = 5.0  # the loss jumps right after
    spikes = run(data)["spikes"]
    assert [sp["step"] for sp in spikes] == [251]
    assert spikes[0]["ratio_to_median"] > 20 and spikes[0]["loss_jumped"] is True


def test_loss_table_has_spread_rows_and_epoch_boundaries():
    s = run(synthetic(n=400, spe=100))
    steps = [r["step"] for r in s["loss_table"]]
    assert steps == sorted(steps) and steps[0] == 1 and steps[-1] == 400
    assert 8 <= len(steps) <= 14
    assert {r["note"] for r in s["loss_table"]} >= {"end of epoch 1", "end of epoch 3"}
    assert s["loss_trend"]["trend"] == "still improving"  # exp decay, tau 150 of 400 steps


def test_loss_trend_plateau_and_rising():
    assert run(synthetic(n=2000))["loss_trend"]["trend"] == "plateaued"
    assert run(synthetic(loss=lambda s: 0.3 + s / 400))["loss_trend"]["trend"] == "rising"
