"""Training-time dropout for CPUs: masks from 64-bit random words instead of ``bernoulli_``.

A BERT layer drops out two hidden states (attention output, feed-forward output), plus one
after the embeddings: 13 masks per MiniLM step, each (batch, tokens, 384). On a CPU, PyTorch
draws every mask element with its own ``bernoulli_`` call into the Mersenne Twister: ~5.5 ns an
element, 9% of a bf16 training step on an Intel Xeon with AMX (BENCHMARKS.md, "Where a training
step goes"). ``WordDropout`` draws one 64-bit word per four elements and compares each
16-bit quarter with a threshold: the same distribution (drop probability p rounded to 1/65536),
the same seeded generator, a fraction of the time.

``train`` and ``distill`` swap it in for ``torch.nn.Dropout`` where it was measured faster
(:func:`choose_dropout`: "auto" = on CPUs; GPUs keep PyTorch's fused dropout); a saved model does
not record the choice (dropout modules hold no weights).
"""

from __future__ import annotations

import logging
from functools import lru_cache

log = logging.getLogger(__name__)

# Config values of the training dropout kernel: "auto" = "words" on a CPU, else "torch".
DROPOUT_KERNELS = ("auto", "torch", "words")
_INT16_SPAN = 1 << 16


@lru_cache(maxsize=1)
def word_dropout_class() -> type:
    """The ``WordDropout`` module class (built on first use: importing torch takes seconds,
    and the config layer imports this module for ``DROPOUT_KERNELS``)."""
    import torch

    class WordDropout(torch.nn.Module):
        """Inverted dropout with masks cut from random 64-bit words (drop probability p)."""

        def __init__(self, p: float):
            super().__init__()
            if not 0.0 <= p < 1.0:
                raise ValueError(f"dropout probability must be in [0, 1), got {p}")
            self.p = p
            # an int16 quarter-word is uniform on [-32768, 32767]; below the threshold: dropped
            self.threshold = round(p * _INT16_SPAN) - _INT16_SPAN // 2
            self.scale = 1.0 / (1.0 - p)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training or self.p == 0.0:
                return x
            n = x.numel()
            # the full 64-bit range (high is exclusive): every 16-bit quarter is uniform
            words = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), device=x.device)
            keep = words.view(torch.int16)[:n].view(x.shape) >= self.threshold
            return x * keep * self.scale  # the scale in fp32 opmath, as F.dropout does

        def extra_repr(self) -> str:
            return f"p={self.p}"

    return WordDropout


def choose_dropout(requested: str, device: str) -> str:
    """The training dropout kernel for a config value ``requested`` (DROPOUT_KERNELS)."""
    if requested != "auto":
        return requested
    return "torch" if device.startswith("cuda") else "words"


def apply_dropout_kernel(model, requested: str) -> str:
    """Swap ``model``'s ``torch.nn.Dropout`` modules for ``WordDropout`` where chosen.

    Returns the kernel in effect. Modules with p = 0 are left alone (they do nothing).
    """
    import torch

    from reviewsense.runtime import default_device

    kernel = choose_dropout(requested, default_device())
    if kernel == "words":
        word_dropout = word_dropout_class()
        swapped = 0
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is torch.nn.Dropout and child.p > 0:
                    setattr(parent, name, word_dropout(child.p))
                    swapped += 1
        log.info(
            "training dropout: random-word masks in %d dropout modules (%s)", swapped, requested
        )
    else:
        log.info("training dropout: torch (%s)", requested)
    return kernel
