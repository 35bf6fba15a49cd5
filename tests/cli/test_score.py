"""`reviewsense score` end to end: progress, final line, resume message, one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest
from inference.models import build_tiny_bert  # tests/ is on sys.path

from reviewsense.cli.main import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("score_cli") / "model")


@pytest.fixture
def reviews(tmp_path):
    src = tmp_path / "reviews.csv"
    pd.DataFrame({"user": ["a", "b", "c"], "text": ["loved it", "", "dull and long"]}).to_csv(
        src, index=False
    )
    return src


def test_scores_a_csv_and_prints_the_final_line(model_dir, reviews, tmp_path, capsys):
    out = tmp_path / "scores"
    argv = ["score", str(model_dir), "-i", str(reviews), "-o", str(out), "--keep-columns", "user"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "scored 3 rows in" in err and "rows/s, engine local); errors 1 (1 missing text)" in err
    df = pd.read_parquet(out)
    assert df["user"].tolist() == ["a", "b", "c"]
    assert df["error"].fillna("").tolist() == ["", "missing text", ""]
    assert df["label"].notna().tolist() == [True, False, True]

    assert main(argv) == 0  # resume: nothing left to do
    err = capsys.readouterr().err
    assert "resuming: 1 block(s) already in" in err and "scored 0 rows" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-i", "nope.parquet"], "nope.parquet: no such file or folder"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--keep-columns", "stars"], "no column 'stars' for --keep-columns"),
    ],
)
def test_user_errors_are_one_line(model_dir, reviews, tmp_path, capsys, extra, message):
    argv = ["score", str(model_dir), "-i", str(reviews), "-o", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("reviewsense score: error: ") and message in err[-1]


def test_missing_model_fails_before_scoring(reviews, tmp_path, capsys):
    argv = ["score", str(tmp_path / "no-model"), "-i", str(reviews), "-o", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_block_rows_default_and_help_come_from_score_run(monkeypatch):
    """The flag reads score.run.DEFAULT_BLOCK_ROWS (not a copy) and says when it applies."""
    from reviewsense.cli.main import build_parser
    from reviewsense.score import run as score_run

    monkeypatch.setattr(score_run, "DEFAULT_BLOCK_ROWS", 1234)
    sub = build_parser("score")._subparsers._group_actions[0].choices["score"]
    assert sub.get_default("block_rows") == 1234
    text = " ".join(sub.format_help().split())
    assert "rows per output file of a Parquet input (default 1234)" in text
    assert "CSV/TSV/JSONL/TXT file is always one block" in text


def test_block_rows_on_a_csv_says_it_does_not_apply(model_dir, reviews, tmp_path, caplog):
    import logging

    argv = ["score", str(model_dir), "-i", str(reviews), "-o", str(tmp_path / "o")]
    with caplog.at_level(logging.INFO, logger="reviewsense.score"):
        assert main([*argv, "--block-rows", "2"]) == 0
    assert "1 non-Parquet input file(s) (first: reviews.csv) scored as one block each" in (
        caplog.text
    )
    assert "--block-rows 2 applies to Parquet files only" in caplog.text
    assert len(list((tmp_path / "o").glob("part-*.parquet"))) == 1  # 3 rows, one block
