"""Labels and row validation on real files in tmp_path (no mocks)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from reviewsense.config import DataConfig
from reviewsense.data import (
    Split,
    load_data,
    normalize_label,
    read_labelled_file,
)
from reviewsense.errors import DataError

from .conftest import reviews, write_csv


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
