"""ONNX export: round trips (fp32, int8), self-contained folder, verification failures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reviewsense import rundir
from reviewsense.errors import ModelError
from reviewsense.inference import Predictor
from reviewsense.inference import export as export_mod
from reviewsense.inference.export import REPORT_FILE, TOLERANCES, Tolerance, compare, export_onnx
from reviewsense.runtime import cpu_has_fast_bf16

TEXTS = ["Loved it.", "Hated it.", "An uneven film with a great final act. " * 20, "meh"]


def _probs(predictor: Predictor) -> np.ndarray:
    return np.array([p.prob_positive for p in predictor.predict(TEXTS)])


@pytest.mark.parametrize("arch", ["tiny_bert", "tiny_distilbert"])
def test_fp32_round_trip(arch, request, tmp_path):
    src = request.getfixturevalue(arch)
    out = tmp_path / "onnx"
    report = export_onnx(src, out)
    assert report.passed and report.precision == "fp32"
    assert report.max_abs_diff <= 1e-3
    assert {"model.onnx", "config.json", "tokenizer.json", REPORT_FILE} <= {
        p.name for p in out.iterdir()
    }
    assert json.loads((out / REPORT_FILE).read_text())["passed"] is True
    # Self-contained: settings travel with it; "auto" picks ONNX Runtime.
    assert rundir.read_model_settings(out) == rundir.read_model_settings(src)
    onnx_p = Predictor.from_pretrained(out)
    assert (onnx_p.backend, onnx_p.precision) == ("onnx", "fp32")
    torch_p = Predictor.from_pretrained(src, precision="fp32")
    np.testing.assert_allclose(_probs(onnx_p), _probs(torch_p), atol=1e-4)
    with pytest.raises(ModelError, match="ONNX folder"):
        Predictor.from_pretrained(out, backend="torch")


@pytest.mark.slow
def test_int8_round_trip(minilm, tmp_path):
    """int8 on real weights (random tiny weights quantize badly by design)."""
    report = export_onnx(minilm, tmp_path / "int8", quantize="int8", verify_texts=TEXTS * 3)
    assert report.passed and report.precision == "int8"
    assert report.onnx_mb < report.source_mb / 3  # int8 weights
    p = Predictor.from_pretrained(tmp_path / "int8")
    assert p.precision == "int8"
    assert len(p.predict(TEXTS)) == len(TEXTS)


def test_verification_failure_is_loud(tiny_bert, tmp_path, monkeypatch):
    strict = Tolerance(dp_limit=-1.0, dp_quantile=1.0, mean_abs_diff=1.0, min_label_agreement=0.0)
    monkeypatch.setitem(export_mod.TOLERANCES, "fp32", strict)
    out = tmp_path / "onnx"
    with pytest.raises(ModelError, match="outside tolerance"):
        export_onnx(tiny_bert, out, verify_texts=["fine", "bad"])
    assert json.loads((out / REPORT_FILE).read_text())["passed"] is False
    # the refused weights are kept for inspection but can no longer be loaded
    assert not (out / "model.onnx").exists() and (out / "model.onnx.refused").is_file()
    with pytest.raises(ModelError):
        Predictor.from_pretrained(out)


def test_output_must_be_new_or_overwritten(tiny_bert, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "x").write_text("x")
    with pytest.raises(ModelError, match="not empty"):
        export_onnx(tiny_bert, out)
    with pytest.raises(ModelError, match="int8"):
        export_onnx(tiny_bert, tmp_path / "q", quantize="int4")


def test_compare_counts_only_decisive_flips():
    tol = Tolerance(dp_limit=0.1, dp_quantile=1.0, mean_abs_diff=0.1, min_label_agreement=0.95)
    ref = [0.9, 0.1, 0.52, 0.48]
    m, failures = compare(ref, [0.88, 0.12, 0.47, 0.55], tol)  # flips only near 0.5
    assert failures == []
    assert (m["label_agreement"], m["decisive_samples"]) == (0.5, 2)
    _, failures = compare(ref, [0.3, 0.1, 0.52, 0.48], tol)
    assert any("max |Δp|" in f for f in failures)
    assert any("label agreement" in f for f in failures)


def test_lossy_precisions_bound_the_99th_percentile_not_the_max():
    """One borderline review moved a lot must not decide; a heavy tail must."""
    int8 = TOLERANCES["int8"]
    assert (int8.dp_name, TOLERANCES["fp32"].dp_name) == ("p99", "max")
    ref = [0.9] * 199 + [0.6]
    one_outlier = [0.89] * 199 + [0.15]  # one review in 200 moves by 0.45 (and flips)
    m, failures = compare(ref, one_outlier, int8, min_agreement=0.99)
    assert failures == [] and m["max_abs_diff"] == pytest.approx(0.45)
    assert m["p99_abs_diff"] < 0.1
    exact = Tolerance(dp_limit=0.1, dp_quantile=1.0, mean_abs_diff=0.02, min_label_agreement=0.95)
    assert compare(ref, one_outlier, exact)[1] == ["max |Δp| 0.45 > 0.1"]
    tail = [0.88] * 190 + [0.7] * 10  # 5% of reviews move by 0.2
    _, failures = compare(ref, tail, int8)
    assert any(f.startswith("p99 |Δp| 0.2") for f in failures), failures
    with pytest.raises(ValueError, match="dp_quantile"):
        Tolerance(dp_limit=0.1, dp_quantile=0.2, mean_abs_diff=0.02, min_label_agreement=0.95)


def test_openvino_round_trip(tiny_bert, tmp_path):
    pytest.importorskip("openvino")  # optional runtime, not one of our modules
    out = tmp_path / "ov"
    report = export_onnx(tiny_bert, out, fmt="openvino", verify_texts=TEXTS * 5)
    assert report.passed and report.format == "openvino" and report.n_samples == 20
    auto = Predictor.from_pretrained(out)  # auto: the folder's own format
    # bf16 hint where the CPU is fast at bf16, AMX or avx512_bf16 (backends.load_runner)
    expected = "bf16" if cpu_has_fast_bf16() else "fp32"
    assert (auto.backend, auto.precision) == ("openvino", expected)
    p = Predictor.from_pretrained(out, precision="fp32")
    assert (p.backend, p.precision) == ("openvino", "fp32")
    torch_p = Predictor.from_pretrained(tiny_bert, precision="fp32")
    np.testing.assert_allclose(_probs(p), _probs(torch_p), atol=1e-3)
    with pytest.raises(ModelError, match="OpenVINO folder"):
        Predictor.from_pretrained(out, backend="torch")
    with pytest.raises(ModelError, match="int8"):
        export_onnx(tiny_bert, tmp_path / "q", fmt="openvino", quantize="int8")


def test_min_agreement_counts_every_review():
    loose = Tolerance(dp_limit=1.0, dp_quantile=1.0, mean_abs_diff=1.0, min_label_agreement=0.0)
    ref, cand = [0.9] * 99 + [0.51], [0.9] * 99 + [0.49]  # one flip in 100
    assert compare(ref, cand, loose, min_agreement=0.99)[1] == []
    _, failures = compare(ref, cand, loose, min_agreement=0.995)
    assert failures == ["label agreement 0.9900 on 100 reviews < --min-agreement 0.995"]


def test_min_agreement_must_be_a_fraction(tiny_bert, tmp_path):
    with pytest.raises(ModelError, match="min-agreement"):
        export_onnx(tiny_bert, tmp_path / "o", min_agreement=1.5)


def test_default_verification_uses_imdb_reviews(tiny_distilbert, tmp_path, imdb_sample):
    report = export_onnx(tiny_distilbert, tmp_path / "onnx")
    assert report.n_samples == 500 and report.verify_source.startswith("IMDb test")


@pytest.mark.slow
def test_static_int8_is_calibrated_and_verified(minilm, tmp_path, imdb_sample):
    out = tmp_path / "int8s"
    report = export_onnx(
        minilm, out, quantize="int8-static", verify_texts=imdb_sample[:60], min_agreement=0.0
    )
    assert report.precision == "int8" and report.quantize == "int8-static"
    assert report.n_samples == 60 and report.onnx_mb < report.source_mb / 2
    p = Predictor.from_pretrained(out)
    assert (p.backend, p.precision) == ("onnx", "int8")


def test_openvino_export_checks_the_bf16_hint_auto_runs(tiny_bert, tmp_path, caplog):
    """Where this CPU is fast at bf16, `auto` runs an OpenVINO folder under the bf16 hint, so
    the export checks that path too; a failed check makes `auto` run f32."""
    pytest.importorskip("openvino")
    if not cpu_has_fast_bf16():
        pytest.skip("no fast bf16 on this CPU: the check is not run and auto is f32")
    out = tmp_path / "ov"
    report = export_onnx(tiny_bert, out, fmt="openvino", verify_texts=TEXTS * 5)
    check = report.bf16_verification
    assert check["passed"] and check["n_samples"] == 20 and check["failures"] == []
    config_path = out / rundir.MODEL_CONFIG
    config = json.loads(config_path.read_text())
    assert config["reviewsense_export"]["bf16_verification"] == check
    assert json.loads((out / REPORT_FILE).read_text())["bf16_verification"] == check
    assert Predictor.from_pretrained(out).precision == "bf16"
    # the same folder with a failed check on record: auto falls back to f32 and says why
    config["reviewsense_export"]["bf16_verification"] = {"passed": False, "failures": ["x"]}
    config_path.write_text(json.dumps(config))
    assert Predictor.from_pretrained(out).precision == "fp32"
    assert "OpenVINO bf16 failed its verification" in caplog.text
    assert Predictor.from_pretrained(out, precision="bf16").precision == "bf16"  # explicit
