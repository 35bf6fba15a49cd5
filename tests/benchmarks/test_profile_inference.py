"""profile_inference times every attention kernel but "auto" (varlen, the service's, too)."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import profile_inference  # noqa: E402


def test_every_kernel_but_auto_is_timed(tiny_bert):
    import torch

    from reviewsense.inference.attention import KERNELS

    assert profile_inference.kernels() == tuple(k for k in KERNELS if k != "auto")
    assert "varlen" in profile_inference.kernels()
    model = profile_inference._model(str(tiny_bert), "fp32", "auto")
    ids = torch.randint(1000, 2000, (4, 16))
    mask = torch.ones_like(ids)
    mask[::2, 12:] = 0
    times = profile_inference.time_kernels(model, ids, mask, rounds=2)
    assert set(times) == {"sdpa", "chunked", "varlen", "packed"}
    assert all(len(t) == 2 and min(t) > 0 for t in times.values())


def test_packed_is_timed_as_the_predictor_runs_it(tiny_bert, monkeypatch):
    """Timing packed means running packed_logits (real tokens only), not the padded forward."""
    import torch

    from reviewsense.inference import packed

    calls = []
    real = packed.packed_logits
    monkeypatch.setattr(packed, "packed_logits", lambda *a: calls.append(1) or real(*a))
    model = profile_inference._model(str(tiny_bert), "fp32", "auto")
    ids = torch.randint(1000, 2000, (2, 8))
    with torch.inference_mode():
        out = profile_inference.switch(model, "packed")(ids, torch.ones_like(ids))
    assert calls and out.shape == (2, 2)


@pytest.mark.parametrize("flag", ["--batch", "--tokens", "--padded-every", "--rounds", "--threads"])
def test_counts_below_one_are_refused(flag):
    args = profile_inference.parser().parse_args(["--model", "m", flag, "0"])
    with pytest.raises(SystemExit, match=f"{flag} must be at least 1"):
        profile_inference.check_args(args)


def test_precision_and_threads_have_help_with_defaults():
    text = " ".join(profile_inference.parser().format_help().split())
    assert "the weights' dtype (default: bf16)" in text
    assert "torch intra-op threads (default: 2)" in text
