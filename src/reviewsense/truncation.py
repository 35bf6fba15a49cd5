"""Token-level truncation shared by training and inference.

``head`` keeps the first ``max_length - 2`` content tokens. ``head_tail`` keeps the first
``head_tokens`` (128) and the last ``max_length - head_tokens - 2`` content tokens, which
Sun et al. (2019, "How to Fine-Tune BERT for Text Classification?") found best on IMDb:
reviews tend to state the verdict at the start and the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reviewsense.errors import ConfigError

TRUNCATION_MODES = ("head", "head_tail")  # modes a model is trained with
SPECIAL_TOKENS = 2  # [CLS] ... [SEP]
DEFAULT_MAX_LENGTH = 256  # tokens, including [CLS] and [SEP]
DEFAULT_MODE = "head_tail"
DEFAULT_HEAD_TOKENS = 128  # head_tail: content tokens kept from the start
MAX_LENGTH_RANGE = (8, 8192)  # tokens; a model's own limit is checked by check_fits_model
MAX_LENGTH_RULE = f"must be at least {MAX_LENGTH_RANGE[0]} and at most {MAX_LENGTH_RANGE[1]} tokens"
# model_type -> positions its embeddings reserve before the first token (RoBERTa-style models
# number positions from padding_idx + 1 = 2, so 514 position embeddings take 512 tokens)
_POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2}


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


def max_length_problem(max_length: int) -> str | None:
    """Why ``max_length`` is out of range (one sentence naming it), or None.

    The one range rule of every max_length (train, pretrain windows, distill); whether a given
    model takes that many tokens is :func:`check_fits_model`'s question.
    """
    lo, hi = MAX_LENGTH_RANGE
    if not lo <= max_length <= hi:
        return f"max_length {MAX_LENGTH_RULE}, got {max_length}"
    return None


def model_max_length(model_config) -> int | None:
    """The most tokens ``model_config``'s position embeddings cover; None when it has none."""
    n = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(n, int) or n < 1:
        return None
    return n - _POSITION_OFFSET.get(getattr(model_config, "model_type", ""), 0)


def check_fits_model(max_length: int, model_config, model: str) -> None:
    """Raise ConfigError when ``max_length`` exceeds what the model ``model`` can take.

    Called as soon as a command knows its model's config, before any tokenizing or training:
    a longer input would fail deep in the forward pass (position embeddings out of range).
    """
    limit = model_max_length(model_config)
    if limit is not None and max_length > limit:
        raise ConfigError(
            f"invalid value for 'max_length': {max_length} — the model {model} takes at most "
            f"{limit} tokens (max_position_embeddings); pass --max-length {limit} or less"
        )


def shortest_max_length(mode: str, head_tokens: int = DEFAULT_HEAD_TOKENS) -> int:
    """The smallest max_length ``mode`` works with: head_tail needs room for one tail token."""
    lo = MAX_LENGTH_RANGE[0]
    return max(lo, head_tokens + SPECIAL_TOKENS + 1) if mode == "head_tail" else lo


def spec_problem(max_length: int, mode: str, head_tokens: int = DEFAULT_HEAD_TOKENS) -> str | None:
    """Why these settings cannot work (one sentence naming the field), or None."""
    if mode not in TRUNCATION_MODES:
        return f"truncation must be one of {', '.join(TRUNCATION_MODES)}, got {mode!r}"
    if (problem := max_length_problem(max_length)) is not None:
        return problem
    if head_tokens < 1:
        return f"head_tokens must be >= 1, got {head_tokens}"
    if max_length < shortest_max_length(mode, head_tokens):
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
