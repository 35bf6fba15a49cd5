"""Data loading, validation and subsets — on real files written to tmp_path (no mocks)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewsense.config import DataConfig
from reviewsense.data import (
    DataBundle,
    Split,
    load_data,
    load_eval_split,
    load_imdb_split,
    normalize_label,
    read_aclimdb,
    read_labelled_file,
    read_table,
    resolve_imdb_dir,
    stratified_indices,
)
from reviewsense.errors import ConfigError, DataError
from reviewsense.settings import PROJECT_ROOT, get_settings

IMDB_DIR = PROJECT_ROOT.parent / "shared" / "data" / "imdb"
needs_imdb = pytest.mark.skipif(
    not (IMDB_DIR / "train.parquet").is_file(),
    reason=f"local IMDb parquet files not found at {IMDB_DIR}",
)

ROWS = [
    ("A wonderful film, moving and funny.", 1),
    ("Dull, predictable and far too long.", 0),
    ("I loved every minute of it.", 1),
    ("The worst acting I have seen in years.", 0),
]


def reviews(n: int, pos_share: float = 0.5, prefix: str = "review") -> pd.DataFrame:
    n_pos = int(round(n * pos_share))
    return pd.DataFrame(
        {
            "text": [f"{prefix} number {i}" for i in range(n)],
            "label": [1] * n_pos + [0] * (n - n_pos),
        }
    )


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


# -- formats ----------------------------------------------------------------------------------
def test_csv(tmp_path):
    p = tmp_path / "reviews.csv"
    pd.DataFrame(ROWS, columns=["text", "label"]).to_csv(p, index=False)
    split, skipped = read_labelled_file(p)
    assert split.texts == [t for t, _ in ROWS]
    assert split.labels == [y for _, y in ROWS]
    assert split.ids == ["reviews.csv:1", "reviews.csv:2", "reviews.csv:3", "reviews.csv:4"]
    assert str(p) in split.source and skipped == [] and len(split) == 4


def test_csv_quoted_multiline_and_na_text(tmp_path):
    p = tmp_path / "r.csv"
    p.write_bytes(b"\xef\xbb\xbf")  # a UTF-8 BOM (Excel) must not end up in the header
    with p.open("a", encoding="utf-8") as f:
        f.write('text,label\n"line one\nline two, with comma",pos\nNA,neg\n')
    split, _ = read_labelled_file(p)
    # "NA" is a (short) review, not a null: only empty cells count as missing.
    assert split.texts == ["line one\nline two, with comma", "NA"]
    assert split.labels == [1, 0]


def test_tsv_custom_columns(tmp_path):
    p = write_csv(tmp_path / "r.tsv", "review\tsentiment", ["great\tpositive", "awful\tNegative"])
    split, _ = read_labelled_file(p, text_column="review", label_column="sentiment")
    assert split.labels == [1, 0]


def test_jsonl_and_json_variants(tmp_path):
    records = [{"text": t, "label": y} for t, y in ROWS]
    jl = tmp_path / "r.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps(records), encoding="utf-8")
    cols = tmp_path / "cols.json"
    cols.write_text(json.dumps({"text": [t for t, _ in ROWS], "label": [y for _, y in ROWS]}))
    lines_json = tmp_path / "lines.json"
    lines_json.write_text(jl.read_text(encoding="utf-8"), encoding="utf-8")
    for p in (jl, arr, cols, lines_json):
        split, _ = read_labelled_file(p)
        assert split.texts == [t for t, _ in ROWS], p
        assert split.labels == [y for _, y in ROWS], p
    assert read_labelled_file(jl)[0].ids[0] == "r.jsonl:1"


def test_parquet_with_bool_and_float_labels(tmp_path):
    p = tmp_path / "r.parquet"
    pd.DataFrame({"text": ["good", "bad", "fine"], "label": [True, False, True]}).to_parquet(p)
    assert read_labelled_file(p)[0].labels == [1, 0, 1]
    pd.DataFrame({"text": ["good", "bad"], "label": [1.0, 0.0]}).to_parquet(p)
    assert read_labelled_file(p)[0].labels == [1, 0]


def test_string_labels(tmp_path):
    values = ["pos", "NEG", " Positive ", "negative", "1", "0", "1.0"]
    p = tmp_path / "r.csv"
    pd.DataFrame({"text": [f"t{i}" for i in range(len(values))], "label": values}).to_csv(
        p, index=False
    )
    assert read_labelled_file(p)[0].labels == [1, 0, 1, 0, 1, 0, 1]


def test_normalize_label():
    for v in (1, 1.0, True, np.int64(1), np.float32(1.0), "1", "pos", " POSITIVE "):
        assert normalize_label(v) == 1, v
    for v in (0, 0.0, False, np.int8(0), "0", "neg", "Negative"):
        assert normalize_label(v) == 0, v
    for v in (None, float("nan"), 2, -1, 0.5, "maybe", "", [1], b"1"):
        assert normalize_label(v) is None, v


def test_txt_via_read_table(tmp_path):
    p = tmp_path / "reviews.txt"
    p.write_bytes(b"first review\r\nsecond, with comma\n\nfourth\n")
    df = read_table(p)
    assert list(df.columns) == ["text"]
    assert df["text"].tolist() == ["first review", "second, with comma", "", "fourth"]


def test_aclimdb_tree(tmp_path):
    root = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for sub, word in (("pos", "great"), ("neg", "awful")):
            d = root / split / sub
            d.mkdir(parents=True)
            for i in (10, 2, 1):
                (d / f"{i}_{8 if sub == 'pos' else 2}.txt").write_text(
                    f"{word} movie {split} {i}", encoding="utf-8"
                )
    split, skipped = read_aclimdb(root, "train")
    assert split.ids[:3] == ["train/neg/1_2.txt", "train/neg/2_2.txt", "train/neg/10_2.txt"]
    assert split.labels == [0, 0, 0, 1, 1, 1]
    assert split.texts[3] == "great movie train 1" and skipped == []
    # The parent of aclImdb/ (as unpacked from the tarball) works too.
    assert read_aclimdb(tmp_path, "test")[0].ids[-1] == "test/pos/10_8.txt"

    cfg = DataConfig(dataset="aclimdb", data_dir=str(root), train_size=4, val_size=2)
    bundle = load_data(cfg, seed=0)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (4, 2, 6)

    (root / "train" / "pos" / "3_9.txt").write_bytes(b"caf\xe9 review")
    (root / "train" / "neg" / "4_1.txt").write_text("   \n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_aclimdb(root, "train")
    assert "4_1.txt" in str(e.value) and "empty" in str(e.value)
    (root / "train" / "neg" / "4_1.txt").unlink()
    with pytest.raises(DataError) as e:
        read_aclimdb(root, "train")
    assert "3_9.txt" in str(e.value) and "UTF-8" in str(e.value) and "offset 3" in str(e.value)
    split, skipped = read_aclimdb(root, "train", skip_invalid=True)
    assert len(split) == 6 and [s.row for s in skipped] == ["train/pos/3_9.txt"]

    with pytest.raises(DataError, match=r"none: aclImdb folder not found"):
        read_aclimdb(tmp_path / "none", "train")
    with pytest.raises(ConfigError, match="--data-dir"):
        load_data(DataConfig(dataset="aclimdb"), seed=0)
    with pytest.raises(DataError, match=r"missing: neg/"):
        (tmp_path / "x" / "train" / "pos").mkdir(parents=True)
        read_aclimdb(tmp_path / "x", "train")


# -- bad input --------------------------------------------------------------------------------
def test_missing_file_and_unsupported_extension(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_labelled_file(tmp_path / "nope.csv")
    p = tmp_path / "reviews.xlsx"
    p.write_text("x")
    with pytest.raises(DataError) as e:
        read_labelled_file(p)
    msg = str(e.value)
    assert "reviews.xlsx" in msg and ".xlsx" in msg and ".csv" in msg and ".parquet" in msg


def test_missing_column_lists_found_columns(tmp_path):
    p = write_csv(tmp_path / "r.csv", "review,sentiment", ["great,1"])
    with pytest.raises(DataError) as e:
        read_labelled_file(p)
    msg = str(e.value)
    assert "r.csv" in msg and "'text'" in msg and "'label'" in msg
    assert "columns found: review, sentiment" in msg


@pytest.mark.parametrize(
    ("lines", "row", "needle"),
    [
        (["good,1", "   ,0"], 2, "empty or whitespace only: '   '"),
        (["good,1", ",0"], 2, "text is missing (null)"),
        (["good,1", "bad,"], 2, "label is missing (null)"),
        (["good,1", "bad,0", "meh,maybe"], 3, "unknown label 'maybe'"),
        (["good,2"], 1, "unknown label '2'"),
    ],
)
def test_bad_rows_name_file_row_and_value(tmp_path, lines, row, needle):
    p = write_csv(tmp_path / "bad.csv", "text,label", lines)
    with pytest.raises(DataError) as e:
        read_labelled_file(p)
    msg = str(e.value)
    assert str(p) in msg and f"row {row}:" in msg and needle in msg


def test_bad_rows_in_jsonl_and_parquet(tmp_path):
    p = tmp_path / "bad.jsonl"
    rows = [{"text": "ok", "label": 1}, {"text": 42, "label": 0}, {"text": "x", "label": -1}]
    p.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl: row 2: text .* is not a string: 42"):
        read_labelled_file(p)
    p.write_text('{"text": 1, "label": 1}\n{"text": "ok", "label": [1]}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"row 1: text .* is not a string: 1 "):
        read_labelled_file(p)
    assert [s.row for s in read_labelled_file(p, skip_invalid=True)[1]] == [1, 2]
    p.write_text('{"text": 1, "label": 1}\n{"text": 2, "label": 0}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"row 1: text .* is not a string: 1 \(1 more"):
        read_labelled_file(p)
    q = tmp_path / "bad.parquet"
    pd.DataFrame({"text": ["ok", "fine"], "label": [1, 7]}).to_parquet(q)
    with pytest.raises(DataError, match=r"bad\.parquet: row 2: unknown label 7"):
        read_labelled_file(q)


def test_invalid_utf8_names_file_row_and_offset(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes(b"text,label\ngood,1\ncaf\xe9 au lait,0\nfine,1\n")
    with pytest.raises(DataError) as e:
        read_labelled_file(p)
    msg = str(e.value)
    assert "latin1.csv" in msg and "row 2:" in msg and "not valid UTF-8" in msg
    assert "offset 21" in msg and "line 3" in msg
    # read_table (used by predict) refuses the whole file with the offset and line.
    with pytest.raises(DataError, match=r"latin1\.csv: line 3: bytes b'\\xe9' at byte offset 21"):
        read_table(p)
    split, skipped = read_labelled_file(p, skip_invalid=True)
    assert split.texts == ["good", "fine"] and [s.row for s in skipped] == [2]


def test_unparseable_files(tmp_path):
    p = tmp_path / "broken.csv"
    p.write_text('text,label\n"never closed,1\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.csv: not a parseable CSV file"):
        read_labelled_file(p)
    p2 = write_csv(tmp_path / "extra.csv", "text,label", ["a,1", "b,0,surplus"])
    with pytest.raises(DataError, match=r"extra\.csv: not a parseable CSV file .*line 3"):
        read_labelled_file(p2)
    j = tmp_path / "broken.jsonl"
    j.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.jsonl: line 2: not valid JSON"):
        read_labelled_file(j)
    j2 = tmp_path / "list.jsonl"
    j2.write_text('{"text": "a", "label": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"list\.jsonl: line 2: expected a JSON object"):
        read_labelled_file(j2)
    pq = tmp_path / "fake.parquet"
    pq.write_text("not parquet at all")
    with pytest.raises(DataError, match=r"fake\.parquet: not a readable Parquet file"):
        read_labelled_file(pq)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        read_labelled_file(empty)
    header_only = write_csv(tmp_path / "header.csv", "text,label", [])
    with pytest.raises(DataError, match=r"header\.csv: no data rows"):
        read_labelled_file(header_only)


def test_single_class_training_data(tmp_path):
    p = tmp_path / "allpos.csv"
    reviews(10, pos_share=1.0).to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        load_data(DataConfig(dataset="files", train_file=str(p)), seed=0)
    msg = str(e.value)
    assert "allpos.csv" in msg and "single class" in msg and "positive" in msg


def test_skip_invalid_counts_and_logs(tmp_path, caplog):
    p = write_csv(
        tmp_path / "mixed.csv",
        "text,label",
        ["good,1", "  ,0", "bad,0", "meh,maybe", ",1", "great,pos", "awful,neg", "ok,"],
    )
    with pytest.raises(DataError, match=r"row 2: .*\(3 more invalid rows; --skip-invalid"):
        read_labelled_file(p)
    with caplog.at_level(logging.WARNING, logger="reviewsense.data"):
        split, skipped = read_labelled_file(p, skip_invalid=True)
    assert split.texts == ["good", "bad", "great", "awful"]
    assert split.ids == ["mixed.csv:1", "mixed.csv:3", "mixed.csv:6", "mixed.csv:7"]
    assert [s.row for s in skipped] == [2, 4, 5, 8]
    assert "'maybe'" in skipped[1].reason and all(s.file == str(p) for s in skipped)
    logged = caplog.text
    assert "row 4" in logged and "unknown label 'maybe'" in logged

    # Through load_data: skipped rows from train and test files are all counted.
    big = tmp_path / "big.csv"
    df = reviews(40).astype(str)
    df.loc[5, "label"] = "unknown"
    df.to_csv(big, index=False)
    cfg = DataConfig(
        dataset="files",
        train_file=str(big),
        test_file=str(p),
        train_size=20,
        val_size=5,
        skip_invalid=True,
    )
    bundle = load_data(cfg, seed=1)
    assert len(bundle.skipped) == 5 and len(bundle.test) == 4
    assert len(bundle.train) == 20 and len(bundle.val) == 5


# -- subsets ----------------------------------------------------------------------------------
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
    # The training subset does not depend on val_size; a fraction is of train_size.
    cfg.val_size = 0.1
    frac = load_data(cfg, seed=3)
    assert frac.train.ids == b.train.ids and len(frac.val) == 10
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


def test_split_subset():
    s = Split(["a", "b", "c"], [0, 1, 0], ["x:1", "x:2", "x:3"], "test")
    sub = s.subset(np.array([2, 0]))
    assert (sub.texts, sub.labels, sub.ids, sub.source) == (
        ["c", "a"],
        [0, 0],
        ["x:3", "x:1"],
        "test",
    )
    assert len(sub) == 2 and s.label_counts() == {0: 2, 1: 1}


def test_files_without_train_file_and_eval_split(tmp_path):
    with pytest.raises(ConfigError, match="--train-file"):
        load_data(DataConfig(dataset="files"), seed=0)
    with pytest.raises(DataError, match="--test-file"):
        load_eval_split(DataConfig(dataset="files", train_file="x.csv"), seed=0)
    p = tmp_path / "eval.parquet"
    reviews(50).to_parquet(p)
    split, skipped = load_eval_split(DataConfig(test_file=str(p), test_size=10), seed=0)
    assert len(split) == 10 and sum(split.labels) == 5 and skipped == []


# -- IMDb -------------------------------------------------------------------------------------
def test_resolve_imdb_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEWSENSE_IMDB_DIR", str(tmp_path / "from-env"))
    get_settings.cache_clear()
    try:
        assert resolve_imdb_dir(tmp_path / "arg") == tmp_path / "arg"
        assert resolve_imdb_dir() == tmp_path / "from-env"
        monkeypatch.delenv("REVIEWSENSE_IMDB_DIR")
        get_settings.cache_clear()
        expected = IMDB_DIR if (IMDB_DIR / "train.parquet").is_file() else None
        assert resolve_imdb_dir() == expected
    finally:
        get_settings.cache_clear()


def test_imdb_dir_errors(tmp_path):
    with pytest.raises(DataError, match=r"train\.parquet: file not found"):
        load_imdb_split("train", tmp_path)
    (tmp_path / "train" / "pos").mkdir(parents=True)
    with pytest.raises(DataError, match="--dataset aclimdb"):
        load_imdb_split("train", tmp_path)
    with pytest.raises(DataError, match="'unsupervised' has no labels"):
        load_imdb_split("unsupervised", tmp_path)


def test_imdb_local_parquet_in_tmp(tmp_path):
    df = reviews(30)
    df.to_parquet(tmp_path / "train.parquet")
    df.assign(text="test " + df["text"]).to_parquet(tmp_path / "test.parquet")
    s = load_imdb_split("test", tmp_path)
    assert s.ids[:2] == ["test-00000", "test-00001"] and "test.parquet" in s.source
    bad = df.copy()
    bad.loc[17, "label"] = -1  # an unsupervised-style row has no usable label
    bad.to_parquet(tmp_path / "train.parquet")
    with pytest.raises(DataError, match=r"train\.parquet: row train-00017: unknown label -1"):
        load_imdb_split("train", tmp_path)
    b = load_data(
        DataConfig(data_dir=str(tmp_path), train_size=10, val_size=5, skip_invalid=True), seed=0
    )
    assert [s.row for s in b.skipped] == ["train-00017"] and len(b.test) == 30


def test_hub_fallback_offline_is_one_clear_sentence(tmp_path):
    # A real subprocess with the Hub forced offline and no local copy anywhere.
    code = (
        "import sys, pathlib, reviewsense.data as d\n"
        "d.PROJECT_ROOT = pathlib.Path(sys.argv[1])\n"
        "try:\n"
        "    d.load_imdb_split('test')\n"
        "except d.DataError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVIEWSENSE_")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "project")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 3, r.stderr
    msg = r.stdout.strip()
    assert "\n" not in msg and "--data-dir" in msg and "REVIEWSENSE_IMDB_DIR" in msg


@needs_imdb
def test_real_imdb_default_config(caplog):
    start = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="reviewsense.data"):
        b = load_data(DataConfig(), seed=42)
    elapsed = time.perf_counter() - start
    assert (len(b.train), len(b.val), len(b.test)) == (2000, 500, 25000)
    assert b.train.label_counts() == {0: 1000, 1: 1000}
    assert b.val.label_counts() == {0: 250, 1: 250}
    assert b.test.label_counts() == {0: 12500, 1: 12500}
    assert not set(b.train.ids) & set(b.val.ids)
    assert all(i.startswith("train-") for i in b.train.ids + b.val.ids)
    assert b.skipped == [] and b.overlap >= 0
    assert "IMDb train" in caplog.text
    assert elapsed < 5, f"load_data took {elapsed:.2f} s"  # ~0.3-0.6 s; generous for CI noise
    again = load_data(DataConfig(test_size=1000), seed=42)
    assert again.train.ids == b.train.ids and len(again.test) == 1000
    assert again.test.label_counts() == {0: 500, 1: 500}
