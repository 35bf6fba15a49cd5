"""The dataset rule, stratified subsets and the validation/test split."""

from __future__ import annotations

import logging

import pytest

from reviewsense.config import DataConfig
from reviewsense.data import (
    DataBundle,
    load_data,
    load_eval_split,
    stratified_indices,
)
from reviewsense.errors import ConfigError, DataError

from .conftest import needs_imdb, reviews


def test_stratified_indices_balanced_deterministic_sorted():
    labels = [0] * 700 + [1] * 300
    a = stratified_indices(labels, 100, seed=7)
    assert a == stratified_indices(labels, 100, seed=7)
    assert a != stratified_indices(labels, 100, seed=8)
    assert a == sorted(a) and len(set(a)) == 100
    assert sum(labels[i] for i in a) == 30  # the pool's 30 % positives
    assert stratified_indices(labels, 5000, seed=0) == list(range(1000))
    assert stratified_indices(labels, 0, seed=0) == []
    # A small subset keeps a rare class rather than rounding it away.
    rare = [0] * 99 + [1]
    assert 99 in stratified_indices(rare, 10, seed=0)


def test_load_data_files_subsets_disjoint_and_deterministic(tmp_path, caplog):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.jsonl"
    reviews(200, pos_share=0.4).to_csv(train, index=False)
    reviews(60, prefix="held-out").to_json(test, orient="records", lines=True)
    cfg = DataConfig(
        dataset="files",
        train_file=str(train),
        test_file=str(test),
        train_size=100,
        val_size=25,
        test_size=30,
    )
    with caplog.at_level(logging.INFO, logger="reviewsense.data"):
        b = load_data(cfg, seed=3)
    assert isinstance(b, DataBundle) and b.overlap == 0
    assert (len(b.train), len(b.val), len(b.test)) == (100, 25, 30)
    assert sum(b.train.labels) == 40 and sum(b.val.labels) == 10 and sum(b.test.labels) == 15
    assert not set(b.train.ids) & set(b.val.ids)
    assert "validation 25" in caplog.text and "train 100" in caplog.text
    again = load_data(cfg, seed=3)
    assert again.train.ids == b.train.ids and again.val.ids == b.val.ids
    assert again.test.ids == b.test.ids
    other = load_data(cfg, seed=4)
    assert other.train.ids != b.train.ids
    # The training subset does not depend on val_size; a fraction is the validation share of
    # the reviews used: 0.2 with 100 training reviews is 25 (an 80/20 split).
    cfg.val_size = 0.2
    frac = load_data(cfg, seed=3)
    assert frac.train.ids == b.train.ids and len(frac.val) == 25
    # No test file: test is None; train_size=None uses everything but validation.
    cfg2 = DataConfig(dataset="files", train_file=str(train), train_size=None, val_size=0.2)
    b2 = load_data(cfg2, seed=0)
    assert b2.test is None and (len(b2.train), len(b2.val)) == (160, 40)
    # Asking for more than there is keeps the train:val ratio instead of an empty validation.
    cfg3 = DataConfig(dataset="files", train_file=str(train), train_size=400, val_size=100)
    b3 = load_data(cfg3, seed=0)
    assert (len(b3.train), len(b3.val)) == (160, 40)


def test_overlap_warning(tmp_path, caplog):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    reviews(20).to_csv(train, index=False)
    t = reviews(10, prefix="other")
    t.loc[:2, "text"] = ["review number 0", "review number 1", "review number 19"]
    t.to_csv(test, index=False)
    cfg = DataConfig(
        dataset="files", train_file=str(train), test_file=str(test), train_size=None, val_size=4
    )
    with caplog.at_level(logging.WARNING, logger="reviewsense.data"):
        b = load_data(cfg, seed=0)
    assert b.overlap == 3
    assert any("overlap: 3 review texts" in r.getMessage() for r in caplog.records)


def test_files_without_train_file_and_eval_split(tmp_path):
    with pytest.raises(ConfigError, match="--train-file"):
        load_data(DataConfig(dataset="files"), seed=0)
    with pytest.raises(DataError, match="--test-file"):
        load_eval_split(DataConfig(dataset="files", train_file="x.csv"))
    p = tmp_path / "eval.parquet"
    reviews(50).to_parquet(p)
    split, skipped = load_eval_split(DataConfig(test_file=str(p), test_size=10))
    assert len(split) == 10 and sum(split.labels) == 5 and skipped == []


# -- IMDb -------------------------------------------------------------------------------------


@needs_imdb
def test_real_imdb_default_config(caplog):
    with caplog.at_level(logging.INFO, logger="reviewsense.data"):
        b = load_data(DataConfig(), seed=42)
    assert (len(b.train), len(b.val), len(b.test)) == (2000, 1000, 25000)  # validation: 1,000
    assert b.train.label_counts() == {0: 1000, 1: 1000}
    assert b.val.label_counts() == {0: 500, 1: 500}
    assert b.test.label_counts() == {0: 12500, 1: 12500}
    assert not set(b.train.ids) & set(b.val.ids)
    assert all(i.startswith("train-") for i in b.train.ids + b.val.ids)
    assert b.skipped == []
    # 26 distinct review texts of the 3,000 drawn for train/val also appear verbatim in the
    # 25,000-review test set (IMDb's own duplicates); fixed by the data and seed 42.
    assert b.overlap == 26
    assert "IMDb train" in caplog.text
    again = load_data(DataConfig(test_size=1000), seed=42)
    assert again.train.ids == b.train.ids and len(again.test) == 1000
    assert again.test.label_counts() == {0: 500, 1: 500}


def test_test_subset_does_not_depend_on_training_seed(tmp_path):
    reviews(40).to_csv(tmp_path / "train.csv", index=False)
    reviews(60, prefix="test").to_csv(tmp_path / "test.csv", index=False)
    cfg = DataConfig(
        train_file=str(tmp_path / "train.csv"),
        test_file=str(tmp_path / "test.csv"),
        train_size=20,
        val_size=10,
        test_size=12,
    )
    a, b = load_data(cfg, seed=1), load_data(cfg, seed=2)
    assert a.train.ids != b.train.ids  # the training seed still draws the training subset
    assert a.test.ids == b.test.ids == load_eval_split(cfg)[0].ids
    other = load_data(DataConfig(**{**cfg.__dict__, "split_seed": 5}), seed=1)
    assert other.test.ids != a.test.ids  # ...and the data seed draws the test subset


@pytest.mark.parametrize(
    ("val_size", "train_n", "expected"),
    [
        (40, None, 40),  # a count is a count
        (40, 100, 40),
        (0.2, None, 40),  # 20% of the 200-review pool, when every review is used
        (0.2, 100, 25),  # 25 / (100 + 25) = 20%: the same share with a train_size
        (0.5, 30, 30),
        (0.001, 10, 1),  # at least one
    ],
)
def test_validation_fraction_is_one_share_of_the_reviews_used(val_size, train_n, expected):
    from reviewsense.data.splits import validation_count

    n = validation_count(val_size, 200, train_n)
    assert n == expected
    used = (200 - n if train_n is None else train_n) + n
    if val_size < 1 and n > 1:
        assert n / used == pytest.approx(val_size, abs=0.01)


def test_no_eval_split_message_names_real_flags():
    with pytest.raises(DataError) as e:
        load_eval_split(DataConfig(dataset="files", train_file="x.csv"))
    msg = str(e.value)
    assert "--dataset" not in msg and "\n" not in msg
    assert "--test-file" in msg and "--data-dir" in msg and "dataset 'files'" in msg


def test_eval_reads_an_aclimdb_folder_with_only_test(tmp_path):
    from reviewsense.data import resolve_dataset

    for label in ("pos", "neg"):
        (tmp_path / "aclImdb" / "test" / label).mkdir(parents=True)
        (tmp_path / "aclImdb" / "test" / label / "0_8.txt").write_text(f"a {label} review")
    cfg = DataConfig(data_dir=str(tmp_path))
    assert resolve_dataset(cfg, for_eval=True) == "aclimdb"
    assert resolve_dataset(cfg) == "imdb"  # training needs train/: not this layout
    split, _ = load_eval_split(cfg)
    assert sorted(split.labels) == [0, 1] and "aclImdb test" in split.source


def test_resolve_dataset_is_the_one_rule(tmp_path):
    from reviewsense.data import resolve_dataset

    assert resolve_dataset(DataConfig()) == "imdb"
    assert resolve_dataset(DataConfig(train_file="a.csv")) == "files"
    assert resolve_dataset(DataConfig(test_file="b.csv")) == "imdb"
    assert resolve_dataset(DataConfig(test_file="b.csv"), for_eval=True) == "files"
    (tmp_path / "train" / "pos").mkdir(parents=True)
    assert resolve_dataset(DataConfig(data_dir=str(tmp_path))) == "aclimdb"
    assert resolve_dataset(DataConfig(data_dir=str(tmp_path), dataset="files")) == "files"
