"""Distillation: layer choice, student construction, the loss, and a real tiny distillation."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import imdb_available
from tiny_models import build_tiny_model, tiny_config

from reviewsense import rundir
from reviewsense.distill import (
    DISTILL_JSON,
    UNLABELLED,
    DistillConfig,
    build_student,
    choose_layers,
    distillation_loss,
    load_reviews,
    run_distillation,
)
from reviewsense.errors import ConfigError, DataError, ReviewsenseError

needs_imdb = pytest.mark.skipif(not imdb_available(), reason="IMDb parquet files not present")


@pytest.mark.parametrize(
    ("n", "k", "expected"),
    [
        (6, 3, [1, 3, 5]),
        (12, 6, [1, 3, 5, 7, 9, 11]),
        (6, 2, [2, 5]),
        (2, 1, [1]),
        (4, 4, [0, 1, 2, 3]),
    ],
)
def test_choose_layers_evenly_ending_with_the_top_layer(n, k, expected):
    assert choose_layers(n, k) == expected


@pytest.mark.parametrize("k", [0, 7])
def test_choose_layers_refuses_impossible_counts(k):
    with pytest.raises(ConfigError, match="the teacher has 6 layers"):
        choose_layers(6, k)


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_student_copies_the_kept_layer_embeddings_and_classifier(kind, tmp_path):
    from transformers import AutoModelForSequenceClassification

    teacher = AutoModelForSequenceClassification.from_pretrained(
        build_tiny_model(tmp_path / kind, kind=kind)
    )
    student = build_student(teacher, [1])
    t, s = teacher.state_dict(), student.state_dict()
    layer = "bert.encoder.layer." if kind == "bert" else "distilbert.transformer.layer."
    assert not any(k.startswith(f"{layer}1.") for k in s)
    for name, tensor in s.items():
        src = name.replace(f"{layer}0.", f"{layer}1.")
        assert torch.equal(tensor, t[src]), name
    assert len(s) < len(t)
    ids = torch.tensor([[101, 2307, 3185, 102]])
    assert student(input_ids=ids).logits.shape == (1, 2)


def test_loss_mixes_soft_and_hard_labels():
    import torch.nn.functional as F

    s = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    labels = torch.tensor([0, UNLABELLED, 1])
    hard = F.cross_entropy(s[[0, 2]], labels[[0, 2]])
    assert torch.isclose(distillation_loss(s, t, labels, 2.0, 1.0), hard)
    soft = distillation_loss(s, t, labels, 2.0, 0.0)
    assert soft > 0
    mixed = distillation_loss(s, t, labels, 2.0, 0.3)
    assert torch.isclose(mixed, 0.3 * hard + 0.7 * soft)
    assert distillation_loss(t, t, torch.full((3,), UNLABELLED), 3.0, 0.5) == 0


@pytest.mark.parametrize(("key", "value"), [("layers", 0), ("temperature", 0), ("alpha", 1.5)])
def test_config_validation_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        DistillConfig(teacher="x", **{key: value}).validate()


def test_max_length_follows_the_one_range_rule():
    DistillConfig(teacher="x", max_length=1024).validate()  # the teacher's limit decides
    with pytest.raises(ConfigError, match="'max_length': 9000 .*at most 8192 tokens"):
        DistillConfig(teacher="x", max_length=9000).validate()


@pytest.mark.parametrize(
    ("max_length", "expected"),
    [
        (130, r"'max_length': 130 — the teacher's truncation \(head_tail, 128 head tokens\) "
              r"needs at least 131 tokens; pass --max-length 131 or more"),
        (100, "needs at least 131"),
        (1024, r"'max_length': 1024 — the model .* at most 512 tokens"),
    ],
)  # fmt: skip
def test_max_length_is_checked_against_the_teacher_before_any_data(tmp_path, max_length, expected):
    teacher = build_tiny_model(
        tmp_path / "teacher", settings=rundir.ModelSettings(max_length=256, truncation="head_tail")
    )
    cfg = DistillConfig(
        teacher=str(teacher), layers=1, max_length=max_length, data_dir=str(tmp_path / "no-imdb")
    )
    with pytest.raises(ConfigError, match=expected):
        run_distillation(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _synthetic_imdb_folder(root):
    """An IMDb-layout folder (train/test/unsupervised.parquet, Hub schema) of synthetic reviews:
    data the tiny synthetic-trained teacher really knows, so agreement measures the transfer
    (on real IMDb that teacher is at chance, and so is any student of it)."""
    import pandas as pd
    from conftest import make_reviews

    root.mkdir()
    for name, n, seed in (("train", 400, 3), ("test", 200, 4), ("unsupervised", 300, 5)):
        rows = pd.DataFrame(make_reviews(n, seed=seed), columns=["text", "label"])
        if name == "unsupervised":
            rows["label"] = -1
        rows.to_parquet(root / f"{name}.parquet", index=False)
    return root


def test_blank_unlabelled_rows_are_counted(tmp_path):
    import pandas as pd

    imdb = _synthetic_imdb_folder(tmp_path / "imdb")
    unsup = pd.read_parquet(imdb / "unsupervised.parquet")
    unsup.loc[[5, 9, 11], "text"] = ["", "   ", None]
    unsup.to_parquet(imdb / "unsupervised.parquet", index=False)
    cfg = DistillConfig(teacher="x", train_size=20, eval_size=10, data_dir=str(imdb))
    facts = load_reviews(cfg)["facts"]
    assert facts["unlabelled_skipped_rows"] == 3 and facts["unlabelled"] == 297


def test_no_imdb_folder_names_the_distill_flag(tmp_path, monkeypatch, review_files):
    from reviewsense.data import read_labelled_file
    from reviewsense.settings import get_settings

    monkeypatch.delenv("REVIEWSENSE_IMDB_DIR", raising=False)
    monkeypatch.setattr("reviewsense.data.sources.PROJECT_ROOT", tmp_path / "project")
    get_settings.cache_clear()
    split, _ = read_labelled_file(review_files["train"])
    try:
        with pytest.raises(DataError, match=r"^--unlabeled-size 10 \(.*0: none\): no local IMDb"):
            load_reviews(DistillConfig(teacher="x", unlabeled_size=10), split, split)
    finally:
        get_settings.cache_clear()


def test_distilled_student_agrees_with_its_teacher_beyond_chance(tiny_bert, review_files, tmp_path):
    from reviewsense.inference.predictor import Predictor
    from reviewsense.train import run_training

    # teacher: the tiny BERT fine-tuned on synthetic reviews (it learns sentiment words)
    cfg = tiny_config(tiny_bert, review_files, lr=3e-3, epochs=6)
    teacher_run = tmp_path / "teacher"
    run_training(cfg, output_dir=teacher_run)

    out = tmp_path / "student"
    dcfg = DistillConfig(
        teacher=str(teacher_run),
        layers=1,
        train_size=200,
        unlabeled_size=200,
        eval_size=200,
        max_steps=60,
        lr=3e-3,
        alpha=0.2,
        precision="fp32",
        logging_steps=20,
        data_dir=str(_synthetic_imdb_folder(tmp_path / "imdb")),
    )
    report = run_distillation(dcfg, out)
    q = report["held_out"]
    assert 0 < report["held_out"]["chance_agreement"] < 1
    assert q["agreement"] > q["chance_agreement"] and q["kappa"] > 0, q
    assert report["layers_kept"] == [1] and report["teacher_layers"] == 2
    assert report["data"]["labelled"] == 200 and report["data"]["unlabelled"] == 200
    assert json.loads((out / DISTILL_JSON).read_text())["student_layers"] == 1
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 1
    settings = rundir.read_model_settings(out)
    assert (settings.max_length, settings.truncation) == (64, "head")
    assert settings.threshold is None
    assert settings.bf16_verification == {}  # fp32 run: no bf16 path to check
    preds = Predictor.from_pretrained(out).predict(["a wonderful film", "awful and boring"])
    assert len(preds) == 2


def test_interrupted_distillation_resumes_from_its_last_checkpoint(
    tiny_bert, review_files, tmp_path, monkeypatch
):
    from transformers import TrainerCallback

    import reviewsense.distill as distill_mod
    from reviewsense.train import run_training

    teacher_run = tmp_path / "teacher"
    run_training(tiny_config(tiny_bert, review_files, epochs=1), output_dir=teacher_run)
    out = tmp_path / "student"
    dcfg = DistillConfig(
        teacher=str(teacher_run),
        layers=1,
        train_size=100,
        unlabeled_size=50,
        eval_size=50,
        max_steps=6,
        save_steps=3,
        precision="fp32",
        data_dir=str(_synthetic_imdb_folder(tmp_path / "imdb")),
    )

    class Crash(TrainerCallback):  # the process dies after step 4 (a checkpoint at 3)
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 4:
                raise KeyboardInterrupt

    monkeypatch.setattr(distill_mod, "progress_callback", lambda what: Crash())
    with pytest.raises(KeyboardInterrupt):
        run_distillation(dcfg, out)
    monkeypatch.undo()
    assert (out / "checkpoints" / "checkpoint-3").is_dir()
    with pytest.raises(ReviewsenseError, match="--resume"):
        run_distillation(dcfg, out)

    report = run_distillation(dcfg, out, resume=True)
    assert report["train"]["resumed_from_step"] == 3 and report["train"]["steps"] == 6
    assert (out / DISTILL_JSON).is_file() and not (out / "checkpoints").exists()
