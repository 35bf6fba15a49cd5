"""Input resolution, block planning, reading row ranges and scoring one block for real."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reviewsense.errors import ConfigError, DataError
from reviewsense.inference.predictor import Predictor
from reviewsense.score import blocks

from .conftest import reviews_frame


def test_resolve_file_folder_and_glob(tmp_path, parquet_input):
    other = parquet_input.parent / "sub" / "more.parquet"
    other.parent.mkdir()
    reviews_frame(10).to_parquet(other)
    assert blocks.resolve_inputs(str(parquet_input)) == ([parquet_input], parquet_input.parent)
    files, root = blocks.resolve_inputs(str(parquet_input.parent))
    assert files == [parquet_input, other] and root == parquet_input.parent
    files, root = blocks.resolve_inputs(str(parquet_input.parent / "**" / "*.parquet"))
    assert files == [parquet_input, other] and root == parquet_input.parent


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "absent.parquet", "no such file or folder"),
        (lambda d: d / "none-*.parquet", "no files match"),
        (lambda d: d, "folder has no .parquet files"),
    ],
)
def test_resolve_errors_name_the_path(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        blocks.resolve_inputs(str(make(tmp_path)))


def test_plan_is_deterministic_and_covers_every_row(parquet_input):
    plan = blocks.plan_blocks([parquet_input], parquet_input.parent, 20)
    assert [(b.name, b.start, b.stop) for b in plan] == [
        ("part-00000-0000000000.parquet", 0, 20),
        ("part-00000-0000000020.parquet", 20, 40),
        ("part-00000-0000000040.parquet", 40, 50),
    ]
    assert plan == blocks.plan_blocks([parquet_input], parquet_input.parent, 20)
    assert {b.text_column for b in plan} == {"text"}


def test_plan_logs_that_block_rows_skips_non_parquet_files(parquet_input, caplog):
    import logging

    csv = parquet_input.parent / "more.csv"
    reviews_frame(30).to_csv(csv, index=False)
    with caplog.at_level(logging.INFO, logger="reviewsense.score.blocks"):
        plan = blocks.plan_blocks([csv, parquet_input], parquet_input.parent, 20)
    assert (plan[0].source, plan[0].start, plan[0].stop) == ("more.csv", 0, -1)
    assert [b.source for b in plan].count("more.csv") == 1  # 30 rows, still one block
    assert [b.source for b in plan].count("reviews.parquet") == 3
    (msg,) = [r.getMessage() for r in caplog.records if "non-Parquet" in r.getMessage()]
    assert msg.startswith("1 non-Parquet input file(s) (first: more.csv) scored as one block")
    assert "--block-rows 20 applies to Parquet files only" in msg
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="reviewsense.score.blocks"):
        blocks.plan_blocks([parquet_input], parquet_input.parent, 20)
    assert "non-Parquet" not in caplog.text  # nothing to say when every input is Parquet


def test_plan_rejects_missing_columns(parquet_input):
    with pytest.raises(DataError, match=r"no column 'body' \(columns found: id, text, stars\)"):
        blocks.plan_blocks([parquet_input], parquet_input.parent, 20, text_column="body")
    with pytest.raises(DataError, match="no column 'user' for --keep-columns"):
        blocks.plan_blocks([parquet_input], parquet_input.parent, 20, keep_columns=("user",))


def test_plan_refuses_a_text_column_for_txt_before_any_work(tmp_path):
    txt = tmp_path / "r.txt"
    txt.write_text("great film\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"--text-column body does not apply to a \.txt file"):
        blocks.plan_blocks([txt], tmp_path, 20, text_column="body")
    assert len(blocks.plan_blocks([txt], tmp_path, 20)) == 1


def test_read_block_crosses_row_groups(parquet_input):
    spec = blocks.plan_blocks([parquet_input], parquet_input.parent, 20)[1]  # rows 20..39
    kept, texts, errors = blocks.read_block(spec, ("id",))
    assert kept.column("id").to_pylist() == list(range(120, 140))
    assert texts == reviews_frame(50)["text"].tolist()[20:40]
    assert errors == [None] * 20


def test_score_block_keeps_every_row_and_counts_errors(score_model, parquet_input, tmp_path):
    predictor = Predictor.from_pretrained(score_model, precision="fp32", num_threads=1)
    spec = blocks.plan_blocks([parquet_input], parquet_input.parent, 20)[0]
    out = tmp_path / "out"
    out.mkdir()
    result = blocks.score_block(spec, predictor, out, ("id", "stars"))
    assert (result.rows, result.errors) == (20, {"empty text": 1, "missing text": 1})
    assert [p.name for p in out.iterdir()] == [spec.name]  # no temp file left behind
    df = pd.read_parquet(out / spec.name)
    assert list(df.columns) == ["row_id", "id", "stars", *blocks.OUTPUT_COLUMNS[1:]]
    assert df["row_id"].tolist()[:2] == ["reviews.parquet:0", "reviews.parquet:1"]
    assert df.loc[3, "error"] == "empty text" and df.loc[7, "error"] == "missing text"
    assert df.loc[[3, 7], "prob_positive"].isna().all() and df.loc[[3, 7], "label"].isna().all()
    scored = df.drop(index=[3, 7])
    assert scored["error"].isna().all()
    assert ((scored["prob_negative"] + scored["prob_positive"] - 1).abs() < 1e-6).all()
    expected = predictor.predict(reviews_frame(20)["text"].drop(index=[3, 7]).tolist())
    assert scored["label"].tolist() == [p.label for p in expected]
    assert scored["prob_positive"].tolist() == [p.prob_positive for p in expected]


def test_jsonl_block_marks_invalid_json(score_model, tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text('{"text": "loved it", "user": "a"}\nnot json\n{"text": 5, "user": "c"}\n')
    files, root = blocks.resolve_inputs(str(src))
    (spec,) = blocks.plan_blocks(files, root, 1000)
    kept, texts, errors = blocks.read_block(spec, ("user",))
    assert errors == [None, "invalid json", "not text"] and texts[0] == "loved it"
    assert kept.column("user").to_pylist() == ["a", None, "c"]
    with pytest.raises(DataError, match="no column 'stars' for --keep-columns"):
        blocks.read_block(spec, ("stars",))


def test_remove_partial_deletes_only_temp_files(tmp_path):
    (tmp_path / ".part-00000-0000000000.parquet.123.tmp").write_bytes(b"half")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "part-00000-0000000000.parquet")
    assert blocks.remove_partial(tmp_path) == 1
    assert blocks.done_blocks(tmp_path) == {"part-00000-0000000000.parquet"}


def test_relative_inputs_become_absolute(parquet_input, monkeypatch):
    monkeypatch.chdir(parquet_input.parent.parent)  # Ray workers run elsewhere: no relative paths
    files, root = blocks.resolve_inputs("in/*.parquet")
    assert files == [parquet_input] and root == parquet_input.parent
    (spec,) = blocks.plan_blocks(files, root, 100)
    assert spec.path == str(parquet_input) and spec.source == "reviews.parquet"
