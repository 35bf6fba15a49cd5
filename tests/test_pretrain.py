"""In-domain MLM pre-training: real tokenizer, real Trainer, real IMDb texts (tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import IMDB_DIR, imdb_available, make_reviews
from tiny_models import build_tiny_model, tiny_config

from reviewsense import rundir
from reviewsense.errors import ConfigError, DataError
from reviewsense.pretrain import (
    PRETRAIN_JSON,
    PretrainConfig,
    prepare_texts,
    run_pretraining,
    windows,
)

needs_imdb = pytest.mark.skipif(not imdb_available(), reason="IMDb parquet files not present")


def test_windows_keep_every_token_and_drop_a_short_tail():
    ids = list(range(100))
    assert windows(ids, 40) == [ids[:40], ids[40:80]]  # tail of 20 < 32 tokens dropped
    assert windows(ids[:10], 40) == [ids[:10]]  # a short text is kept whole
    assert sum(map(len, windows(list(range(120)), 40))) == 120


@pytest.mark.parametrize(
    ("key", "value"),
    [("train_size", 1), ("epochs", 0), ("max_length", 4), ("lr", 0), ("precision", "fp8")],
)
def test_config_validation_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        PretrainConfig(**{key: value}).validate()


def test_max_length_follows_the_one_range_rule():
    PretrainConfig(max_length=1024).validate()  # long-context models: the model decides
    with pytest.raises(ConfigError, match="'max_length': 9000 .*at most 8192 tokens"):
        PretrainConfig(max_length=9000).validate()


def test_max_length_beyond_the_models_positions_fails_before_reading_texts(tmp_path):
    model = build_tiny_model(tmp_path / "short-model", max_position_embeddings=32)
    cfg = PretrainConfig(model=str(model), data=str(tmp_path / "never-read.csv"), max_length=64)
    with pytest.raises(ConfigError, match=r"'max_length': 64 — the model .* at most 32 tokens"):
        run_pretraining(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@needs_imdb
def test_skipped_rows_are_counted_for_pretrain_json(tmp_path):
    texts = [t for t, _ in make_reviews(6)]
    texts[2], texts[4] = "  ", None
    path = tmp_path / "texts.csv"
    pd.DataFrame({"id": range(6), "text": texts}).to_csv(path, index=False)
    kept, facts = prepare_texts(PretrainConfig(data=str(path)))
    assert len(kept) == 4 and facts["skipped_rows"] == 2 and facts["texts"] == 4


@needs_imdb
def test_refuses_texts_that_are_test_reviews(tmp_path):
    test = pd.read_parquet(IMDB_DIR / "test.parquet")
    rows = [t for t, _ in make_reviews(5)] + [test.text[3].upper(), test.text[10]]
    path = tmp_path / "texts.csv"
    pd.DataFrame({"text": rows}).to_csv(path, index=False)
    cfg = PretrainConfig(model="minilm", data=str(path))
    with pytest.raises(DataError, match=r"texts\.csv: 2 of 7 rows are IMDb test reviews"):
        run_pretraining(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    cfg.drop_test_texts = True
    texts, facts = prepare_texts(cfg)
    assert len(texts) == 5 and facts["test_texts_dropped"] == 2


@needs_imdb
def test_pretraining_lowers_held_out_loss_and_train_accepts_it(tiny_bert, review_files, tmp_path):
    from reviewsense.train import run_training

    out = tmp_path / "pretrained"
    cfg = PretrainConfig(
        model=str(tiny_bert),
        train_size=200,
        max_steps=30,
        eval_steps=15,
        max_length=64,
        lr=5e-3,
        precision="fp32",
        logging_steps=10,
    )
    report = run_pretraining(cfg, out)
    evals = report["evaluations"]
    assert [e["step"] for e in evals] == [0, 15, 30]
    assert report["final"]["loss"] < evals[0]["loss"] - 0.2, evals
    assert report["mlm_head_initialised"]  # the tiny classifier has no MLM head
    saved = json.loads((out / PRETRAIN_JSON).read_text())
    assert saved["data"]["held_out_texts"] == 2 and saved["data"]["train_texts"] == 198
    assert not (out / rundir.CHECKPOINTS_DIR).exists()
    assert (out / "tokenizer.json").is_file()

    run = tiny_config(out, review_files, max_steps=3)
    metrics = run_training(run, output_dir=tmp_path / "run").metrics
    assert metrics["train"]["steps"] == 3 and metrics["test"]["n"] == 64


@needs_imdb
def test_resume_continues_from_the_last_checkpoint(tiny_bert, tmp_path):
    out = tmp_path / "pretrained"
    common = dict(model=str(tiny_bert), train_size=200, max_length=64, precision="fp32")
    first = PretrainConfig(**common, max_steps=10, eval_steps=5, keep_checkpoints=True)
    run_pretraining(first, out)
    assert (out / rundir.CHECKPOINTS_DIR / "checkpoint-10").is_dir()
    with pytest.raises(Exception, match="--resume"):
        run_pretraining(first, out)
    report = run_pretraining(PretrainConfig(**common, max_steps=15, eval_steps=5), out, resume=True)
    assert report["train"]["resumed_from"].endswith("checkpoint-10")
    assert report["train"]["steps"] == 15
    # speed and loss of the 5 steps trained after the resume (trainer_utils.trained_here)
    assert report["train"]["steps_this_run"] == 5
    assert report["train"]["windows_per_s"] > 0 and report["train"]["train_loss"] > 0
    assert Path(out / "model.safetensors").is_file()


@needs_imdb
def test_head_warmup_keeps_the_encoder_frozen(tiny_bert, tmp_path):
    from safetensors.torch import load_file

    cfg = PretrainConfig(
        model=str(tiny_bert), train_size=100, max_steps=3, head_warmup_steps=3, max_length=64,
        lr=5e-3, precision="fp32", eval_steps=3,
    )  # fmt: skip
    run_pretraining(cfg, tmp_path / "out")
    before = load_file(tiny_bert / "model.safetensors")
    after = load_file(tmp_path / "out" / "model.safetensors")
    layer = "encoder.layer.0.attention.self.query.weight"
    assert torch_equal(after[layer], before[f"bert.{layer}"])
    assert torch_equal(after["pooler.dense.weight"], before["bert.pooler.dense.weight"])


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))
