"""int8 quantization of an exported ONNX graph: dynamic (weights only) or static (calibrated).

- ``int8`` (dynamic): MatMul weights int8 per output channel; activations are quantized per
  batch at run time from their observed range. No data needed.
- ``int8-static``: weights *and* activation scales fixed ahead of time from a calibration run
  over :data:`CALIBRATION_N` IMDb *training* reviews (never the test reviews the export is
  verified on), QDQ format, MinMax ranges. Saves the per-batch range computation at run time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from reviewsense.errors import ModelError

log = logging.getLogger(__name__)

QUANTIZE_MODES = (None, "int8", "int8-static")
CALIBRATION_N = 300  # training reviews for static activation ranges


def quantize_dynamic_int8(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference;
    # their outputs are float32, which DefaultTensorType tells the quantizer.
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        # one scale per output channel: per-tensor int8 drifted up to 0.33 in P on the
        # fine-tuned MiniLM
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def calibration_batches(model_dir: Path, n: int = CALIBRATION_N) -> list[dict[str, np.ndarray]]:
    """Model inputs ([1, T] int64 each) of ``n`` IMDb training reviews, the model's truncation."""
    from transformers import AutoTokenizer

    from reviewsense import rundir
    from reviewsense.inference.verify import default_texts
    from reviewsense.truncation import encode_texts

    texts, source = default_texts(n, split="train")
    log.info("static int8: calibrating on %s", source)
    s = rundir.read_model_settings(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = encode_texts(tok, texts, s.max_length, s.truncation, s.head_tokens)
    return [
        {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        }
        for ids in enc["input_ids"]
    ]


def quantize_static_int8(src: Path, dst: Path, model_dir: Path) -> None:
    """Static QDQ int8 of the plain graph ``src`` calibrated on training reviews."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self, batches: list[dict[str, np.ndarray]]) -> None:
            self._it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    batches = calibration_batches(model_dir)
    if not batches:
        raise ModelError("static int8 needs calibration reviews; none were found")
    quantize_static(
        str(src),
        str(dst),
        Reader(batches),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=["MatMul", "Gemm", "Gather"],  # LayerNorm/Softmax/GELU stay fp32
    )
