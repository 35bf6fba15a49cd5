"""Packed inference: a batch's reviews as one row of real tokens, no padding anywhere.

A padded batch runs every layer on (batch x widest review) tokens. The service's
micro-batches hold ~4 random IMDb reviews; at 256 tokens one of the four almost always reaches
the cap, so ~20% of the tokens every linear layer, LayerNorm and GELU processes are padding
(``varlen`` attention already skips them in attention only). Packed, the B reviews' real
tokens are concatenated into one sequence of N = sum(lengths) tokens, each review keeps its own
positions (0..n-1) and attends only to itself (SDPA per review, as ``varlen``); the classifier
reads each review's [CLS] row. Same arithmetic per review as the padded forward, without the
padding rows.

BERT-family sequence classifiers only (``bert``/``pooler``/``classifier``: BERT, MiniLM and
the students ``distill`` makes); :func:`supports` says which models, and any other model runs
padded batches with ``varlen`` attention (``inference.attention.use_kernel``).
"""

from __future__ import annotations

from itertools import accumulate

NAME = "reviewsense_packed"  # the key under transformers' AttentionInterface
LENGTHS_KWARG = "reviewsense_lengths"  # how the review lengths reach the attention function


def supports(model) -> bool:
    """True for a BERT-style sequence classifier with absolute positions (what
    :func:`packed_logits` reads: ``bert`` with its pooler, ``dropout``, ``classifier``)."""
    base = getattr(model, "bert", None)
    return (
        base is not None
        and getattr(base, "pooler", None) is not None
        and hasattr(model, "classifier")
        and hasattr(model, "dropout")
        and getattr(model.config, "position_embedding_type", "absolute") == "absolute"
        and not model.config.is_decoder
    )


def packed_attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
    """transformers attention interface, inference only: query/key/value (1, heads, N,
    head_dim) of packed reviews; each review attends to its own tokens (SDPA per review, no
    mask). Returns (1, N, heads, head_dim), the layout attention layers expect."""
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    lengths = kwargs.get(LENGTHS_KWARG)
    if lengths is None:  # called as an ordinary attention (a padded batch): masked SDPA
        out = sdpa(query, key, value, attn_mask=attention_mask, scale=scaling)
        return out.transpose(1, 2), None
    _, heads, tokens, head_dim = query.shape
    out = query.new_empty(1, tokens, heads, head_dim)
    # accumulate(initial=0) holds one more entry (the end) than lengths: zip stops at the last
    spans = [(0, a, n) for a, n in zip(accumulate(lengths, initial=0), lengths, strict=False)]
    return sdpa_per_review(query, key, value, out, spans, scaling)


def sdpa_per_review(query, key, value, out, spans, scaling=None):
    """SDPA over each review alone, no mask: ``spans`` lists (row, first token, length) of the
    reviews in query/key/value (batch, heads, tokens, head_dim); each review's output goes to
    the same rows of ``out`` (batch, tokens, heads, head_dim). Returns (out, None), the
    attention interface's answer (``attention.varlen_attention``: a review per row; packed:
    reviews one after another in one row)."""
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    for row, start, n in spans:
        q, k, v = (x[row : row + 1, :, start : start + n] for x in (query, key, value))
        out[row, start : start + n] = sdpa(q, k, v, scale=scaling)[0].transpose(0, 1)
    return out, None


def register() -> str:
    """Make the packed kernel known to transformers; returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    AttentionInterface.register(NAME, packed_attention)
    # Additive float masks for padded batches; :func:`packed_logits` passes none, and none is
    # built (a mask over N packed tokens would be N x N: each review is bounded by its length).
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, eager_mask)
    return NAME


def packed_logits(model, input_ids, attention_mask):
    """Logits (B, labels) of a right-padded batch, computed on its real tokens only.

    Args:
        model: a sequence classifier that :func:`supports`, with the packed kernel set
            (``model.set_attn_implementation(register())``).
        input_ids, attention_mask: (B, T) tensors; every row's ones are a prefix (right
            padding), as the Predictor builds them.
    """
    import torch

    lengths = attention_mask.sum(dim=1)  # (B,)
    real = attention_mask.bool()
    flat = input_ids[real].unsqueeze(0)  # (1, N): the reviews one after another
    starts = torch.cumsum(lengths, 0) - lengths  # (B,): where each review's [CLS] is
    # Positions restart at 0 for every review: (1, N)
    positions = torch.arange(flat.shape[1], device=flat.device) - torch.repeat_interleave(
        starts, lengths
    )
    out = model.bert(
        input_ids=flat,
        position_ids=positions.unsqueeze(0),
        token_type_ids=torch.zeros_like(flat),
        **{LENGTHS_KWARG: lengths.tolist()},
    )
    cls = out.last_hidden_state[0, starts]  # (B, hidden)
    pooled = model.bert.pooler(cls.unsqueeze(1))  # the pooler reads position 0 of each row
    return model.classifier(model.dropout(pooled))  # (B, labels)


def logits_fn(model, kernel_in_effect: str):
    """``(input_ids, attention_mask) -> logits`` of ``model`` as the Predictor runs it on the
    attention kernel in effect (``attention.use_kernel``'s answer): packed, its real tokens
    only (:func:`packed_logits`); any other, the padded forward."""
    if kernel_in_effect == NAME:
        return lambda ids, mask: packed_logits(model, ids, mask)
    return lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits
