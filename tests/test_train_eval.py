"""train's evaluations by the predict path: real Trainer runs on tiny models, and the real
MiniLM in bf16 on IMDb reviews."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import IMDB_DIR, imdb_available
from tiny_models import minilm_path, tiny_config

from reviewsense import rundir
from reviewsense.train import run_training
from reviewsense.train_eval import PredictorEval


def _val_texts(review_files, val_ids) -> list[str]:
    """Texts of validation rows ``train.csv:N`` (N = 1-based data row)."""
    train = pd.read_csv(review_files["train"])
    return [train["text"][int(i.split(":")[1]) - 1] for i in val_ids]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_evaluations_are_what_predict_gives_on_the_saved_folder(
    tiny_bert, review_files, tmp_path, precision
):
    from reviewsense.inference import Predictor

    run = tmp_path / "run"
    m = run_training(
        tiny_config(tiny_bert, review_files, precision=precision), output_dir=run
    ).metrics
    val = pd.read_parquet(run / rundir.VAL_PREDICTIONS)
    shipped = Predictor.from_pretrained(run / rundir.MODEL_DIR, precision=precision)
    got = [p.prob_positive for p in shipped.predict(_val_texts(review_files, val["row_id"]))]
    # the validation file is the chosen evaluation's, reused: equal to predict on the folder
    assert got == val["prob_positive"].tolist()
    log = (run / rundir.TRAIN_LOG).read_text()
    assert "scored by the predict path" in log
    assert "the chosen evaluation's scores" in log and "validation pass" not in log
    chosen = next(v for v in m["validation"] if v["step"] == m["best"]["step"])
    assert chosen["accuracy"] == pytest.approx(m["best_validation"]["accuracy"])
    assert chosen["loss"] == pytest.approx(chosen["log_loss"])  # the Trainer's loss key is kept


def test_four_epochs_validation_file_matches_predict_row_for_row(tiny_bert, review_files, tmp_path):
    """Four epochs at a high learning rate (the rule may keep an earlier one; the test does not
    force it): the validation file matches predict on the kept weights row for row."""
    from reviewsense.inference import Predictor

    run = tmp_path / "run"
    run_training(tiny_config(tiny_bert, review_files, epochs=4, lr=3e-3), output_dir=run)
    val = pd.read_parquet(run / rundir.VAL_PREDICTIONS)
    shipped = Predictor.from_pretrained(run / rundir.MODEL_DIR, precision="fp32")
    got = [p.prob_positive for p in shipped.predict(_val_texts(review_files, val["row_id"]))]
    assert got == val["prob_positive"].tolist()
    assert ((val["prob_positive"] >= 0.5).astype(int) == val["prediction"]).all()


def test_reused_maps_dataset_order_back_to_bundle_rows():
    pe = PredictorEval(["b", "a", "c"], [1, 0, 1], [2, 0, 1], None, None, "fp32")
    pe.by_step[7] = np.array([0.1, 0.2, 0.3])  # dataset rows -> bundle rows 2, 0, 1
    assert pe.reused(7).tolist() == [0.2, 0.3, 0.1]
    assert pe.reused(8) is None and pe.reused(None) is None


def test_fp16_and_distributed_runs_keep_the_trainers_loop(tiny_bert, review_files, tmp_path):
    from reviewsense.train import _predictor_eval

    class Run:
        world, precision = 1, "fp16"

    assert _predictor_eval(Run(), None) is None
    Run.world, Run.precision = 2, "bf16"
    assert _predictor_eval(Run(), None) is None


@pytest.mark.skipif(not imdb_available(), reason="needs ../shared/data/imdb")
def test_minilm_bf16_copy_leaves_the_trained_model_alone(tmp_path):
    """The real MiniLM in bf16 on 64 IMDb reviews: the copy is cast and fused, the model the
    Trainer goes on training keeps fp32 weights and torch's linear layers, and the scores equal
    a Predictor on the same weights saved to a folder."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from reviewsense.inference import Predictor
    from reviewsense.runtime import bf16_path

    if bf16_path() == "none":
        pytest.skip("this CPU has no native bf16 path")
    reviews = pd.read_parquet(IMDB_DIR / "test.parquet").sample(64, random_state=0)
    texts, labels = reviews["text"].tolist(), reviews["label"].tolist()
    tok = AutoTokenizer.from_pretrained(minilm_path())
    model = AutoModelForSequenceClassification.from_pretrained(
        minilm_path(), num_labels=2, id2label=dict(rundir.ID2LABEL), label2id=rundir.LABEL2ID
    )
    settings = rundir.ModelSettings(max_length=256, truncation="head_tail", head_tokens=128)
    pe = PredictorEval(texts, labels, list(range(64)), tok, settings, "bf16")
    p = pe.probs(model, step=3)
    assert {type(x) for x in model.modules()} >= {torch.nn.Linear}
    assert all(w.dtype == torch.float32 for w in model.parameters())
    assert pe.reused(3).tolist() == p.tolist()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    rundir.write_model_settings(tmp_path, settings)
    folder = Predictor.from_pretrained(tmp_path, precision="bf16")
    assert [x.prob_positive for x in folder.predict(texts)] == p.tolist()
