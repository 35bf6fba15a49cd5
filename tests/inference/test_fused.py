"""inference.fused: oneDNN's fused linear layers give torch's numbers, and when they are used."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reviewsense import runtime
from reviewsense.errors import ModelError
from reviewsense.inference import Predictor, fused

from .models import assert_same_logits
from .test_predictor import TEXTS, bf16_errors, probs

pytestmark = pytest.mark.skipif(not fused.available(), reason="this torch has no oneDNN")


def _pair(model_dir, dtype=torch.float32):
    """The same model twice in eval mode: as loaded, and with fused linear layers."""
    from transformers import AutoModelForSequenceClassification

    plain = AutoModelForSequenceClassification.from_pretrained(model_dir).eval().to(dtype)
    mine = AutoModelForSequenceClassification.from_pretrained(model_dir).eval().to(dtype)
    counts = fused.fuse_linears(mine)
    return plain, mine, counts


def _batch(vocab_lo=1000, vocab_hi=2000):
    torch.manual_seed(0)
    ids = torch.randint(vocab_lo, vocab_hi, (4, 20))  # [B, T]
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    return ids, mask


def test_bert_every_linear_fused_and_gelu_taken_in(tiny_bert):
    plain, mine, counts = _pair(tiny_bert)
    layers = plain.config.num_hidden_layers
    # per layer: query, key, value, attention output, feed-forward output (+ pooler, classifier)
    assert counts == {"linear+gelu": layers, "linear": 5 * layers + 2}
    assert not any(type(m) is torch.nn.Linear for m in mine.modules())
    assert isinstance(
        mine.bert.encoder.layer[0].intermediate.intermediate_act_fn, torch.nn.Identity
    )
    assert_same_logits(mine, plain, *_batch())


def test_distilbert_feed_forward_pair_fused(tiny_distilbert):
    plain, mine, counts = _pair(tiny_distilbert)
    assert counts["linear+gelu"] == plain.config.n_layers
    ids, mask = _batch(100, 500)
    with torch.inference_mode():
        a = plain(input_ids=ids, attention_mask=mask).logits
        b = mine(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_nn_gelu_both_forms(approximate):
    torch.manual_seed(0)
    block = torch.nn.Module()
    block.dense = torch.nn.Linear(16, 48)
    block.intermediate_act_fn = torch.nn.GELU(approximate=approximate)
    x = torch.randn(3, 7, 16)  # [B, T, in]
    with torch.inference_mode():
        expected = block.intermediate_act_fn(block.dense(x))
        assert fused.fuse_linears(block) == {"linear+gelu": 1, "linear": 0}
        got = block.intermediate_act_fn(block.dense(x))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_other_activations_keep_their_own_and_fuse_the_bias_only():
    block = torch.nn.Module()
    block.dense = torch.nn.Linear(8, 8)
    block.intermediate_act_fn = torch.nn.ReLU()
    assert fused.fuse_linears(block) == {"linear+gelu": 0, "linear": 1}
    assert isinstance(block.intermediate_act_fn, torch.nn.ReLU)


def test_bf16_on_real_reviews_as_close_to_fp32_as_torch(minilm, imdb_sample):
    """The real MiniLM on 200 IMDb reviews: fused bf16 strays from fp32 no more than torch's
    bf16 linear layers (the fused GELU rounds once, after it, instead of before and after)."""
    errors = bf16_errors(minilm, imdb_sample, "linear", ("torch", "fused"), linear="torch")
    assert errors["fused"].max() < 0.02
    assert errors["fused"].mean() < 1.5 * errors["torch"].mean() + 1e-4, errors
    plain = Predictor.from_pretrained(minilm, precision="fp32", linear="torch")
    fused_fp32 = Predictor.from_pretrained(minilm, precision="fp32", linear="fused")
    np.testing.assert_allclose(
        probs(fused_fp32.predict(imdb_sample)), probs(plain.predict(imdb_sample)), atol=1e-4
    )


CHOICES = {  # (requested, precision, device, bf16 path, compiled) -> kernel, oneDNN built in
    ("auto", "bf16", "cpu", "avx512_bf16", False): "fused",
    ("auto", "bf16", "cpu", "amx", False): "fused",
    ("auto", "fp32", "cpu", "none", False): "fused",
    ("auto", "bf16", "cpu", "none", False): "torch",  # bf16 emulated: not measured
    ("auto", "bf16", "cpu", "avx512_bf16", True): "torch",  # inductor fuses by itself
    ("auto", "bf16", "cuda", "avx512_bf16", False): "torch",
    ("auto", "fp32", "cuda:0", "amx", False): "torch",
    ("torch", "fp32", "cpu", "amx", False): "torch",
    ("fused", "bf16", "cpu", "none", False): "fused",  # asked for: given
    ("fused", "bf16", "cuda", "amx", False): "torch",  # not there: warned, torch's kept
}


def test_choose_linear(monkeypatch):
    for (requested, precision, device, path, compiled), expected in CHOICES.items():
        monkeypatch.setattr(runtime, "bf16_path", lambda path=path: path)
        got = fused.choose_linear(requested, precision, device, compiled=compiled)
        assert got == expected, (requested, precision, device, path, compiled)
    with pytest.raises(ValueError, match="linear must be one of"):
        fused.choose_linear("int8", "fp32", "cpu")


def test_choose_linear_without_onednn(monkeypatch):
    monkeypatch.setattr(fused, "available", lambda: False)
    assert fused.choose_linear("auto", "fp32", "cpu") == "torch"
    assert fused.choose_linear("fused", "fp32", "cpu") == "torch"


def test_predictor_linears_agree_and_say_which_ran(tiny_bert, caplog):
    caplog.set_level("INFO", logger="reviewsense.inference.backends")
    a = Predictor.from_pretrained(tiny_bert, precision="fp32", linear="torch").predict(TEXTS)
    b = Predictor.from_pretrained(tiny_bert, precision="fp32").predict(TEXTS)
    np.testing.assert_allclose(probs(a), probs(b), atol=1e-5)
    assert "linear layers: torch (torch)" in caplog.text
    assert "linear layers: fused (2 with GELU, 12 bias only) (auto)" in caplog.text


def test_predictor_refuses_an_unknown_linear(tiny_bert):
    with pytest.raises(ModelError, match="linear must be one of auto, torch, fused"):
        Predictor.from_pretrained(tiny_bert, linear="int8")


def test_linear_without_bias():
    torch.manual_seed(0)
    block = torch.nn.Module()
    block.proj = torch.nn.Linear(16, 8, bias=False)
    x = torch.randn(2, 5, 16)  # [B, T, in]
    with torch.inference_mode():
        expected = block.proj(x)
        assert fused.fuse_linears(block)["linear"] == 1
        got = block.proj(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
