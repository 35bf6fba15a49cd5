"""Run-directory / model-folder contract: resolution and the settings in config.json."""

from __future__ import annotations

import json

import pytest

from reviewsense import rundir
from reviewsense.errors import ModelError
from reviewsense.rundir import ModelSettings

BASE_CONFIG = {
    "model_type": "bert",
    "hidden_size": 32,
    "id2label": {"0": "negative", "1": "positive"},
    "label2id": {"negative": 0, "positive": 1},
}


def model_folder(path):
    path.mkdir(parents=True)
    (path / rundir.MODEL_CONFIG).write_text(json.dumps(BASE_CONFIG))
    return path


def test_resolve_run_dir_gives_model_folder(tmp_path):
    m = model_folder(tmp_path / "run" / rundir.MODEL_DIR)
    assert rundir.resolve_model_dir(tmp_path / "run") == m
    assert rundir.resolve_model_dir(str(tmp_path / "run")) == m


def test_resolve_model_folder_itself(tmp_path):
    m = model_folder(tmp_path / "folder")
    assert rundir.resolve_model_dir(m) == m


def test_run_dir_wins_over_stray_config(tmp_path):
    m = model_folder(tmp_path / "run" / rundir.MODEL_DIR)
    (tmp_path / "run" / rundir.MODEL_CONFIG).write_text("{}")
    assert rundir.resolve_model_dir(tmp_path / "run") == m


def test_resolve_neither(tmp_path):
    (tmp_path / "empty" / rundir.MODEL_DIR).mkdir(parents=True)  # model/ without config.json
    with pytest.raises(ModelError) as e:
        rundir.resolve_model_dir(tmp_path / "empty")
    msg = str(e.value)
    assert str(tmp_path / "empty") in msg
    assert "neither a model folder" in msg and "config.json" in msg and "model/config.json" in msg


def test_resolve_missing_path(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        rundir.resolve_model_dir(tmp_path / "missing")


def test_resolve_file_is_neither(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match="neither"):
        rundir.resolve_model_dir(f)


def test_settings_round_trip_keeps_other_keys(tmp_path):
    m = model_folder(tmp_path / "m")
    s = ModelSettings(
        max_length=128,
        truncation="head_tail",
        head_tokens=64,
        base_model="minilm",
        threshold=0.7,
        threshold_info={"target_precision": 0.9, "n": 500},
    )
    rundir.write_model_settings(m, s)
    assert rundir.read_model_settings(m) == s
    cfg = json.loads((m / rundir.MODEL_CONFIG).read_text())
    for k, v in BASE_CONFIG.items():
        assert cfg[k] == v
    assert cfg[rundir.SETTINGS_KEY] == s.to_dict()
    assert not list(m.glob("*.tmp"))  # the atomic write leaves nothing behind
    # overwrite: the new settings replace the old ones, other keys still kept
    rundir.write_model_settings(m, ModelSettings(max_length=64, truncation="head"))
    assert rundir.read_model_settings(m) == ModelSettings(max_length=64, truncation="head")
    assert json.loads((m / rundir.MODEL_CONFIG).read_text())["hidden_size"] == 32


def test_defaults_when_absent(tmp_path):
    m = model_folder(tmp_path / "m")
    s = rundir.read_model_settings(m)
    assert s == ModelSettings()
    assert (s.max_length, s.truncation, s.head_tokens, s.threshold) == (256, "head_tail", 128, None)
    assert s.threshold_info == {}


def test_partial_and_unknown_settings_keys(tmp_path):
    m = model_folder(tmp_path / "m")
    cfg = {**BASE_CONFIG, rundir.SETTINGS_KEY: {"max_length": 100, "future_key": 1}}
    (m / rundir.MODEL_CONFIG).write_text(json.dumps(cfg))
    s = rundir.read_model_settings(m)
    assert s.max_length == 100 and s.truncation == "head_tail"


def test_from_dict_none_and_defaults_not_shared():
    a, b = ModelSettings.from_dict(None), ModelSettings.from_dict({})
    assert a == b == ModelSettings()
    a.threshold_info["x"] = 1
    assert b.threshold_info == {}


@pytest.mark.parametrize("content", [None, "{not json"])
def test_read_settings_unreadable(tmp_path, content):
    if content is not None:
        (tmp_path / rundir.MODEL_CONFIG).write_text(content)
    with pytest.raises(ModelError) as e:
        rundir.read_model_settings(tmp_path)
    assert "cannot read" in str(e.value) and str(tmp_path / rundir.MODEL_CONFIG) in str(e.value)


def test_labels_and_complete_marker(tmp_path):
    assert rundir.ID2LABEL == {0: "negative", 1: "positive"}
    assert rundir.LABEL2ID == {"negative": 0, "positive": 1}
    assert not rundir.is_complete_run(tmp_path)
    (tmp_path / rundir.DONE_MARKER).write_text("")
    assert rundir.is_complete_run(tmp_path)


def test_one_set_of_truncation_defaults():
    from reviewsense.config import DataConfig

    assert ModelSettings().spec == DataConfig().spec  # the model folder and a run agree


def test_checkpoint_without_settings_uses_the_runs(tmp_path):
    run = tmp_path / "run"
    ckpt = model_folder(run / rundir.CHECKPOINTS_DIR / "checkpoint-375")
    (run / rundir.CONFIG_YAML).write_text(
        "model: minilm\ndata: {max_length: 200, truncation: head_tail, head_tokens: 64}\n",
        encoding="utf-8",
    )
    assert rundir.resolve_model_dir(ckpt) == ckpt
    assert rundir.run_dir_of(ckpt) == run
    s = rundir.read_model_settings(ckpt)
    assert (s.max_length, s.truncation, s.head_tokens, s.base_model) == (
        200,
        "head_tail",
        64,
        "minilm",
    )
    # a stand-alone folder has no run: the defaults
    assert rundir.run_dir_of(model_folder(tmp_path / "alone")) is None


def test_predictions_file_columns_and_flag_rule(tmp_path):
    import numpy as np
    import pandas as pd

    from reviewsense.data import Split

    split = Split(["a", "b", "c"], [1, 0, 1], ["r1", "r2", "r3"], "test")
    rundir.write_predictions(tmp_path / "p.parquet", split, np.array([0.9, 0.5, 0.2]))
    df = pd.read_parquet(tmp_path / "p.parquet")
    assert list(df.columns) == ["row_id", "label", "prob_positive", "prediction"]
    assert df["row_id"].tolist() == ["r1", "r2", "r3"]
    assert df["prediction"].tolist() == [1, 0, 0]  # P(positive) 0.5 is flagged negative
