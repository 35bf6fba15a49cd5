"""reviewsense.dropout: random-word masks are dropout (rate, scale, gradient, seed), and where."""

from __future__ import annotations

import pytest
import torch
from tiny_models import build_tiny_model, tiny_config

from reviewsense import dropout
from reviewsense.config import RunConfig
from reviewsense.errors import ConfigError
from reviewsense.train import run_training


def _layer(p: float):
    return dropout.word_dropout_class()(p).train()


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_drop_rate_and_expectation_match_p(p):
    torch.manual_seed(0)
    y = _layer(p)(torch.ones(400_000))
    rate = (y == 0).float().mean().item()
    assert abs(rate - p) < 0.005  # 400k Bernoulli draws: sd ~0.0007
    kept = y[y != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - p)))
    assert abs(y.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_masks_are_independent_of_position():
    """Each 16-bit quarter of a word decides one element: no quarter may be biased."""
    torch.manual_seed(1)
    y = _layer(0.5)(torch.ones(200_000)).view(-1, 4)
    rates = (y == 0).float().mean(0)
    assert torch.all((rates - 0.5).abs() < 0.01), rates


def test_gradient_is_the_mask_and_bf16_keeps_its_dtype():
    torch.manual_seed(2)
    x = torch.randn(8, 16, 32, requires_grad=True)
    y = _layer(0.2)(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() / 0.8)
    xb = torch.randn(4, 8, dtype=torch.bfloat16)
    assert _layer(0.1)(xb).dtype == torch.bfloat16


def test_seeded_generator_repeats_and_eval_is_identity():
    layer = _layer(0.1)
    x = torch.randn(1000)
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(3)
    b = layer(x)
    assert torch.equal(a, b)
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(ValueError, match="dropout probability"):
        dropout.word_dropout_class()(1.0)


@pytest.mark.parametrize(
    "requested,device,expected",
    [("auto", "cpu", "words"), ("auto", "cuda", "torch"), ("torch", "cpu", "torch")],
)
def test_choose_dropout(requested, device, expected):
    assert dropout.choose_dropout(requested, device) == expected


def test_apply_swaps_every_active_dropout_module(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        build_tiny_model(tmp_path / "m", dropout=0.1)
    )
    before = sum(type(m) is torch.nn.Dropout and m.p > 0 for m in model.modules())
    assert before > 0
    assert dropout.apply_dropout_kernel(model, "words") == "words"
    word = dropout.word_dropout_class()
    assert sum(isinstance(m, word) for m in model.modules()) == before
    assert not any(type(m) is torch.nn.Dropout and m.p > 0 for m in model.modules())


def test_unknown_kernel_is_refused_by_both_configs():
    from reviewsense.distill import DistillConfig

    cfg = RunConfig()
    cfg.train.dropout_kernel = "fast"
    with pytest.raises(ConfigError, match="dropout_kernel"):
        cfg.validate()
    with pytest.raises(ConfigError, match="'dropout_kernel'"):
        DistillConfig(teacher="x", dropout_kernel="fast").validate()


def test_training_run_uses_and_does_not_save_the_kernel(tiny_bert, review_files, tmp_path, caplog):
    cfg = tiny_config(tiny_bert, review_files, max_steps=3, dropout_kernel="words")
    caplog.set_level("INFO", logger="reviewsense.dropout")
    run_training(cfg, output_dir=tmp_path / "run")
    assert "training dropout: random-word masks" in caplog.text
    saved = (tmp_path / "run" / "model" / "config.json").read_text()
    assert "WordDropout" not in saved and "dropout_kernel" not in saved
