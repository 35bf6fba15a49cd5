"""A tiny random BERT model folder and a small Parquet input with bad rows, built once."""

from __future__ import annotations

import pandas as pd
import pytest
from inference.models import build_tiny_bert  # tests/ is on sys.path


@pytest.fixture(scope="session")
def score_model(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("score_model") / "model")


def reviews_frame(n: int) -> pd.DataFrame:
    """``n`` rows: id, text (rows 3 and 7 empty / missing), stars."""
    words = "great awful plot actors boring loved the film was a".split()
    texts = [" ".join(words[(i + j) % len(words)] for j in range(5 + i % 9)) for i in range(n)]
    texts[3] = "   "
    texts[7] = None
    return pd.DataFrame(
        {"id": range(100, 100 + n), "text": texts, "stars": [i % 5 for i in range(n)]}
    )


@pytest.fixture
def parquet_input(tmp_path):
    """50 rows in row groups of 16 (blocks of 20 cross group boundaries)."""
    path = tmp_path / "in" / "reviews.parquet"
    path.parent.mkdir()
    reviews_frame(50).to_parquet(path, row_group_size=16)
    return path
