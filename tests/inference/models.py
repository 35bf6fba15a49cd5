"""Tiny random BERT / DistilBERT model folders (real WordPiece vocab) for inference tests.

Plain functions (no pytest) so tests in other folders can load this file too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tiny_models import build_tiny_model, minilm_path

from reviewsense import rundir
from reviewsense.settings import PROJECT_ROOT

IMDB_TEST = PROJECT_ROOT.parent / "shared" / "data" / "imdb" / "test.parquet"
LABELS = {"id2label": rundir.ID2LABEL, "label2id": rundir.LABEL2ID}


def build_tiny_bert(out: Path, max_length: int = 64, truncation: str = "head_tail") -> Path:
    """2-layer, 32-wide random BERT; head_tail keeps 16 head tokens."""
    settings = rundir.ModelSettings(max_length=max_length, truncation=truncation, head_tokens=16)
    # large random weights: outputs depend visibly on the input
    return build_tiny_model(out, settings=settings, initializer_range=0.5, seed=0)


def build_tiny_distilbert(out: Path, max_length: int = 32) -> Path:
    """2-layer, 32-wide random DistilBERT with head truncation."""
    settings = rundir.ModelSettings(max_length=max_length, truncation="head")
    return build_tiny_model(
        out, kind="distilbert", settings=settings, initializer_range=0.5, seed=1
    )


def build_minilm(out: Path, max_length: int = 128) -> Path:
    """The real all-MiniLM-L6-v2 encoder with a random 2-class head."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(minilm_path(), num_labels=2, **LABELS)
    settings = rundir.ModelSettings(
        max_length=max_length, truncation="head_tail", head_tokens=64, base_model="minilm"
    )
    from transformers import AutoTokenizer

    model.eval().save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(out)
    rundir.write_model_settings(out, settings)
    return out


def imdb_reviews(n: int) -> list[str] | None:
    """``n`` IMDb test reviews (both classes, fixed sample) or None when the data is absent."""
    if not IMDB_TEST.is_file():
        return None
    df = pd.read_parquet(IMDB_TEST)
    return df.sample(n=n, random_state=0)["text"].tolist()


def assert_same_logits(model, reference, ids, mask, atol: float = 1e-5) -> None:
    """``model`` and ``reference`` give the same logits on a padded batch (ids, mask: (B, T))."""
    import torch

    with torch.inference_mode():
        got = model(input_ids=ids, attention_mask=mask).logits
        want = reference(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(got, want, atol=atol, rtol=atol)
