"""The training side of noise-aware selection: recording, checkpoint keeping, early stopping.

The rule itself is tested in test_selection.py; here it is driven through the real Trainer
callback objects with synthetic validation probabilities (1,000 reviews).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import EvalPrediction, TrainerControl, TrainerState, TrainingArguments

from reviewsense import rundir
from reviewsense.train_selection import (
    EVAL_PROBS_JSON,
    CheckpointKeeper,
    EvalRecorder,
    NoiseAwareEarlyStopping,
)

N = 1000
LABELS = np.array([0, 1] * (N // 2))


def probs_with_accuracy(acc: float) -> np.ndarray:
    """P(positive) (N,) right on the first ``acc * N`` reviews, wrong on the rest."""
    right = np.arange(N) < int(acc * N)
    return np.where(right == (LABELS == 1), 0.9, 0.1)


def logits_for(probs: np.ndarray) -> np.ndarray:
    """(N, 2) logits whose softmax gives ``probs`` as P(positive)."""
    return np.stack([np.zeros(N), np.log(probs / (1 - probs))], axis=1)


def record(recorder: EvalRecorder, accuracies: list[float], steps_per_epoch: int = 10) -> None:
    state = TrainerState()
    for i, acc in enumerate(accuracies, start=1):
        m = recorder.compute_metrics(EvalPrediction(logits_for(probs_with_accuracy(acc)), LABELS))
        assert m["accuracy"] == pytest.approx(acc)
        state.global_step, state.epoch = i * steps_per_epoch, float(i)
        recorder.on_evaluate(None, state, TrainerControl())


def test_recorder_keeps_probabilities_and_restores_them(tmp_path):
    rec = EvalRecorder(tmp_path)
    record(rec, [0.7, 0.8, 0.85])
    assert [e.step for e in rec.evals] == [10, 20, 30]
    saved = json.loads((tmp_path / EVAL_PROBS_JSON).read_text())
    assert len(saved["evals"]) == 3 and len(saved["labels"]) == N
    again = EvalRecorder(tmp_path)
    again.restore(up_to_step=20)  # a run resumed from checkpoint-20 forgets later evaluations
    assert [e.step for e in again.evals] == [10, 20]
    np.testing.assert_allclose(again.evals[1].probs, rec.evals[1].probs)
    assert again.choice()["index"] == 1  # 10 points better than epoch 1: outside the band


def test_inside_the_band_the_last_epoch_is_kept(tmp_path):
    rec = EvalRecorder(tmp_path, write=False)
    record(rec, [0.872, 0.870])  # 2 reviews apart: inside the band
    choice = rec.choice()
    assert choice["index"] == 1 and choice["reason"].startswith("last epoch kept")
    assert not (tmp_path / EVAL_PROBS_JSON).exists()  # write=False: ranks > 0 write nothing


def test_keeper_keeps_the_newest_and_the_chosen_checkpoint(tmp_path):
    rec = EvalRecorder(tmp_path, write=False)
    record(rec, [0.9, 0.7, 0.7])  # epoch 1 is better by 20 points: it is chosen
    for step in (10, 20, 30):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / rundir.MODEL_CONFIG).write_text(json.dumps({"model_type": "bert"}))
    settings = rundir.ModelSettings(max_length=200, truncation="head_tail", head_tokens=64)
    keeper = CheckpointKeeper(rec, settings, keep=1)
    state = TrainerState()
    state.global_step = 30
    keeper.on_save(TrainingArguments(output_dir=str(tmp_path)), state, TrainerControl())
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == [
        "checkpoint-10",
        "checkpoint-30",
    ]
    assert rundir.read_model_settings(tmp_path / "checkpoint-30") == settings


def test_early_stopping_counts_only_improvements_beyond_the_band(tmp_path):
    rec = EvalRecorder(tmp_path, write=False)
    stop = NoiseAwareEarlyStopping(rec, patience=2)
    record(rec, [0.70, 0.80, 0.802])  # +10 pt resets the count; +0.2 pt is noise
    assert stop.waiting() == 1
    control = TrainerControl()
    stop.on_evaluate(None, TrainerState(), control)
    assert not control.should_training_stop
    record(rec, [0.803])
    stop.on_evaluate(None, TrainerState(), control)
    assert stop.waiting() == 2 and control.should_training_stop
