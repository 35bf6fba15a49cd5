"""Fused linear layers for CPU inference: bias and GELU inside oneDNN's matmul.

An eager ``nn.Linear`` on the CPU runs ``addmm``: it first copies the bias into every row of
the output, then accumulates the matmul onto it, and the encoder's GELU then reads and writes
the (batch x tokens x 1536) intermediate once more. oneDNN's linear with post-ops
(``torch.ops.mkldnn._linear_pointwise``, what inductor's CPU fusions call) adds the bias and
applies the GELU while each output tile is still in registers, from weights packed once into
oneDNN's blocked layout (unpacked, each call re-lays them out). On an AMD EPYC (avx512_bf16,
2 threads), one MiniLM layer's feed-forward input (8,192 tokens x 384 -> 1,536, then GELU)
takes 11.6 instead of 27.2 ms in bf16, and in fp32 oneDNN's matmul runs at twice MKL's speed
(MKL's fp32 kernels on that CPU: 0.20 TFLOP/s; oneDNN: 0.43). End to end, the Predictor's
bf16 forward over 1,000 IMDb reviews ran 1.12x torch's linear layers (paired,
``benchmarks/ab_predictor.py``) and fp32 ``predict`` 1.89x (BENCHMARKS.md, "Fused linear
layers").

:func:`choose_linear` owns the rule ("auto": fused on a CPU where the op exists, unless the
model is compiled: inductor fuses by itself); :func:`fuse_linears` swaps the modules in place.
The model folder is unchanged: the fusion is a property of the loaded model, like the
attention kernel (:mod:`reviewsense.inference.attention`).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

LINEARS = ("auto", "torch", "fused")
# (linear, activation) child-name pairs whose GELU is fused into the linear: BERT, RoBERTa,
# ELECTRA and MiniLM (``BertIntermediate``), DistilBERT (``FFN``).
ACTIVATION_PAIRS = (("dense", "intermediate_act_fn"), ("lin1", "activation"))
# Rows (tokens) per matmul that oneDNN lays the packed weights out for: a full Predictor batch
# of 32 reviews x 256 tokens. Any other row count runs too, with the same results.
PACK_ROWS = 32 * 256


def available() -> bool:
    """True when this torch build has oneDNN's fused linear op."""
    import torch

    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def choose_linear(requested: str, precision: str, device: str, compiled: bool = False) -> str:
    """The linear kernel for ``requested`` (one of :data:`LINEARS`): "torch" or "fused".

    "auto" picks "fused" on a CPU whose torch build has the op, for fp32 and for bf16 where the
    CPU computes in bf16 (AMX or avx512_bf16). Measured faster in both precisions on an AMD
    EPYC with avx512_bf16 (bf16 1.12x paired, fp32 1.89x); not yet measured on AMX, where it
    is the same oneDNN matmul with less memory traffic around it.
    GPUs and ``compiled`` models (inductor fuses by itself) keep "torch". "fused" where the op
    is missing falls back to "torch" with a warning.
    """
    from reviewsense.runtime import bf16_path

    if requested not in LINEARS:
        raise ValueError(f"linear must be one of {', '.join(LINEARS)}, got {requested!r}")
    on_cpu = not str(device).startswith("cuda")
    if requested == "auto":
        native = precision == "fp32" or bf16_path() in ("amx", "avx512_bf16")
        return "fused" if on_cpu and native and not compiled and available() else "torch"
    if requested == "fused" and not (on_cpu and available()):
        log.warning("fused linear layers need oneDNN on the CPU; keeping torch's")
        return "torch"
    return requested


def _gelu_algorithm(act) -> str | None:
    """oneDNN's name for ``act``'s GELU ("none": exact erf, "tanh"), None if not a GELU."""
    import torch
    from transformers.activations import GELUActivation

    if isinstance(act, GELUActivation) and act.act is torch.nn.functional.gelu:
        return "none"
    if isinstance(act, torch.nn.GELU):
        return act.approximate  # "none" | "tanh"
    return None


def _fused_linear_class():
    import torch

    class FusedLinear(torch.nn.Module):
        """``act(x @ weight.T + bias)`` in one oneDNN call; x: (..., in) -> (..., out)."""

        def __init__(self, linear: torch.nn.Linear, gelu: str | None = None) -> None:
            super().__init__()
            # (out, in) in oneDNN's own blocked layout (an opaque mkldnn tensor, inference
            # only): unpacked, every call would re-lay the weight out first.
            packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), PACK_ROWS)
            self.register_buffer("weight", packed)
            self.bias = linear.bias  # (out,) or None
            self.attr, self.algorithm = ("gelu", gelu) if gelu else ("none", "")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.mkldnn._linear_pointwise(
                x, self.weight, self.bias, self.attr, [], self.algorithm
            )

        def extra_repr(self) -> str:
            out_f, in_f = self.weight.shape
            return f"in={in_f}, out={out_f}, post-op={self.attr}/{self.algorithm or '-'}"

    return FusedLinear


def fuse_linears(model) -> dict[str, int]:
    """Replace ``model``'s ``nn.Linear`` layers by fused ones, in place; returns the counts.

    A linear followed by an exact or tanh GELU (:data:`ACTIVATION_PAIRS`) takes the GELU in;
    its activation becomes ``nn.Identity``. Every other linear fuses its bias only.
    Returns ``{"linear": n, "linear+gelu": m}``.
    """
    import torch

    fused = _fused_linear_class()
    counts = {"linear": 0, "linear+gelu": 0}
    for parent in list(model.modules()):
        for lin_name, act_name in ACTIVATION_PAIRS:
            lin, act = getattr(parent, lin_name, None), getattr(parent, act_name, None)
            gelu = _gelu_algorithm(act) if act is not None else None
            if isinstance(lin, torch.nn.Linear) and gelu is not None:
                setattr(parent, lin_name, fused(lin, gelu))
                setattr(parent, act_name, torch.nn.Identity())
                counts["linear+gelu"] += 1
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, fused(child))
                counts["linear"] += 1
    return counts


def use_linear(model, kernel: str) -> str:
    """Give ``model`` the linear ``kernel`` ("torch" leaves it as loaded); returns a summary."""
    if kernel != "fused":
        return "torch"
    counts = fuse_linears(model)
    return f"fused ({counts['linear+gelu']} with GELU, {counts['linear']} bias only)"
