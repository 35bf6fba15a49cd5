"""Scoring the saved model folder: the bf16 path is verified against fp32 and recorded."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from reviewsense import rundir
from reviewsense.inference import Predictor
from reviewsense.runtime import cpu_has_fast_bf16
from reviewsense.train_scoring import bf16_refused

TEXTS = [
    "A wonderful film, moving and funny.",
    "Dull, predictable and far too long.",
    "The cast is great but the script lets them down.",
    "I would watch it again tomorrow.",
] * 5


def _copy(model, tmp_path):
    return shutil.copytree(model, tmp_path / "model")


def test_a_passing_check_is_recorded_and_bf16_kept(tiny_bert, tmp_path):
    folder = _copy(tiny_bert, tmp_path)
    bf16 = Predictor.from_pretrained(folder, backend="torch", precision="bf16")
    p = np.array([x.prob_positive for x in bf16.predict(TEXTS)])
    assert bf16_refused(folder, None, TEXTS, p) is False
    record = rundir.read_model_settings(folder).bf16_verification
    assert record["passed"] and record["n_samples"] == len(TEXTS)
    assert record["source"] == f"{len(TEXTS)} validation reviews"
    expected = "bf16" if cpu_has_fast_bf16() else "fp32"
    assert Predictor.from_pretrained(folder).precision == expected


def test_a_failed_check_makes_auto_run_fp32(tiny_bert, tmp_path):
    folder = _copy(tiny_bert, tmp_path)
    fp32 = Predictor.from_pretrained(folder, backend="torch", precision="fp32")
    wrong = 1.0 - np.array([x.prob_positive for x in fp32.predict(TEXTS)])  # every label flips
    assert bf16_refused(folder, None, TEXTS, wrong) is True
    record = rundir.read_model_settings(folder).bf16_verification
    assert record["passed"] is False and any("agreement" in f for f in record["failures"])
    assert Predictor.from_pretrained(folder).precision == "fp32"  # auto honours the record
    if cpu_has_fast_bf16():  # an explicit request is still obeyed
        assert Predictor.from_pretrained(folder, precision="bf16").precision == "bf16"


@pytest.mark.parametrize(("precision", "recorded"), [("bf16", True), ("fp32", False)])
def test_training_records_the_check_only_for_bf16(
    tiny_bert, review_files, tmp_path, precision, recorded
):
    from tiny_models import tiny_config

    from reviewsense.train import run_training

    cfg = tiny_config(tiny_bert, review_files, max_steps=2, precision=precision)
    run_training(cfg, tmp_path / "run")
    record = rundir.read_model_settings(tmp_path / "run" / "model").bf16_verification
    if recorded:
        assert record["n_samples"] == 32 and "passed" in record  # val_size 32 (< 500)
    else:
        assert record == {}
