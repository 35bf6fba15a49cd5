"""Trainer plumbing shared by pretrain and distill."""

from __future__ import annotations

import math

from reviewsense.trainer_utils import cleanup_checkpoints, pad_batch, perplexity


def test_pad_batch_pads_right_to_a_multiple_of_16():
    out = pad_batch([[1, 2, 3], list(range(1, 18))], value=0)
    assert out.shape == (2, 32)
    assert out[0, :4].tolist() == [1, 2, 3, 0] and out[1, 16].item() == 17


def test_perplexity_is_exp_loss_and_none_when_not_finite():
    assert perplexity(0.0) == 1.0
    assert math.isclose(perplexity(2.0), math.exp(2.0))
    assert perplexity(float("nan")) is None and perplexity(None) is None


def test_cleanup_checkpoints_removes_unless_kept(tmp_path):
    ckpt = tmp_path / "checkpoints" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    cleanup_checkpoints(tmp_path / "checkpoints", keep=True)
    assert ckpt.is_dir()
    cleanup_checkpoints(tmp_path / "checkpoints", keep=False)
    assert not (tmp_path / "checkpoints").exists()
