"""Shared helpers of the data tests: small review tables written to real files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reviewsense.settings import PROJECT_ROOT

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
