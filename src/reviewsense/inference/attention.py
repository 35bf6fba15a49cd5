"""Inference attention for CPUs without AMX: SDPA's math, a few reviews at a time.

On a CPU, attention's cost is the (heads, tokens, tokens) score tensor, not its matmuls. For
MiniLM (12 heads, head size 32) a batch of 32 reviews at 256 tokens holds 25M scores per layer
(50 MB in bf16), far past the caches; every pass over it (matmul out, mask, softmax, matmul in)
then runs at memory speed, ~7-8 GB/s on the 2-core machines this project runs on. PyTorch's
fused CPU kernel (``_scaled_dot_product_flash_attention_for_cpu``) avoids the big tensor but
computes slowly at head size 32: 31 ms a layer for that batch on an AMD EPYC with
avx512_bf16, 42% of the whole forward. :func:`chunked_attention` runs the plain
``softmax(q Kᵀ · scale + mask) V`` over :data:`CHUNK_SCORES` scores at a time (one review at 256
tokens), so each chunk's scores stay in cache between the two matmuls: the bf16 forward of that
batch takes 406 instead of 473 ms, and ``predict`` runs 1.21x the reviews/s (BENCHMARKS.md,
"Inference attention"; with the fused linear layers of :mod:`reviewsense.inference.fused`,
1.16x paired); in fp32 the two kernels are equal.

:func:`choose_kernel` keeps SDPA where it has not been measured slower: fp32, GPUs, CPUs with
AMX (whose matrix units make SDPA's forward fast: ``reviewsense.attention``) and compiled
models. :func:`varlen_attention` (SDPA per review on its exact length) was measured faster than
both on the service's small unequal batches; the service now runs them packed
(:mod:`reviewsense.inference.packed`: real tokens only through every layer, faster still;
``service.state.SERVICE_ATTENTION``). The choice is not saved in the model folder; its config
keeps transformers' default.
"""

from __future__ import annotations

import logging

from reviewsense.inference import packed
from reviewsense.inference.packed import sdpa_per_review

log = logging.getLogger(__name__)

NAME = "reviewsense_chunked"  # the key under transformers' AttentionInterface
VARLEN_NAME = "reviewsense_varlen"
# "auto" = "chunked" for bf16 on a CPU with avx512_bf16 and no AMX (:func:`choose_kernel`),
# else "sdpa". "varlen": :func:`varlen_attention`; "packed": the whole forward on real tokens
# only (:mod:`reviewsense.inference.packed`; BERT-family classifiers, else "varlen").
KERNELS = ("auto", "sdpa", "chunked", "varlen", "packed")
# Scores (batch x heads x tokens x tokens) computed at once: one MiniLM review at 256 tokens
# (1.5 MB in bf16), four at 128. Budgets of 2, 4 and 8 such reviews measured the same or slower.
CHUNK_SCORES = 12 * 256 * 256


def chunked_attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """transformers attention interface, inference only: (attn_output, None).

    Args:
        module: the attention layer (unused: no dropout at inference).
        query, key, value: (batch, heads, tokens, head_dim), the same dtype.
        attention_mask: additive float mask broadcastable to (batch, 1, tokens, tokens)
            (transformers' ``eager_mask``, registered for this kernel), or None.
        scaling: factor on the scores (default head_dim ** -0.5).

    Returns (batch, tokens, heads, head_dim), the layout transformers' attention layers expect.
    """
    import torch

    batch, heads, tokens, head_dim = query.shape
    if scaling is None:
        scaling = head_dim**-0.5
    out = query.new_empty(batch, tokens, heads, head_dim)
    out_bhtd = out.transpose(1, 2)  # a view: chunks are written in place
    step = max(1, CHUNK_SCORES // (heads * tokens * tokens))  # reviews per chunk
    # Autocast (attention inside a bf16 training run's evaluations) would run softmax in fp32:
    # 3-4x slower, and the probabilities enter the next matmul as bf16 anyway.
    with torch.autocast(query.device.type, enabled=False):
        for i in range(0, batch, step):
            j = min(batch, i + step)
            # Scale q (heads x tokens x head_dim), not the scores (heads x tokens x tokens).
            scores = torch.matmul(query[i:j] * scaling, key[i:j].transpose(2, 3))  # (b, h, q, k)
            if attention_mask is not None:
                scores.add_(attention_mask[i:j])
            probs = torch.softmax(scores, dim=-1)
            out_bhtd[i:j] = torch.matmul(probs, value[i:j])  # (b, h, q, head_dim)
    return out, None


def _prefix_lengths(attention_mask, batch: int, tokens: int):
    """Real tokens per review when ``attention_mask`` (additive, (batch, 1, q, k)) only hides
    right padding — every review's keys a prefix — else None."""
    import torch

    if attention_mask is None:
        return [tokens] * batch
    valid = attention_mask[:, 0, 0, :] == 0  # (batch, keys): what the [CLS] query may see
    lengths = valid.sum(-1)
    prefix = torch.arange(tokens, device=valid.device)[None, :] < lengths[:, None]
    return lengths.tolist() if torch.equal(valid, prefix) else None


def varlen_attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """transformers attention interface, inference only: each review's attention over its own
    tokens, no mask: PyTorch's SDPA per review on (1, heads, its length, head_dim).

    Small batches of unequal reviews (the service's micro-batches: ~4 random IMDb reviews)
    pad ~20% of their tokens; attention's cost grows with the square of the padded width and a
    masked SDPA computes every padding key. Per review, exact lengths and no mask: 1.08x the
    forward of masked SDPA on such batches, and in the service, where the chunked kernel's many
    small multi-threaded ops stall on preempted threads, more (BENCHMARKS.md, "Inference
    attention in the service"). Sorted full batches (``predict``) pad little: there the
    chunked kernel is faster. A mask that is not right padding alone falls back to masked SDPA.

    Args/returns: as :func:`chunked_attention`.
    """
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    batch, heads, tokens, head_dim = query.shape
    lengths = _prefix_lengths(attention_mask, batch, tokens)
    if lengths is None:
        out = sdpa(query, key, value, attn_mask=attention_mask, scale=scaling)  # (b, h, t, d)
        return out.transpose(1, 2), None
    out = query.new_zeros(batch, tokens, heads, head_dim)  # padding rows stay 0
    return sdpa_per_review(
        query, key, value, out, [(i, 0, n) for i, n in enumerate(lengths)], scaling
    )


# Our kernels: name -> (key under transformers' AttentionInterface, function).
IMPLEMENTATIONS = {"chunked": (NAME, chunked_attention), "varlen": (VARLEN_NAME, varlen_attention)}
REGISTERED = {kernel: key for kernel, (key, _) in IMPLEMENTATIONS.items()}


def choose_kernel(requested: str, precision: str, device: str, compiled: bool = False) -> str:
    """The inference attention kernel for ``requested`` (one of :data:`KERNELS`).

    "auto" picks "chunked" for bf16 on a CPU with avx512_bf16 and no AMX, where it was measured
    faster (AMD EPYC: 1.17x per forward, 1.21x ``predict``'s reviews/s); fp32 (measured equal),
    GPUs, AMX CPUs and ``compiled`` models (torch.compile was measured on SDPA) keep "sdpa".
    "packed" on a ``compiled`` model becomes "sdpa" (a warning says so).
    """
    from reviewsense.runtime import bf16_path

    if requested not in KERNELS:
        raise ValueError(f"attention must be one of {', '.join(KERNELS)}, got {requested!r}")
    if requested == "packed" and compiled:  # every packed batch would be a new shape to compile
        log.warning("a compiled model runs padded batches: attention sdpa instead of packed")
        return "sdpa"
    if requested != "auto":
        return requested
    on_cpu = not str(device).startswith("cuda")
    measured_faster = on_cpu and precision == "bf16" and bf16_path() == "avx512_bf16"
    return "chunked" if measured_faster and not compiled else "sdpa"


def use_kernel(model, kernel: str) -> str:
    """Give ``model`` (a transformers model) the inference ``kernel``; returns the one in effect.

    "sdpa" puts a model switched to one of ours back on SDPA. An architecture that does not
    dispatch attention through transformers' AttentionInterface keeps its own. "packed" on a
    model :func:`reviewsense.inference.packed.supports` does not support becomes "varlen".
    """
    if kernel == "packed":
        if packed.supports(model) and model._can_set_attn_implementation():
            model.set_attn_implementation(packed.register())
            return model.config._attn_implementation
        log.info("%s cannot run packed; using varlen attention", type(model).__name__)
        kernel = "varlen"
    if kernel not in REGISTERED:
        if model.config._attn_implementation in REGISTERED.values():
            model.set_attn_implementation("sdpa")
        return model.config._attn_implementation
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    name, function = IMPLEMENTATIONS[kernel]
    AttentionInterface.register(name, function)
    ALL_MASK_ATTENTION_FUNCTIONS.register(name, eager_mask)  # additive float masks
    if not model._can_set_attn_implementation():
        log.debug("%s cannot switch its attention kernel", type(model).__name__)
        return model.config._attn_implementation
    model.set_attn_implementation(name)
    return model.config._attn_implementation
