"""Table reading (CSV/TSV/JSON/Parquet/txt, UTF-8) on real files in tmp_path."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reviewsense.data import (
    read_labelled_file,
    read_table,
    read_texts,
)
from reviewsense.errors import DataError

from .conftest import ROWS, write_csv


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


def test_blank_csv_line_is_a_row_so_later_row_numbers_stay_right(tmp_path, caplog):
    import logging

    p = tmp_path / "gap.csv"
    p.write_text("text,label\ngood,1\n\nbad,0\nmeh,maybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"gap\.csv: row 2: the row is empty \(a blank line\?\)"):
        read_labelled_file(p)
    with caplog.at_level(logging.WARNING, logger="reviewsense.data"):
        split, skipped = read_labelled_file(p, skip_invalid=True)
    assert split.ids == ["gap.csv:1", "gap.csv:3"]
    assert [s.row for s in skipped] == [2, 4]  # the blank line counted; 'maybe' on data row 4
    assert "unknown label 'maybe'" in skipped[1].reason
    # Unlabelled reads count it too; row numbers are data rows, the blank one included.
    with caplog.at_level(logging.WARNING, logger="reviewsense.data"):
        texts = read_texts(p)
    assert (texts.texts, texts.rows, texts.skipped) == (["good", "bad", "meh"], [1, 3, 4], 1)
    assert "1 row skipped (first: row 2, text is missing)" in caplog.text


def test_csv_blank_lines_around_the_data(tmp_path):
    p = tmp_path / "r.tsv"
    p.write_text("\n\r\ntext\tlabel\ngood\t1\n", encoding="utf-8")  # one final newline
    assert read_table(p).to_dict("records") == [{"text": "good", "label": "1"}]
    p.write_text("text\tlabel\r\ngood\t1\r\n\r\n\n", encoding="utf-8")  # blank lines at the end
    assert read_table(p).to_dict("records") == [{"text": "good", "label": "1"}]
    p.write_text("text\tlabel\ngood\t1\n\nfine\t0\n", encoding="utf-8")  # one in between
    assert read_table(p)["text"].isna().tolist() == [False, True, False]


def test_txt_via_read_table(tmp_path):
    p = tmp_path / "reviews.txt"
    p.write_bytes(b"first review\r\nsecond, with comma\n\nfourth\n")
    df = read_table(p)
    assert list(df.columns) == ["text"]
    assert df["text"].tolist() == ["first review", "second, with comma", "", "fourth"]


def test_missing_file_and_unsupported_extension(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_labelled_file(tmp_path / "nope.csv")
    p = tmp_path / "reviews.xlsx"
    p.write_text("x")
    with pytest.raises(DataError) as e:
        read_labelled_file(p)
    msg = str(e.value)
    assert "reviews.xlsx" in msg and ".xlsx" in msg and ".csv" in msg and ".parquet" in msg


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


def test_blank_jsonl_line_between_records_is_a_row(tmp_path):
    p = tmp_path / "r.jsonl"
    lines = ['{"text": "good", "label": 1}', "", '{"text": "bad", "label": "maybe"}']
    p.write_text("\n" + "\n".join(lines) + "\n\n", encoding="utf-8")
    assert read_table(p)["text"].isna().tolist() == [False, True, False]
    split, skipped = read_labelled_file(p, skip_invalid=True)
    assert split.ids == ["r.jsonl:1"]
    assert [s.row for s in skipped] == [2, 3]  # the blank line, then 'maybe' on row 3
    assert "empty" in skipped[0].reason
