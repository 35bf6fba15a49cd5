"""Token-level truncation shared by training and inference.

``head`` keeps the first ``max_length - 2`` content tokens. ``head_tail`` keeps the first
``head_tokens`` (128) and the last ``max_length - head_tokens - 2`` content tokens, which
Sun et al. (2019, "How to Fine-Tune BERT for Text Classification?") found best on IMDb:
reviews tend to state the verdict at the start and the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TRUNCATION_MODES = ("head", "head_tail")  # modes a model is trained with
SPECIAL_TOKENS = 2  # [CLS] ... [SEP]
DEFAULT_MAX_LENGTH = 256  # tokens, including [CLS] and [SEP]
DEFAULT_MODE = "head_tail"
DEFAULT_HEAD_TOKENS = 128  # head_tail: content tokens kept from the start
MAX_LENGTH_RANGE = (8, 8192)


@dataclass(frozen=True)
class TruncationSpec:
    """How a review is cut to the model's input: the one home of modes, defaults, validation.

    Validated on creation: a spec that exists can be used (``ValueError`` otherwise, naming the
    field and the allowed values).
    """

    max_length: int = DEFAULT_MAX_LENGTH
    mode: str = DEFAULT_MODE
    head_tokens: int = DEFAULT_HEAD_TOKENS

    def __post_init__(self) -> None:
        problem = spec_problem(self.max_length, self.mode, self.head_tokens)
        if problem is not None:
            raise ValueError(problem)


def spec_problem(max_length: int, mode: str, head_tokens: int = DEFAULT_HEAD_TOKENS) -> str | None:
    """Why these settings cannot work (one sentence naming the field), or None."""
    lo, hi = MAX_LENGTH_RANGE
    if mode not in TRUNCATION_MODES:
        return f"truncation must be one of {', '.join(TRUNCATION_MODES)}, got {mode!r}"
    if not lo <= max_length <= hi:
        return f"max_length must be at least {lo} and at most {hi} tokens, got {max_length}"
    if head_tokens < 1:
        return f"head_tokens must be >= 1, got {head_tokens}"
    if mode == "head_tail" and max_length - SPECIAL_TOKENS - head_tokens < 1:
        return (
            f"head_tail keeps {head_tokens} head tokens and needs max_length > "
            f"{head_tokens + SPECIAL_TOKENS}, got {max_length} (use --truncation head)"
        )
    return None


def validate(max_length: int, mode: str, head_tokens: int = DEFAULT_HEAD_TOKENS) -> None:
    """Raise ValueError for settings that cannot work (see :class:`TruncationSpec`)."""
    TruncationSpec(max_length, mode, head_tokens)


def truncate_ids(
    ids: Sequence[int], max_length: int, mode: str, head_tokens: int = DEFAULT_HEAD_TOKENS
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
    tokenizer,
    texts: Sequence[str],
    max_length: int,
    mode: str,
    head_tokens: int = DEFAULT_HEAD_TOKENS,
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
