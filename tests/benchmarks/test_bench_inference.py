"""bench_inference's driver logic without running a benchmark: which variants survive a refused
export, when a saved export is reused, the flags' checks and the tuned pipeline's batch."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_inference  # noqa: E402
import inference_exports  # noqa: E402
from inference_exports import drop_refused, export_of, reusable_export  # noqa: E402

ALL = ["torch-fp32", "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-bf16", "torch-bf16"]


def test_every_openvino_variant_runs_the_one_openvino_export():
    assert export_of("openvino-fp32") == export_of("openvino-bf16") == "openvino"
    assert export_of("onnx-int8-static") == "onnx-int8-static"
    assert export_of("torch-bf16") is None and export_of("pipeline-bf16-2x1") is None


def test_a_refused_openvino_export_drops_every_openvino_variant():
    kept = drop_refused(ALL, {"openvino": "max |dp| too large"})
    assert kept == ["torch-fp32", "onnx-fp32", "onnx-int8", "torch-bf16"]


def test_a_refused_onnx_export_drops_only_the_variants_on_it():
    kept = drop_refused(ALL, {"onnx-int8": "label agreement too low"})
    assert kept == ["torch-fp32", "onnx-fp32", "openvino-fp32", "openvino-bf16", "torch-bf16"]


def _saved(tmp_path, name="openvino", fmt="openvino", **report):
    out = tmp_path / name
    out.mkdir()
    (out / ("openvino_model.xml" if fmt == "openvino" else "model.onnx")).write_text("x")
    fields = {"passed": True, "source_version": "m-abc", "format": fmt, "quantize": None}
    fields.update(report)
    (out / "export_report.json").write_text(json.dumps(fields))
    return out


def test_a_verified_export_of_the_same_model_is_reused(tmp_path):
    assert reusable_export(_saved(tmp_path), "openvino", None, "m-abc")


@pytest.mark.parametrize(
    "report",
    [{"passed": False}, {"source_version": "other-model"}, {"quantize": "int8"}],
    ids=["refused", "another-model", "another-quantization"],
)
def test_a_refused_or_foreign_export_is_not_reused(tmp_path, report):
    assert not reusable_export(_saved(tmp_path, **report), "openvino", None, "m-abc")


def test_weights_without_a_report_are_not_reused(tmp_path):
    out = _saved(tmp_path, "onnx-fp32", "onnx")
    (out / "export_report.json").unlink()
    assert not reusable_export(out, "onnx", None, "m-abc")


def test_exports_keys_refusals_by_export_and_redoes_a_refused_folder(tmp_path, monkeypatch):
    from reviewsense.errors import ModelError
    from reviewsense.inference import export, predictor

    _saved(tmp_path, passed=False)  # left behind by an earlier refused export
    _saved(tmp_path, "onnx-fp32", "onnx")  # verified, same model: reused
    calls = []

    def fake_export(model_dir, out, quantize=None, fmt="onnx", **kw):
        calls.append(out.name)
        raise ModelError("verification failed")

    monkeypatch.setattr(export, "export_onnx", fake_export)
    monkeypatch.setattr(predictor, "model_version", lambda d: "m-abc")
    refused: dict = {}
    variants = ["torch-fp32", "onnx-fp32", "openvino-fp32", "openvino-bf16"]
    dirs = inference_exports.prepare_exports(variants, tmp_path / "model", tmp_path, 1, refused)
    assert calls == ["openvino"]  # exported once for both openvino variants, not reused
    assert set(refused) == {"openvino"} and dirs == {"onnx-fp32": tmp_path / "onnx-fp32"}
    assert drop_refused(variants, refused) == ["torch-fp32", "onnx-fp32"]


def _args(*argv: str) -> argparse.Namespace:
    return bench_inference.parser().parse_args(list(argv))


@pytest.mark.parametrize("flag", ["--n", "--threads", "--batch-size", "--latency-n", "--rounds"])
def test_counts_below_one_are_refused(flag):
    with pytest.raises(SystemExit, match=f"{flag} must be at least 1"):
        bench_inference.check_args(_args(flag, "0"))


def test_unknown_variants_are_refused_and_the_reference_is_added():
    with pytest.raises(SystemExit, match="unknown variants"):
        bench_inference.check_args(_args("--variants", "torch-bf16,tensorrt"))
    assert bench_inference.check_args(_args("--variants", "torch-bf16")) == [
        "torch-fp32",
        "torch-bf16",
    ]


def test_threads_and_batch_size_have_help_with_defaults():
    text = bench_inference.parser().format_help()
    assert "intra-op threads" in text and "texts per forward pass" in text
    assert "(default 2)" in text and "(default 32)" in text


@pytest.mark.parametrize("bf16, batch", [(True, 8), (False, None)])
def test_the_tuned_pipeline_runs_at_batch_size(monkeypatch, bf16, batch):
    import torch
    import transformers

    from reviewsense import rundir

    seen = {}

    def fake_pipeline(task, **kw):
        def pipe(texts, **call):
            seen.update(call)
            return [{"label": "positive", "score": 0.9} for _ in texts]

        return pipe

    # transformers is a lazy module: `from transformers import pipeline` reads the submodule's
    monkeypatch.setattr(transformers.pipelines, "pipeline", fake_pipeline)
    monkeypatch.setattr(transformers, "pipeline", fake_pipeline)
    monkeypatch.setattr(rundir, "read_model_settings", lambda d: argparse.Namespace(max_length=64))
    args = argparse.Namespace(
        threads=torch.get_num_threads(), model_dir="m", device="cpu", batch_size=8
    )
    bench_inference._pipeline(args, bf16=bf16)(["a", "b"])
    assert seen.get("batch_size") == batch
