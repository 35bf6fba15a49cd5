"""The test-review guard, the unlabelled-text reader and the IMDb unsupervised file."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from reviewsense import data as data_pkg
from reviewsense import unlabelled
from reviewsense.data import read_texts
from reviewsense.errors import DataError
from reviewsense.unlabelled import IMDB_UNSUPERVISED, data_file, exclude_test_texts, normalize_text


def test_normalize_ignores_case_and_whitespace():
    assert normalize_text("  A  Great\tfilm.\n") == normalize_text("a great film.")


def test_exclude_test_texts_refuses_with_file_count_and_row():
    texts, rows = ["fine film", "A  Test review", "other"], [2, 5, 9]
    with pytest.raises(DataError, match=r"x\.csv: 1 of 3 rows .* \(first: row 5\).*--drop"):
        exclude_test_texts(texts, rows, "x.csv", {"a test review"}, drop=False)
    kept, kept_rows, dropped = exclude_test_texts(texts, rows, "x.csv", {"a test review"}, True)
    assert (kept, kept_rows, dropped) == (["fine film", "other"], [2, 9], 1)


def test_read_texts_skips_empty_rows_and_keeps_file_row_numbers(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"id": [1, 2, 3, 4], "body": ["good", None, "  ", "bad"]}).to_csv(
        path, index=False
    )
    assert read_texts(path, "body") == (["good", "bad"], [1, 4], 2)
    with pytest.raises(
        DataError, match=r"t\.csv: column 'text' not found \(columns found: id, body\)"
    ):
        read_texts(path)


def test_read_texts_counts_and_logs_the_skipped_rows(tmp_path, caplog):
    path = tmp_path / "t.jsonl"
    pd.DataFrame({"text": ["good", "   ", 7, None, "bad"]}).to_json(
        path, orient="records", lines=True
    )
    with caplog.at_level(logging.WARNING, logger="reviewsense.data.tables"):
        texts, rows, skipped = read_texts(path)
    assert (texts, rows, skipped) == (["good", "bad"], [1, 5], 3)
    assert "t.jsonl: 3 rows skipped (first: row 2, empty text)" in caplog.text


def test_read_texts_names_the_callers_flag_or_none(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"body": ["good"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="choose the column with --text-column$"):
        read_texts(path)
    with pytest.raises(DataError, match=r"\(columns found: body\)$"):
        read_texts(path, text_flag=None)
    pd.DataFrame({"text": ["", " "]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="holds no non-empty text"):
        read_texts(path)


def test_one_read_texts():
    assert not hasattr(unlabelled, "read_texts")
    assert data_pkg.read_texts is read_texts


@pytest.fixture
def no_local_imdb(tmp_path, monkeypatch):
    """No IMDb folder anywhere: no REVIEWSENSE_IMDB_DIR, no ../shared/data/imdb."""
    from reviewsense.settings import get_settings

    monkeypatch.delenv("REVIEWSENSE_IMDB_DIR", raising=False)
    monkeypatch.setattr("reviewsense.data.sources.PROJECT_ROOT", tmp_path / "project")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_data_file_names_the_flag_that_asked_for_imdb(tmp_path, no_local_imdb):
    with pytest.raises(DataError, match=f"^--data {IMDB_UNSUPERVISED}: no local IMDb folder"):
        data_file(IMDB_UNSUPERVISED, None)
    with pytest.raises(DataError, match="^--unlabeled-size 5: no local IMDb folder.*--data-dir"):
        data_file(IMDB_UNSUPERVISED, None, asked_by="--unlabeled-size 5")
    assert data_file(str(tmp_path / "x.csv"), None) == tmp_path / "x.csv"
