"""Unlabelled in-domain texts (IMDb ``unsupervised.parquet`` or any table with a text column)
and the guard that keeps IMDb test reviews out of anything a model trains on.

Used by ``pretrain`` (MLM texts) and ``distill`` (unlabelled reviews for soft labels), which read
the texts with :func:`reviewsense.data.read_texts`. Texts are compared with the test reviews
after normalisation (lower case, whitespace collapsed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from reviewsense.errors import DataError

log = logging.getLogger(__name__)

IMDB_UNSUPERVISED = "imdb-unsupervised"


def normalize_text(text: str) -> str:
    """Lower case, whitespace collapsed: how texts are compared with the test reviews."""
    return " ".join(text.lower().split())


def imdb_test_texts(data_dir: str | Path | None = None) -> set[str]:
    """Normalised texts of the IMDb test split (25,000 reviews)."""
    from reviewsense.data import load_imdb_split

    return {normalize_text(t) for t in load_imdb_split("test", data_dir).texts}


def exclude_test_texts(
    texts: list[str], rows: list[int], file: str, test_texts: set[str], drop: bool
) -> tuple[list[str], list[int], int]:
    """Refuse (or, with ``drop``, remove) texts that are also test reviews.

    Args:
        texts, rows: the texts and their 1-based row numbers in ``file``.

    Returns:
        (texts, rows, how many were dropped)
    """
    hits = [i for i, t in enumerate(texts) if normalize_text(t) in test_texts]
    if hits and not drop:
        raise DataError(
            f"{file}: {len(hits)} of {len(texts)} rows are IMDb test reviews (first: row "
            f"{rows[hits[0]]}); pre-training on them leaks the test set: remove those rows or "
            "pass --drop-test-texts"
        )
    if hits:
        bad = set(hits)
        keep = [i for i in range(len(texts)) if i not in bad]
        log.warning("%s: dropped %d texts that are IMDb test reviews", file, len(hits))
        return [texts[i] for i in keep], [rows[i] for i in keep], len(hits)
    return texts, rows, 0


def data_file(
    data: str, data_dir: str | None, asked_by: str = f"--data {IMDB_UNSUPERVISED}"
) -> Path:
    """The file behind ``data``: the IMDb unsupervised parquet or the given path.

    Args:
        asked_by: the caller's flag(s) that asked for the IMDb texts, named in the error when
            there is no IMDb folder (the default is pretrain's).
    """
    if data != IMDB_UNSUPERVISED:
        return Path(data).expanduser()
    from reviewsense.data import resolve_imdb_dir

    folder = resolve_imdb_dir(data_dir)
    if folder is None:
        raise DataError(
            f"{asked_by}: no local IMDb folder found; pass --data-dir DIR (a folder with "
            "unsupervised.parquet) or set REVIEWSENSE_IMDB_DIR"
        )
    return folder / "unsupervised.parquet"
