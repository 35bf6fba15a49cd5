"""reviewsense.attention: the bf16-matmul training attention equals SDPA, and when it is chosen."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import build_tiny_model, tiny_config

from reviewsense import attention, runtime
from reviewsense.config import RunConfig
from reviewsense.errors import ConfigError
from reviewsense.train import run_training


def _batch():
    torch.manual_seed(0)
    ids = torch.randint(1000, 2000, (3, 24))
    mask = torch.ones(3, 24, dtype=torch.long)
    mask[0, 15:] = 0  # padded reviews: the mask must reach the new kernel
    mask[2, 6:] = 0
    return ids, mask


def _pair(tmp_path):
    """Two copies of one tiny BERT (dropout 0), in training mode (the kernel's matmul path runs
    in training only): SDPA and the bf16-matmul attention."""
    from transformers import AutoModelForSequenceClassification

    path = build_tiny_model(tmp_path / "m", dropout=0.0, initializer_range=0.5)
    sdpa = AutoModelForSequenceClassification.from_pretrained(path)
    mine = AutoModelForSequenceClassification.from_pretrained(path)
    assert sdpa.config._attn_implementation == "sdpa"
    assert attention.use_bf16_matmul_attention(mine)
    assert mine.config._attn_implementation == attention.NAME
    return sdpa.train(), mine.train()


def test_same_logits_and_gradients_as_sdpa_in_fp32(tmp_path):
    sdpa, mine = _pair(tmp_path)
    ids, mask = _batch()
    a = sdpa(input_ids=ids, attention_mask=mask).logits
    b = mine(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    a.sum().backward()
    b.sum().backward()
    ga = sdpa.bert.encoder.layer[0].attention.self.query.weight.grad
    gb = mine.bert.encoder.layer[0].attention.self.query.weight.grad
    torch.testing.assert_close(gb, ga, atol=1e-5, rtol=1e-4)


def test_close_to_sdpa_under_bf16_autocast_and_padding_is_ignored(tmp_path):
    sdpa, mine = _pair(tmp_path)
    ids, mask = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = sdpa(input_ids=ids, attention_mask=mask).logits.float()
        b = mine(input_ids=ids, attention_mask=mask).logits.float()
        other = ids.clone()
        other[0, 15:] = 1999  # different tokens where review 0 is padding
        c = mine(input_ids=other, attention_mask=mask).logits.float()
    assert (a - b).abs().max() < 0.05
    torch.testing.assert_close(c[0], b[0])


@pytest.mark.parametrize(("path", "runs_sdpa"), [("amx", True), ("avx512_bf16", False)])
def test_eval_mode_runs_the_inference_kernel_with_the_same_result(
    tmp_path, monkeypatch, path, runs_sdpa
):
    """Evaluations inside training run what ``predict`` would: SDPA on AMX, the chunked
    kernel on avx512_bf16 only."""
    monkeypatch.setattr(runtime, "bf16_path", lambda: path)
    sdpa, mine = _pair(tmp_path)
    ids, mask = _batch()
    trained_path = mine(input_ids=ids, attention_mask=mask).logits.detach()
    with torch.no_grad():
        a = sdpa.eval()(input_ids=ids, attention_mask=mask).logits
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(
        torch.nn.functional,
        "scaled_dot_product_attention",
        lambda *a, **k: calls.append(1) or real(*a, **k),
    )
    with torch.no_grad():
        b = mine.eval()(input_ids=ids, attention_mask=mask).logits
    assert len(calls) == (2 if runs_sdpa else 0)  # two layers
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b, trained_path, atol=1e-5, rtol=1e-5)


def test_saved_model_does_not_carry_the_training_kernel(tmp_path):
    _, mine = _pair(tmp_path)
    mine.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert attention.NAME not in json.dumps(config)


@pytest.mark.parametrize(
    ("requested", "precision", "device", "path", "expected"),
    [
        ("auto", "bf16", "cpu", "amx", "bf16_matmul"),
        ("auto", "bf16", "cpu", "avx512_bf16", "bf16_matmul"),  # AMD EPYC: 1.3-1.5x
        ("auto", "bf16", "cpu", "none", "sdpa"),  # no bf16 matmul path: not measured
        ("auto", "fp32", "cpu", "amx", "sdpa"),
        ("auto", "bf16", "cuda", "amx", "sdpa"),
        ("sdpa", "bf16", "cpu", "amx", "sdpa"),
        ("bf16_matmul", "fp32", "cpu", "none", "bf16_matmul"),
    ],
)
def test_choose_kernel(monkeypatch, requested, precision, device, path, expected):
    monkeypatch.setattr(runtime, "bf16_path", lambda: path)
    assert attention.choose_kernel(requested, precision, device) == expected


def test_unknown_kernel_is_refused_by_the_config():
    cfg = RunConfig()
    cfg.train.attention_kernel = "flash"
    with pytest.raises(ConfigError, match="attention_kernel"):
        cfg.validate()


def test_training_run_with_the_bf16_matmul_kernel(tiny_bert, review_files, tmp_path, caplog):
    cfg = tiny_config(tiny_bert, review_files, max_steps=3, attention_kernel="bf16_matmul")
    caplog.set_level("INFO", logger="reviewsense.train")
    run_training(cfg, output_dir=tmp_path / "run")
    assert "training attention kernel: bf16_matmul" in caplog.text
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert attention.NAME not in json.dumps(saved)


def test_apply_training_kernel_and_restore_sdpa(tmp_path):
    model, _ = _pair(tmp_path)
    assert attention.apply_training_kernel(model, "sdpa", "bf16") == "sdpa"
    assert model.config._attn_implementation == "sdpa"
    assert attention.apply_training_kernel(model, "bf16_matmul", "bf16") == "bf16_matmul"
    assert model.config._attn_implementation == attention.NAME
    attention.restore_sdpa(model)  # what distill does before timing and scoring the student
    assert model.config._attn_implementation == "sdpa"


def test_distill_config_refuses_an_unknown_kernel():
    from reviewsense.distill import DistillConfig

    with pytest.raises(ConfigError, match="'attention_kernel'"):
        DistillConfig(teacher="x", attention_kernel="flash").validate()
