"""Shared fixtures: tiny random BERT/DistilBERT model folders and small labelled files."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from tiny_models import build_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

ROOT = Path(__file__).resolve().parents[1]
IMDB_DIR = ROOT.parent / "shared" / "data" / "imdb"

POS_WORDS = "great wonderful excellent superb loved brilliant moving delightful".split()
NEG_WORDS = "awful terrible boring dreadful hated worst dull painful".split()
FILLER = "the movie film plot actors scenes story director and a of it was".split()


def make_reviews(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """Synthetic but learnable reviews: sentiment words mixed into filler, balanced labels."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(FILLER) for _ in range(rng.randint(8, 40))]
        for _ in range(rng.randint(2, 5)):
            words.insert(rng.randrange(len(words)), rng.choice(POS_WORDS if label else NEG_WORDS))
        rows.append((" ".join(words), label))
    return rows


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """Folder of a random 2-layer BERT (hidden 32) with the real uncased WordPiece tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"), kind="bert")


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-distilbert"), kind="distilbert")


@pytest.fixture(scope="session")
def review_files(tmp_path_factory) -> dict[str, Path]:
    """train.csv (160 rows) and test.jsonl (64 rows) of synthetic reviews."""
    import json

    import pandas as pd

    d = tmp_path_factory.mktemp("reviews")
    train = make_reviews(160, seed=1)
    test = make_reviews(64, seed=2)
    pd.DataFrame(train, columns=["text", "label"]).to_csv(d / "train.csv", index=False)
    with (d / "test.jsonl").open("w") as f:
        for text, label in test:
            f.write(json.dumps({"text": text, "label": ["neg", "pos"][label]}) + "\n")
    return {"train": d / "train.csv", "test": d / "test.jsonl"}


def imdb_available() -> bool:
    return (IMDB_DIR / "train.parquet").is_file() and (IMDB_DIR / "test.parquet").is_file()
