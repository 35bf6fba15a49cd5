"""Tokenize splits once, cache the token ids on disk, and build Trainer datasets.

The cache key covers the tokenizer's vocabulary, the truncation settings and the exact texts, so
a sweep's runs (and re-runs) tokenize the same 25,000 test reviews once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reviewsense.truncation import DEFAULT_HEAD_TOKENS, encode_texts

log = logging.getLogger(__name__)

CHUNK = 2000  # texts per tokenizer call: bounded memory, a visible progress bar


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reviewsense" / "tokens"


def _key(tokenizer, texts: Sequence[str], max_length: int, mode: str, head_tokens: int) -> str:
    h = hashlib.sha256()
    vocab = tokenizer.get_vocab()
    h.update(
        json.dumps([type(tokenizer).__name__, len(vocab), max_length, mode, head_tokens]).encode()
    )
    # the vocabulary (sorted) identifies the tokenizer regardless of where it was loaded from
    h.update(hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).digest())
    h.update(str(getattr(tokenizer, "do_lower_case", "")).encode())
    for t in texts:
        h.update(hashlib.sha1(t.encode("utf-8", "surrogatepass")).digest())
    return h.hexdigest()[:32]


def tokenize_cached(
    tokenizer,
    texts: Sequence[str],
    max_length: int,
    mode: str,
    head_tokens: int = DEFAULT_HEAD_TOKENS,
    desc: str = "tokenizing",
    use_cache: bool = True,
) -> dict[str, list]:
    """``truncation.encode_texts`` with an on-disk cache (``~/.cache/reviewsense/tokens``).

    Returns:
        {"input_ids": list[list[int]], "truncated": list[bool], "n_tokens": list[int]}
    """
    key = _key(tokenizer, texts, max_length, mode, head_tokens)
    path = cache_dir() / f"{key}.npz"
    if use_cache and path.is_file():
        try:
            z = np.load(path)
            offsets = z["offsets"]
            flat = z["ids"].tolist()
            ids = [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
            log.info("%s: %d texts from cache %s", desc, len(ids), path.name)
            return {
                "input_ids": ids,
                "truncated": z["truncated"].astype(bool).tolist(),
                "n_tokens": z["n_tokens"].tolist(),
            }
        except (OSError, ValueError, KeyError) as e:
            log.warning("ignoring unreadable token cache %s: %s", path, e)

    from tqdm.auto import tqdm

    out: dict[str, list] = {"input_ids": [], "truncated": [], "n_tokens": []}
    with tqdm(total=len(texts), desc=desc, unit="review", disable=len(texts) < CHUNK) as bar:
        for start in range(0, len(texts), CHUNK):
            part = encode_texts(
                tokenizer, texts[start : start + CHUNK], max_length, mode, head_tokens
            )
            for k in out:
                out[k].extend(part[k])
            bar.update(len(part["input_ids"]))
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lengths = np.fromiter((len(x) for x in out["input_ids"]), dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            flat = np.fromiter((t for x in out["input_ids"] for t in x), dtype=np.int32)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(
                tmp,
                ids=flat,
                offsets=offsets,
                truncated=np.asarray(out["truncated"], dtype=np.int8),
                n_tokens=np.asarray(out["n_tokens"], dtype=np.int64),
            )
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file
        except OSError as e:
            log.warning("could not write token cache %s: %s", path, e)
    return out


def length_order(encoded: dict[str, list]) -> list[int]:
    """Row indices shortest first (stable): the row order of ``build_dataset(sort_by_length=True)``."""
    lengths = [len(x) for x in encoded["input_ids"]]
    return sorted(range(len(lengths)), key=lambda i: lengths[i])


def build_dataset(encoded: dict[str, list], labels: Sequence[int], sort_by_length: bool = False):
    """A ``datasets.Dataset`` with input_ids, labels and length (tokens per row).

    ``sort_by_length`` orders rows by length for evaluation: batches of similar length waste
    little padding. Each row keeps its label, so metrics need no mapping back.
    """
    from datasets import Dataset

    n = len(labels)
    lengths = [len(x) for x in encoded["input_ids"]]
    order = length_order(encoded) if sort_by_length else list(range(n))
    return Dataset.from_dict(
        {
            "input_ids": [encoded["input_ids"][i] for i in order],
            "labels": [int(labels[i]) for i in order],
            "length": [lengths[i] for i in order],
        }
    )
