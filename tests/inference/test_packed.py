"""inference.packed: a batch's real tokens in one row give the padded forward's logits; which
models run packed, and what the others and compiled models run instead."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reviewsense.inference import Predictor, packed
from reviewsense.inference import attention as inf_attention

from .models import assert_same_logits
from .test_predictor import TEXTS, probs


def _models(model_dir, dtype=torch.float32):
    """The same classifier twice in eval mode: SDPA (padded) and packed."""
    from transformers import AutoModelForSequenceClassification

    padded = AutoModelForSequenceClassification.from_pretrained(model_dir).eval().to(dtype)
    mine = AutoModelForSequenceClassification.from_pretrained(model_dir).eval().to(dtype)
    assert inf_attention.use_kernel(mine, "packed") == packed.NAME
    return padded, mine


def _right_padded():
    torch.manual_seed(0)
    ids = torch.randint(1000, 2000, (4, 20))
    mask = torch.ones(4, 20, dtype=torch.long)
    for row, n in enumerate([20, 7, 13, 1]):  # one full row, one of a single token
        mask[row, n:] = 0
        ids[row, n:] = 0  # pad id
    return ids, mask


def test_packed_logits_equal_the_padded_forward_in_fp32(tiny_bert):
    padded, mine = _models(tiny_bert)
    ids, mask = _right_padded()
    with torch.inference_mode():
        want = padded(input_ids=ids, attention_mask=mask).logits
        got = packed.packed_logits(mine, ids, mask)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_each_review_sees_only_itself(tiny_bert):
    """A review's logits do not move when its batch neighbours change."""
    _, mine = _models(tiny_bert)
    ids, mask = _right_padded()
    with torch.inference_mode():
        alone = packed.packed_logits(mine, ids[1:2], mask[1:2])
        other = ids.clone()
        other[0] = torch.randint(2000, 3000, (20,))
        together = packed.packed_logits(mine, other, mask)
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=1e-5)


def test_bf16_stays_close_to_fp32(tiny_bert):
    padded, mine = _models(tiny_bert, torch.bfloat16)
    ids, mask = _right_padded()
    with torch.inference_mode():
        a = padded(input_ids=ids, attention_mask=mask).logits.float()
        b = packed.packed_logits(mine, ids, mask).float()
    assert (a - b).abs().max().item() < 0.05


def test_predictor_packed_agrees_with_sdpa_and_says_so(tiny_bert, caplog):
    caplog.set_level("INFO", logger="reviewsense.inference.backends")
    a = Predictor.from_pretrained(tiny_bert, precision="fp32", attention="sdpa", batch_size=3)
    b = Predictor.from_pretrained(tiny_bert, precision="fp32", attention="packed", batch_size=3)
    np.testing.assert_allclose(probs(b.predict(TEXTS)), probs(a.predict(TEXTS)), atol=1e-5)
    assert f"attention kernel: {packed.NAME} (packed)" in caplog.text


def test_a_model_without_the_bert_layout_runs_varlen(tiny_distilbert, caplog):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_distilbert)
    assert not packed.supports(model)
    caplog.set_level("INFO", logger="reviewsense.inference.attention")
    got = inf_attention.use_kernel(model, "packed")
    assert got != packed.NAME and "cannot run packed; using varlen" in caplog.text


def test_a_compiled_model_runs_padded_sdpa(tiny_bert, caplog, monkeypatch):
    """Packed batches are a new shape each time: compiling them would never end."""
    from reviewsense.inference import backends

    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)  # the choice, not inductor
    caplog.set_level("WARNING", logger="reviewsense.inference.attention")
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    backends.model_runner(model, "fp32", "cpu", compile=True, attention="packed")
    assert model.config._attn_implementation == "sdpa"
    assert "runs padded batches" in caplog.text


def test_called_as_an_ordinary_attention_it_honours_the_padding_mask(tiny_bert):
    """The model called on a padded batch directly (not through packed_logits): masked SDPA."""
    padded, mine = _models(tiny_bert)
    assert_same_logits(mine, padded, *_right_padded())


def test_predictor_refuses_an_unknown_kernel_naming_packed(tiny_bert):
    from reviewsense.errors import ModelError

    with pytest.raises(ModelError, match="varlen, packed"):
        Predictor.from_pretrained(tiny_bert, attention="flash")
