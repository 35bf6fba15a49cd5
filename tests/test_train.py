"""Real Trainer runs on tiny random models (and one on the real MiniLM weights)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import IMDB_DIR, ROOT, imdb_available
from tiny_models import build_tiny_model, tiny_config

from reviewsense import rundir
from reviewsense.checkpoints import checkpoint_step
from reviewsense.config import load_preset
from reviewsense.train import checkpoint_problem, last_complete_checkpoint, run_training


def test_tiny_bert_run_writes_complete_run_dir(tiny_bert, review_files, tmp_path):
    run = tmp_path / "run"
    result = run_training(tiny_config(tiny_bert, review_files), output_dir=run)
    for name in (
        rundir.CONFIG_YAML,
        rundir.TRAINER_STATE,
        rundir.METRICS_JSON,
        rundir.TEST_PREDICTIONS,
        rundir.VAL_PREDICTIONS,
        rundir.ENVIRONMENT_JSON,
        rundir.TRAIN_LOG,
        rundir.DONE_MARKER,
    ):
        assert (run / name).is_file(), name
    m = json.loads((run / rundir.METRICS_JSON).read_text())
    assert m == json.loads(json.dumps(result.metrics, default=float))
    # one validation entry per epoch, all metric keys present
    assert [round(v["epoch"]) for v in m["validation"]] == [1, 2]
    for key in ("accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc", "log_loss", "loss"):
        assert key in m["validation"][0], key
    test = m["test"]
    assert test["n"] == 64
    lo, hi = test["accuracy_ci95"]
    assert lo <= test["accuracy"] <= hi
    assert sum(map(sum, test["confusion_matrix"])) == 64
    # the kept model is chosen by the noise-aware rule (selection.py), with its reason and band
    best = m["best"]
    assert best["metric"] == "accuracy" and best["step"] in (v["step"] for v in m["validation"])
    assert best["reason"].startswith(("last epoch kept", "epoch 1 chosen")), best["reason"]
    assert 0 < best["noise_band"] < 1 and "paired" in best["method"]
    if best["reason"].startswith("last epoch kept"):
        assert best["step"] == m["validation"][-1]["step"] == m["train"]["steps"]
    assert m["best_validation"]["accuracy"] == pytest.approx(best["value"])
    assert m["train"]["steps"] == 2 * 8  # 128 training rows / batch 16 * 2 epochs
    assert m["data"] == m["data"] | {"train": 128, "val": 32, "test": 64}
    # checkpoints: the last + the chosen one only, each carrying the run's model settings
    ckpts = sorted((run / rundir.CHECKPOINTS_DIR).glob("checkpoint-*"))
    assert 1 <= len(ckpts) <= 2 and f"checkpoint-{best['step']}" in {c.name for c in ckpts}
    for ckpt in ckpts:
        raw = json.loads((ckpt / "config.json").read_text())[rundir.SETTINGS_KEY]
        assert (raw["max_length"], raw["truncation"]) == (64, "head")
    assert m["train"]["checkpoint_disk_mb"] > 0
    # environment.json: what the numbers depend on
    env = json.loads((run / rundir.ENVIRONMENT_JSON).read_text())
    for key in ("cpu", "bf16_path", "threads", "torch", "precision"):
        assert key in env, key
    assert env["bf16_path"] in ("amx", "avx512_bf16", "none") and env["threads"] >= 1
    # predictions: one row per test review, probabilities agree with the reported metrics
    preds = pd.read_parquet(run / rundir.TEST_PREDICTIONS)
    assert list(preds.columns) == ["row_id", "label", "prob_positive", "prediction"]
    assert len(preds) == 64 and preds["row_id"].is_unique
    acc = float((preds["prediction"] == preds["label"]).mean())
    assert acc == pytest.approx(test["accuracy"])
    # the test pass is what `predict` gives on the saved model folder, and it logged an ETA
    from reviewsense.inference import Predictor

    texts = [json.loads(line)["text"] for line in review_files["test"].read_text().splitlines()]
    shipped = Predictor.from_pretrained(run / rundir.MODEL_DIR, precision=env["precision"])
    by_id = dict(zip(preds["row_id"], preds["prob_positive"], strict=True))
    assert len(by_id) == len(texts)
    assert [p.prob_positive for p in shipped.predict(texts)] == pytest.approx(
        [by_id[f"test.jsonl:{i + 1}"] for i in range(len(texts))], abs=1e-6
    )
    assert "test pass 64/64 (100%)" in (run / rundir.TRAIN_LOG).read_text()
    # self-contained model folder: safetensors, tokenizer, label map, truncation settings
    model_dir = run / rundir.MODEL_DIR
    assert (model_dir / "model.safetensors").is_file()
    assert not list(model_dir.glob("*.bin")), "no pickles in the model folder"
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["id2label"] == {"0": "negative", "1": "positive"}
    settings = rundir.read_model_settings(model_dir)
    assert (settings.max_length, settings.truncation) == (64, "head")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    AutoModelForSequenceClassification.from_pretrained(model_dir)
    AutoTokenizer.from_pretrained(model_dir)


def test_same_small_run_twice_gives_identical_predictions(tiny_bert, review_files, tmp_path):
    """Determinism on one machine: same config and seed -> the same test probabilities."""
    cfg = tiny_config(tiny_bert, review_files, epochs=1)
    run_training(cfg, output_dir=tmp_path / "a")
    run_training(cfg, output_dir=tmp_path / "b")
    a = pd.read_parquet(tmp_path / "a" / rundir.TEST_PREDICTIONS)
    b = pd.read_parquet(tmp_path / "b" / rundir.TEST_PREDICTIONS)
    assert a["row_id"].tolist() == b["row_id"].tolist()
    assert a["prob_positive"].tolist() == b["prob_positive"].tolist()  # exactly equal


def test_tiny_model_learns_synthetic_sentiment(tiny_bert, review_files, tmp_path):
    """Real learning on the tiny model: sentiment words are enough to beat chance clearly."""
    cfg = tiny_config(tiny_bert, review_files, epochs=6, lr=3e-3)
    m = run_training(cfg, output_dir=tmp_path / "run").metrics
    assert m["test"]["accuracy"] >= 0.8, m["test"]


def test_tiny_distilbert_trains(tiny_distilbert, review_files, tmp_path):
    cfg = tiny_config(tiny_distilbert, review_files, epochs=1)
    m = run_training(cfg, output_dir=tmp_path / "run").metrics
    assert m["train"]["steps"] == 8
    assert (
        json.loads((tmp_path / "run/model/config.json").read_text())["model_type"] == "distilbert"
    )


def test_head_tokens_shape_the_training_inputs(tiny_bert, review_files, tmp_path, monkeypatch):
    """``--set head_tokens=N`` cuts the training reviews as the saved model will be used."""
    from reviewsense.train import _prepare_inputs, _Run, model_settings

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a fresh token cache
    cfg = tiny_config(tiny_bert, review_files, max_length=24, truncation="head_tail", head_tokens=4)
    inputs = _prepare_inputs(_Run(cfg, tmp_path / "run", 0, 1, 0.0))
    full = inputs.tokenizer(list(inputs.bundle.train.texts), add_special_tokens=False)
    pairs = list(zip(full["input_ids"], inputs.enc["train"]["input_ids"], strict=True))
    cut = [(ids, enc) for ids, enc in pairs if len(ids) > 24 - 2]
    assert len(cut) > 10
    for ids, enc in cut:
        assert enc[1:-1] == ids[:4] + ids[-(24 - 2 - 4) :]
    assert model_settings(cfg).head_tokens == 4


def test_max_length_beyond_the_models_positions_fails_before_training(review_files, tmp_path):
    from reviewsense.errors import ConfigError

    model = build_tiny_model(tmp_path / "short-model", max_position_embeddings=32)
    cfg = tiny_config(model, review_files, max_length=64, max_steps=1)
    with pytest.raises(ConfigError, match=r"'max_length': 64 — the model .* at most 32 tokens"):
        run_training(cfg, output_dir=tmp_path / "run")
    assert not (tmp_path / "run" / rundir.CHECKPOINTS_DIR).exists()
    assert not (tmp_path / "run" / rundir.MODEL_DIR).exists()


def test_output_with_checkpoints_needs_resume(tiny_bert, review_files, tmp_path):
    from reviewsense.errors import ReviewsenseError

    cfg = tiny_config(tiny_bert, review_files, max_steps=2)
    run_training(cfg, output_dir=tmp_path / "run")
    with pytest.raises(ReviewsenseError, match="--resume"):
        run_training(cfg, output_dir=tmp_path / "run")


def test_truncated_checkpoint_is_detected_and_skipped(tiny_bert, review_files, tmp_path):
    run = tmp_path / "run"
    run_training(tiny_config(tiny_bert, review_files, epochs=2), output_dir=run)
    ckpts = run / rundir.CHECKPOINTS_DIR
    good = last_complete_checkpoint(ckpts)
    assert good is not None and checkpoint_problem(good) is None
    # a newer checkpoint whose weights were cut off mid-write
    bad = ckpts / "checkpoint-999"
    shutil.copytree(good, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert checkpoint_problem(bad) == "truncated model.safetensors"
    # and one the process died in before writing the optimizer state
    worse = ckpts / "checkpoint-1000"
    shutil.copytree(good, worse)
    (worse / "optimizer.pt").unlink()
    assert last_complete_checkpoint(ckpts) == good
    assert not bad.exists() and (ckpts / "incomplete-checkpoint-999").is_dir()


def _cli(*args: str, **kw) -> list[str]:
    return [sys.executable, "-m", "reviewsense", *args]


def test_sigkill_mid_run_then_resume(tiny_bert, review_files, tmp_path):
    """Kill -9 while training, then `--resume`: same final step, a loadable model."""
    run = tmp_path / "run"
    epochs, steps_per_epoch = 25, 8
    cmd = _cli(
        "train",
        "--model", str(tiny_bert),
        "--train-file", str(review_files["train"]),
        "--test-file", str(review_files["test"]),
        "--train-size", "all", "--val-size", "32",
        "--max-length", "64", "--truncation", "head",
        "--precision", "fp32", "--epochs", str(epochs), "--lr", "1e-3",
        "--no-analysis", "--output", str(run),
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            done = [
                p
                for p in (run / "checkpoints").glob("checkpoint-*")
                if checkpoint_problem(p) is None
            ]
            if any(int(p.name.split("-")[1]) >= 3 * steps_per_epoch for p in done):
                break
            if proc.poll() is not None:
                pytest.fail(
                    f"training ended before it could be killed: {proc.stderr.read()[-2000:]}"
                )
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint appeared in time")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert not (run / rundir.DONE_MARKER).exists(), "the run must not have finished"
    # simulate a kill during a save as well: a newer, half-written checkpoint
    newest = last_complete_checkpoint(run / "checkpoints")
    half = run / "checkpoints" / "checkpoint-9999"
    shutil.copytree(newest, half)
    (half / "model.safetensors").write_bytes(b"\x10\x00")

    out = subprocess.run(
        _cli("train", "--resume", str(run)), env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "skipping incomplete checkpoint" in out.stderr
    m = json.loads((run / rundir.METRICS_JSON).read_text())
    assert m["train"]["steps"] == epochs * steps_per_epoch
    assert m["train"]["resumed_from"] == str(newest)
    # speed and loss describe the steps trained after the resume, not the whole run
    here = m["train"]["steps"] - checkpoint_step(newest)
    assert m["train"]["steps_this_run"] == here
    if here == 0:
        assert m["train"]["examples_per_s"] is None and m["train"]["train_loss"] is None
    else:
        assert m["train"]["examples_per_s"] > 0 and m["train"]["train_loss"] > 0
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(run / rundir.MODEL_DIR)


@pytest.mark.slow
@pytest.mark.skipif(not imdb_available(), reason=f"IMDb parquet files not found in {IMDB_DIR}")
def test_minilm_learns_imdb(tmp_path):
    """The real pretrained MiniLM on 256 real IMDb reviews: clearly better than chance."""
    cfg = load_preset("offline").override(
        {
            "train_size": 256,
            "val_size": 64,
            "test_size": 256,
            "max_length": 128,
            "truncation": "head",
            # 96 small steps: measured with batches in random order 0.738 / 0.766 test accuracy
            # (seeds 42 / 43); 2 epochs gave 0.680 / 0.668, too close to the bar (0.58 at batch
            # 16, lr 1e-4)
            "epochs": 3,
            "batch_size": 8,
            "lr": 2e-4,
            "analyze": True,
        }
    )
    m = run_training(cfg, output_dir=tmp_path / "run").metrics
    assert m["test"]["n"] == 256
    assert m["test"]["accuracy"] >= 0.70, m["test"]
    assert (tmp_path / "run" / rundir.ANALYSIS_DIR / "summary.json").is_file()
