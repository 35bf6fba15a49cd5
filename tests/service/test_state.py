"""Threshold resolution and state construction of the service."""

from __future__ import annotations

import json

import pytest

from reviewsense.errors import ModelError
from reviewsense.metrics import DEFAULT_THRESHOLD
from reviewsense.service.state import build_state, resolve_threshold
from reviewsense.settings import ServiceSettings


@pytest.fixture(scope="module")
def model_with_threshold(tmp_path_factory):
    from helpers import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("state") / "model", threshold=0.73)


def test_threshold_override_beats_the_model_folder(model_with_threshold, tmp_path):
    assert resolve_threshold(ServiceSettings(), model_with_threshold, None) == (0.73, "model")
    assert resolve_threshold(ServiceSettings(threshold=0.2), model_with_threshold, None) == (
        0.2,
        "override",
    )
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({}))
    assert resolve_threshold(ServiceSettings(), plain, None) == (DEFAULT_THRESHOLD, "default")


def test_a_model_threshold_out_of_range_is_a_model_error(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"reviewsense": {"threshold": 1.7}}))
    with pytest.raises(ModelError, match="threshold"):
        resolve_threshold(ServiceSettings(), bad, None)


def test_build_state_takes_the_settings_and_the_predictors_threshold(fixed_predictor, sqlite_url):
    """tiny_model_dir (behind fixed_predictor) stores no threshold: the default applies."""
    assert fixed_predictor.settings.threshold is None
    state = build_state(
        ServiceSettings(db_url=sqlite_url, batch_max_texts=3),
        model_dir=None,
        predictor=fixed_predictor,
    )
    try:
        assert state.batcher.max_batch == 3 and not state.model_ready
        assert state.write_lock is not None  # SQLite: one writer at a time
        assert (state.threshold, state.threshold_source) == (DEFAULT_THRESHOLD, "default")
    finally:
        state.engine.dispose()


@pytest.mark.parametrize("via", ["predictor", "model_dir"])
def test_build_state_takes_the_threshold_stored_in_the_model_folder(
    model_with_threshold, sqlite_url, via
):
    """A folder with ``reviewsense.threshold`` in config.json (as `reviewsense threshold`
    stores it), read from the loaded predictor or, before it loads, from the folder."""
    from reviewsense.inference.predictor import Predictor

    predictor = None
    if via == "predictor":
        predictor = Predictor.from_pretrained(model_with_threshold, backend="torch", num_threads=1)
    state = build_state(
        ServiceSettings(db_url=sqlite_url),
        model_dir=model_with_threshold if via == "model_dir" else None,
        predictor=predictor,
    )
    try:
        assert (state.threshold, state.threshold_source) == (0.73, "model")
    finally:
        state.engine.dispose()


def test_the_service_runs_packed_batches_whatever_the_cpu(
    model_with_threshold, caplog, monkeypatch
):
    """``predict``'s "auto" picks the chunked kernel on avx512_bf16 CPUs; the service runs its
    micro-batches packed (real tokens only, SDPA per review), measured faster on its small
    unequal batches while HTTP and database work share the cores."""
    from reviewsense import runtime
    from reviewsense.service.state import load_predictor

    monkeypatch.setattr(runtime, "bf16_path", lambda: "avx512_bf16")
    caplog.set_level("INFO", logger="reviewsense.inference.backends")
    load_predictor(model_with_threshold, ServiceSettings())
    assert "attention kernel: reviewsense_packed (packed)" in caplog.text


def test_serving_pytorch_weights_on_a_cpu_points_to_the_openvino_export(
    model_with_threshold, tmp_path, caplog
):
    """A PyTorch folder on a CPU gets a log line naming the export command; an exported
    folder does not."""
    from reviewsense.service.state import load_predictor

    caplog.set_level("INFO", logger="reviewsense.service.state")
    load_predictor(model_with_threshold, ServiceSettings())
    assert f"reviewsense export {model_with_threshold} --format openvino" in caplog.text
    pytest.importorskip("openvino")  # optional runtime, not one of our modules
    from reviewsense.inference.export import export_onnx

    exported = tmp_path / "ov"
    export_onnx(model_with_threshold, exported, fmt="openvino", verify_texts=["good", "bad"] * 5)
    caplog.clear()
    predictor = load_predictor(exported, ServiceSettings())
    assert predictor.backend == "openvino" and "--format openvino" not in caplog.text
