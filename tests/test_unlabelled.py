"""The test-review guard and the unlabelled-text reader."""

from __future__ import annotations

import pandas as pd
import pytest

from reviewsense.errors import DataError
from reviewsense.unlabelled import exclude_test_texts, normalize_text, read_texts


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
    assert read_texts(path, "body") == (["good", "bad"], [1, 4])
    with pytest.raises(DataError, match=r"t\.csv: no column 'text' \(columns: id, body\)"):
        read_texts(path)
