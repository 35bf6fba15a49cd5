"""Training-time attention for CPUs: two bf16 batched matmuls around a softmax.

On a CPU, PyTorch's fused SDPA kernel runs attention's forward fast but its backward slowly:
on an Intel Xeon with AMX, MiniLM's shapes (batch 16, 12 heads, 256 tokens, head size 32, bf16)
take 5.8 ms forward and 46 ms backward per layer, a third of a whole training step. The same
attention written as ``softmax(Q Kᵀ · scale + mask) V`` with bf16 matmuls (the softmax kernel
accumulates in fp32) takes 14 ms + 15 ms, both directions on the matrix units; with q scaled
instead of the scores and the softmax kept in bf16 under autocast (it would run in fp32), less.
Inference has its own kernels (:mod:`reviewsense.inference.attention`); a saved model's config
does not record this choice.

``train`` switches to it where it was measured faster (:func:`choose_kernel`: bf16 autocast on a
CPU with a bf16 matmul path, AMX or avx512_bf16; BENCHMARKS.md, "Where a training step goes"),
or when asked (``--set attention_kernel=bf16_matmul``; ``sdpa`` keeps transformers' default).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

NAME = "reviewsense_bf16_matmul"  # the key under transformers' AttentionInterface
# Config values of the training attention kernel: "auto" = "bf16_matmul" when training runs bf16
# autocast on a CPU with AMX or avx512_bf16 (:func:`choose_kernel`), else "sdpa" (transformers').
ATTENTION_KERNELS = ("auto", "sdpa", "bf16_matmul")


def bf16_matmul_attention(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs
):
    """transformers attention interface: (attn_output, attn_weights).

    Args:
        module: the attention layer (its ``training`` flag gates the dropout).
        query, key, value: (batch, heads, tokens, head_dim); bf16 under CPU autocast.
        attention_mask: additive float mask (transformers' ``eager_mask``, registered for this
            kernel by :func:`use_bf16_matmul_attention`), broadcastable to
            (batch, heads, tokens, tokens); None for no padding.
        scaling: factor on the scores (default head_dim ** -0.5).
        dropout: attention-probability dropout, applied in training only.

    In eval mode (the Trainer's evaluations during training) it runs the inference kernel
    ``predict`` would pick (:func:`reviewsense.inference.attention.choose_kernel`): SDPA's fused
    forward on AMX, 1.3x faster there, the chunked one on avx512_bf16 only; the weights it
    returns are then None.
    """
    import torch
    import torch.nn.functional as F

    if scaling is None:
        scaling = query.size(-1) ** -0.5
    mask = None
    if attention_mask is not None:  # an fp32 mask added as is would promote scores to fp32
        mask = attention_mask.clamp(min=torch.finfo(query.dtype).min).to(query.dtype)
    if not module.training:  # evaluation inside training: the inference kernels are faster
        from reviewsense.inference import attention as inference_attention

        if inference_attention.choose_kernel("auto", "bf16", query.device.type) == "chunked":
            return inference_attention.chunked_attention(module, query, key, value, mask, scaling)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
        return out.transpose(1, 2).contiguous(), None
    # Scale q (batch, heads, q, head_dim), not the scores (batch, heads, q, k): 8x fewer
    # elements at 256 tokens, forward and backward.
    scores = torch.matmul(query * scaling, key.transpose(2, 3))  # (batch, heads, q, k)
    if mask is not None:
        scores = scores + mask
    # Autocast runs softmax in fp32 (and its backward), then casts the probabilities back to
    # bf16 for the next matmul: 3-4x the time of the bf16 kernel, which accumulates in fp32
    # anyway. The probabilities enter that matmul as bf16 either way.
    with torch.autocast(query.device.type, enabled=False):
        probs = torch.softmax(scores, dim=-1)
    probs = F.dropout(probs, p=dropout, training=module.training)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()  # (batch, q, heads, head_dim)
    return out, probs


def choose_kernel(requested: str, precision: str, device: str) -> str:
    """The training attention kernel for a config value ``requested`` (ATTENTION_KERNELS).

    "auto" picks "bf16_matmul" only where it was measured faster: bf16 autocast on a CPU with
    AMX (1.2-1.5x per training step at 128-256 tokens) or avx512_bf16 (AMD EPYC: 1.3-1.5x at
    128-512 tokens with word dropout); on GPUs and CPUs without a bf16 path, "sdpa".
    """
    from reviewsense.runtime import cpu_has_fast_bf16

    if requested != "auto":
        return requested
    on_cpu = not device.startswith("cuda")
    return "bf16_matmul" if on_cpu and precision == "bf16" and cpu_has_fast_bf16() else "sdpa"


def use_bf16_matmul_attention(model) -> bool:
    """Switch ``model`` (a transformers model) to :func:`bf16_matmul_attention`.

    Returns False, leaving the model as it is, when the architecture does not dispatch its
    attention through transformers' AttentionInterface.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    AttentionInterface.register(NAME, bf16_matmul_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, eager_mask)  # additive float masks
    if not model._can_set_attn_implementation():
        return False
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME


def apply_training_kernel(model, requested: str, precision: str) -> str:
    """Give ``model`` the training attention kernel for ``requested``; returns the one in effect.

    :func:`restore_sdpa` undoes it before the model is timed or scored in memory (inference
    has its own kernels, :mod:`reviewsense.inference.attention`; a saved config does not
    record the choice).
    """
    from reviewsense.runtime import default_device

    kernel = choose_kernel(requested, precision, default_device())
    if kernel == "bf16_matmul" and not use_bf16_matmul_attention(model):
        log.warning("this architecture cannot switch its attention kernel; keeping its default")
        kernel = model.config._attn_implementation
    log.info("training attention kernel: %s (%s)", kernel, requested)
    return kernel


def restore_sdpa(model) -> None:
    """Put ``model`` back on SDPA attention (inference) after :func:`apply_training_kernel`."""
    if model.config._attn_implementation == NAME:
        model.set_attn_implementation("sdpa")
