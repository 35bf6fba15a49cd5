"""The verdict's words: both kinds of overfitting, the band and where it came from."""

from __future__ import annotations

from .logs import analyse, finding_of, make_log


def test_message_names_band_source_and_recommendation():
    s = analyse(make_log({"accuracy": [0.80, 0.85, 0.86]}), eval_size=1000)
    msg = finding_of(s, "no_overfitting")["message"]
    assert "binomial standard error" in msg and "n=1000 (--eval-size)" in msg
    assert "Recommended: epoch 3, checkpoint checkpoint-300" in msg


def test_undecided_by_loss_without_training_loss():
    s = analyse(make_log({"loss": [0.5, 0.6, 0.7]}, train=None))
    f = finding_of(s, "overfitting_undeterminable")
    assert "too little training loss" in f["message"]
    assert f["evidence"]["by_loss"]["pattern"] == "no_train_loss"


def test_rise_with_flat_training_loss_is_instability_not_overfitting():
    s = analyse(make_log({"loss": [0.5, 0.6, 0.7]}, train=lambda f: 0.6))
    assert s["overfitting"] is None
    assert "instability" in finding_of(s, "overfitting_undeterminable")["message"]
