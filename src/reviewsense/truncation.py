"""Token-level truncation shared by training and inference.

``head`` keeps the first ``max_length - 2`` content tokens. ``head_tail`` keeps the first
``head_tokens`` (128) and the last ``max_length - head_tokens - 2`` content tokens, which
Sun et al. (2019, "How to Fine-Tune BERT for Text Classification?") found best on IMDb:
reviews tend to state the verdict at the start and the end.
"""

from __future__ import annotations

from collections.abc import Sequence

TRUNCATION_MODES = ("head", "head_tail")
SPECIAL_TOKENS = 2  # [CLS] ... [SEP]


def validate(max_length: int, mode: str, head_tokens: int = 128) -> None:
    """Raise ValueError for settings that cannot work."""
    if mode not in TRUNCATION_MODES:
        raise ValueError(f"truncation must be one of {', '.join(TRUNCATION_MODES)}, got {mode!r}")
    if max_length < 8:
        raise ValueError(f"max_length must be at least 8 tokens, got {max_length}")
    if mode == "head_tail" and max_length - SPECIAL_TOKENS - head_tokens < 1:
        raise ValueError(
            f"head_tail keeps {head_tokens} head tokens and needs max_length > "
            f"{head_tokens + SPECIAL_TOKENS}, got {max_length} (use --truncation head)"
        )


def truncate_ids(
    ids: Sequence[int], max_length: int, mode: str, head_tokens: int = 128
) -> tuple[list[int], bool]:
    """Cut content token ids (no special tokens) to fit ``max_length`` with [CLS]/[SEP].

    Returns:
        (kept ids, whether anything was cut)
    """
    budget = max_length - SPECIAL_TOKENS
    if len(ids) <= budget:
        return list(ids), False
    if mode == "head":
        return list(ids[:budget]), True
    tail = budget - head_tokens
    return list(ids[:head_tokens]) + list(ids[len(ids) - tail :]), True


def encode_texts(
    tokenizer, texts: Sequence[str], max_length: int, mode: str, head_tokens: int = 128
) -> dict[str, list]:
    """Tokenize and truncate texts into unpadded model inputs.

    Returns:
        {"input_ids": list[list[int]] (each <= max_length), "truncated": list[bool],
         "n_tokens": list[int] (content tokens before truncation)}
    """
    validate(max_length, mode, head_tokens)
    if not texts:
        return {"input_ids": [], "truncated": [], "n_tokens": []}
    # No truncation here: we need the full length to take the tail and to report truncation.
    enc = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    out_ids, truncated, n_tokens = [], [], []
    for ids in enc["input_ids"]:
        kept, cut = truncate_ids(ids, max_length, mode, head_tokens)
        out_ids.append([cls_id, *kept, sep_id])
        truncated.append(cut)
        n_tokens.append(len(ids))
    return {"input_ids": out_ids, "truncated": truncated, "n_tokens": n_tokens}
