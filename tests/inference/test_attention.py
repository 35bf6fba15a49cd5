"""inference.attention: the chunked and varlen kernels equal SDPA, ignore padding, and when
each is chosen."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reviewsense import runtime
from reviewsense.errors import ModelError
from reviewsense.inference import Predictor
from reviewsense.inference import attention as inf_attention

from .test_predictor import TEXTS, bf16_errors, probs


def _batch():
    torch.manual_seed(0)
    ids = torch.randint(1000, 2000, (5, 24))
    mask = torch.ones(5, 24, dtype=torch.long)
    mask[0, 15:] = 0  # padded reviews: the mask must reach every chunk
    mask[3, 6:] = 0
    return ids, mask


def _pair(model_dir, dtype=torch.float32, kernel="chunked"):
    """The same model twice in eval mode: SDPA, and ``kernel`` (chunked or varlen)."""
    from transformers import AutoModelForSequenceClassification

    sdpa = AutoModelForSequenceClassification.from_pretrained(model_dir).eval().to(dtype)
    mine = AutoModelForSequenceClassification.from_pretrained(model_dir).eval().to(dtype)
    assert inf_attention.use_kernel(mine, kernel) == inf_attention.REGISTERED[kernel]
    assert sdpa.config._attn_implementation == "sdpa"
    return sdpa, mine


@pytest.fixture
def two_reviews_a_chunk(monkeypatch):
    """Chunks of two reviews at the test's 24 tokens: 5 reviews -> chunks of 2, 2 and 1."""
    monkeypatch.setattr(inf_attention, "CHUNK_SCORES", 2 * 2 * 24 * 24)  # 2 heads


def test_same_logits_as_sdpa_in_fp32_over_several_chunks(tiny_bert, two_reviews_a_chunk):
    sdpa, mine = _pair(tiny_bert)
    ids, mask = _batch()
    with torch.inference_mode():
        a = sdpa(input_ids=ids, attention_mask=mask).logits
        b = mine(input_ids=ids, attention_mask=mask).logits
        c = mine(input_ids=ids).logits  # no mask at all
        d = sdpa(input_ids=ids).logits
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, d, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["chunked", "varlen"])
def test_padding_is_ignored_in_bf16(tiny_bert, two_reviews_a_chunk, kernel):
    _, mine = _pair(tiny_bert, torch.bfloat16, kernel)
    ids, mask = _batch()
    other = ids.clone()
    other[0, 15:] = 1999  # different tokens where review 0 is padding
    with torch.inference_mode():
        b = mine(input_ids=ids, attention_mask=mask).logits.float()
        c = mine(input_ids=other, attention_mask=mask).logits.float()
    torch.testing.assert_close(c[0], b[0])


def test_bf16_on_real_reviews_is_as_close_to_fp32_as_sdpa(minilm, imdb_sample):
    """The real MiniLM encoder on 200 IMDb reviews: the chunked kernel's bf16 probabilities
    stray from fp32 no more than SDPA's do (they are computed in a different order)."""
    errors = bf16_errors(minilm, imdb_sample, "attention", ("sdpa", "chunked"))
    assert errors["chunked"].max() < 0.02
    assert errors["chunked"].mean() < 1.5 * errors["sdpa"].mean() + 1e-4, errors


def test_softmax_stays_bf16_under_autocast(tiny_bert, monkeypatch):
    """In a bf16 training run's evaluations the kernel runs under autocast, which would run the
    softmax in fp32; the kernel keeps it in the scores' dtype."""
    _, mine = _pair(tiny_bert)
    seen = []
    real = torch.softmax
    monkeypatch.setattr(
        torch, "softmax", lambda x, *a, **k: seen.append(x.dtype) or real(x, *a, **k)
    )
    ids, mask = _batch()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        mine(input_ids=ids, attention_mask=mask)
    assert seen and set(seen) == {torch.bfloat16}


# (requested, precision, device, CPU bf16 path) -> kernel; why, where it is a measurement
CHOICES = {
    ("auto", "bf16", "cpu", "avx512_bf16"): "chunked",  # AMD EPYC: 1.21x predict's reviews/s
    ("auto", "bf16", "cpu", "amx"): "sdpa",  # SDPA's forward is fast on AMX
    ("auto", "fp32", "cpu", "avx512_bf16"): "sdpa",  # measured equal in fp32
    ("auto", "fp32", "cpu", "none"): "sdpa",
    ("auto", "bf16", "cuda", "avx512_bf16"): "sdpa",
    ("chunked", "fp32", "cpu", "amx"): "chunked",  # asked for: given
    ("sdpa", "bf16", "cpu", "avx512_bf16"): "sdpa",
}


def test_choose_kernel(monkeypatch):
    for (requested, precision, device, path), expected in CHOICES.items():
        monkeypatch.setattr(runtime, "bf16_path", lambda path=path: path)
        got = inf_attention.choose_kernel(requested, precision, device)
        assert got == expected, (requested, precision, device, path)
    monkeypatch.setattr(runtime, "bf16_path", lambda: "avx512_bf16")
    assert inf_attention.choose_kernel("auto", "bf16", "cpu", compiled=True) == "sdpa"
    assert inf_attention.choose_kernel("chunked", "bf16", "cpu", compiled=True) == "chunked"
    with pytest.raises(ValueError, match="attention must be one of"):
        inf_attention.choose_kernel("flash", "bf16", "cpu")


def test_predictor_kernels_agree_and_say_which_ran(tiny_bert, caplog):
    caplog.set_level("INFO", logger="reviewsense.inference.backends")
    a = Predictor.from_pretrained(tiny_bert, precision="fp32", attention="sdpa").predict(TEXTS)
    b = Predictor.from_pretrained(tiny_bert, precision="fp32", attention="chunked").predict(TEXTS)
    np.testing.assert_allclose(probs(a), probs(b), atol=1e-5)
    assert "attention kernel: sdpa (sdpa)" in caplog.text
    assert f"attention kernel: {inf_attention.NAME} (chunked)" in caplog.text


def test_predictor_refuses_an_unknown_kernel(tiny_bert):
    with pytest.raises(ModelError, match="attention must be one of auto, sdpa, chunked, varlen"):
        Predictor.from_pretrained(tiny_bert, attention="flash")


def test_use_kernel_switches_back_to_sdpa(tiny_bert):
    _, mine = _pair(tiny_bert)
    assert inf_attention.use_kernel(mine, "sdpa") == "sdpa"
    assert inf_attention.use_kernel(mine, "chunked") == inf_attention.NAME
    assert inf_attention.use_kernel(mine, "varlen") == inf_attention.VARLEN_NAME
    assert inf_attention.use_kernel(mine, "sdpa") == "sdpa"


@pytest.mark.parametrize("padding", ["right", "left"])
def test_varlen_equals_sdpa_in_fp32(tiny_bert, monkeypatch, padding):
    """Right padding: each review over its own tokens; left padding is not a prefix, so the
    whole batch runs masked SDPA. Either way the logits equal SDPA's, with and without a mask."""
    sdpa, mine = _pair(tiny_bert, kernel="varlen")
    ids, mask = _batch()  # reviews 0 and 3 padded
    if padding == "left":
        mask = mask.flip(1)
    seen = []
    real = inf_attention._prefix_lengths
    monkeypatch.setattr(
        inf_attention, "_prefix_lengths", lambda *a: seen.append(real(*a)) or seen[-1]
    )
    with torch.inference_mode():
        a, b = (m(input_ids=ids, attention_mask=mask).logits for m in (mine, sdpa))
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mine(input_ids=ids).logits, sdpa(input_ids=ids).logits)
    assert (seen[0] is None) == (padding == "left")


def test_prefix_lengths():
    """Additive (batch, 1, q, k) masks: right padding gives lengths, anything else None."""
    keys = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]]).bool()
    add = torch.zeros(3, 1, 4, 4)
    add.masked_fill_(~keys[:, None, None, :], torch.finfo(torch.float32).min)
    assert inf_attention._prefix_lengths(add, 3, 4) == [3, 4, 1]
    assert inf_attention._prefix_lengths(add.flip(-1), 3, 4) is None  # left padding
    assert inf_attention._prefix_lengths(None, 2, 4) == [4, 4]


def test_saved_model_does_not_carry_the_kernel(tiny_bert, tmp_path):
    _, mine = _pair(tiny_bert)
    mine.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert inf_attention.NAME not in json.dumps(config)
