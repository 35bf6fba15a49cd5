"""The Predictor in a child process: same answers, one-line load errors, restart after a crash."""

from __future__ import annotations

import os
import signal

import pytest

from reviewsense.errors import ModelError
from reviewsense.inference.predictor import Predictor
from reviewsense.inference.process import ProcessPredictor

TEXTS = ["A wonderful, moving film.", "Dull and far too long.", "ok"]


def test_same_predictions_as_in_process_and_restart_after_a_crash(tiny_bert):
    local = Predictor.from_pretrained(tiny_bert, precision="fp32", num_threads=1)
    remote = ProcessPredictor(tiny_bert, precision="fp32", num_threads=1)
    try:
        assert remote.pid != os.getpid()
        assert remote.model_version == local.model_version
        assert remote.settings == local.settings and remote.precision == "fp32"
        assert remote.predict(TEXTS) == local.predict(TEXTS)
        first_pid = remote.pid
        os.kill(first_pid, signal.SIGKILL)  # out of memory, say
        with pytest.raises(RuntimeError, match="died"):
            remote.predict(TEXTS)
        assert remote.predict(TEXTS) == local.predict(TEXTS)  # a new child, model reloaded
        assert remote.pid is not None and remote.pid != first_pid
    finally:
        remote.close()
    with pytest.raises(RuntimeError, match="closed"):
        remote.predict(TEXTS)


def test_a_broken_folder_is_the_childs_one_line_model_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError) as e:
        ProcessPredictor(tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_an_error_in_predict_reaches_the_caller_and_the_child_keeps_serving(tiny_bert):
    remote = ProcessPredictor(tiny_bert, precision="fp32", num_threads=1)
    try:
        with pytest.raises(RuntimeError):
            remote.predict([None])  # not a string: the tokenizer raises in the child
        assert len(remote.predict(TEXTS)) == 3
    finally:
        remote.close()
