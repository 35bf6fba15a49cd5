"""Prediction input/output files: every format, every row kept, bad rows marked."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reviewsense.errors import ConfigError, DataError
from reviewsense.inference.io import add_predictions, read_input, write_output
from reviewsense.inference.predictor import Prediction

P = Prediction(label="positive", score=0.9, prob_negative=0.1, prob_positive=0.9, truncated=False)


def test_txt_keeps_blank_and_invalid_utf8_lines(tmp_path):
    path = tmp_path / "r.txt"
    path.write_bytes(b"great film\r\n\n   \nbad \xff\xfe bytes\nlast line")
    t = read_input(path)
    assert t.frame["text"].tolist()[0] == "great film"
    assert t.status == ["ok", "empty text", "empty text", "invalid utf-8", "ok"]
    assert t.texts[3] is None and t.n_ok == 2
    out = add_predictions(t, {0: P, 4: P})
    assert len(out) == 5
    assert "\ufffd" in out["text"][3]  # bad bytes written as U+FFFD
    assert out["label"].tolist()[0::4] == ["positive", "positive"]
    assert out["label"].isna().tolist() == [False, True, True, True, False]


def test_txt_refuses_a_text_column_instead_of_ignoring_it(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("great film\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"r\.txt: --text-column body does not apply to a \.txt"):
        read_input(path, "body")
    assert read_input(path, "text").texts == read_input(path).texts == ["great film"]


def test_csv_null_and_literal_na(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('id,review\n1,good\n2,\n3,NA\n4,"two\nlines"\n', encoding="utf-8")
    t = read_input(path)
    assert t.text_column == "review"
    assert t.status == ["ok", "missing text", "ok", "ok"]
    assert t.texts[2] == "NA" and t.texts[3] == "two\nlines"


def test_csv_invalid_utf8_row_is_kept(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"text\nfine\nbro\xe9ken\n")
    assert read_input(path).status == ["ok", "invalid utf-8"]


def test_jsonl_bad_lines_are_rows(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = ['{"text": "fine", "id": 1}', '{"text": null}', "not json", '{"text": 5}', '{"id": 2}']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    t = read_input(path)
    assert t.status == ["ok", "missing text", "invalid json", "not text", "missing text"]
    assert len(t.frame) == 5


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_round_trip_every_format(tmp_path, ext):
    src = pd.DataFrame({"id": [1, 2, 3], "text": ["good", "", "bad"], "label": [1, 0, 0]})
    path = tmp_path / f"in{ext}"
    if ext == ".parquet":
        src.to_parquet(path)
    elif ext == ".jsonl":
        src.to_json(path, orient="records", lines=True)
    else:
        src.to_csv(path, sep="\t" if ext == ".tsv" else ",", index=False)
    t = read_input(path)
    assert t.status[0] == "ok" and t.status[1] in ("empty text", "missing text")
    out_path = tmp_path / f"out{ext}"
    write_output(add_predictions(t, {0: P, 2: P}), out_path)
    if ext == ".parquet":
        back = pd.read_parquet(out_path)
    elif ext == ".jsonl":
        back = pd.DataFrame([json.loads(x) for x in out_path.read_text().splitlines()])
    else:
        back = pd.read_csv(out_path, sep="\t" if ext == ".tsv" else ",")
    assert len(back) == 3
    # The input's own "label" column is kept under another name, ours is added.
    assert {"input_label", "label", "score", "prob_negative", "prob_positive", "truncated"} <= set(
        back.columns
    )
    assert back["status"].tolist()[0] == "ok" and back["status"].tolist()[2] == "ok"
    assert back["input_label"].astype(int).tolist() == [1, 0, 0]


def test_bad_files_raise_data_error_naming_file_and_columns(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_input(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="unsupported file extension"):
        read_input(tmp_path / "x.xlsx")
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"r\.csv: no column 'body' \(columns found: a, b\)"):
        read_input(path, "body")
    path.write_text("a,b\nx,y\n", encoding="utf-8")
    with pytest.raises(DataError, match="--text-column"):
        read_input(path)
    empty = tmp_path / "e.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        read_input(empty)
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="Parquet"):
        read_input(broken)
    with pytest.raises(DataError, match="unsupported"):
        write_output(pd.DataFrame({"a": [1]}), tmp_path / "o.txt")
