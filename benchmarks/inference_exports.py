"""``bench_inference.py``'s exports: the ONNX / OpenVINO folders its variants run on.

Every ``onnx-*`` variant has its own export and every ``openvino-*`` variant runs the one
"openvino" (:data:`EXPORTS`, :func:`export_of`). :func:`prepare_exports` exports and verifies them,
reusing a folder of ``--work-dir`` only where :func:`reusable_export` says it passed and was
made from the same model; an export its own verification refuses is recorded, and
:func:`drop_refused` leaves out the variants on it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("bench_inference")


# Export folder name -> (format, quantize); every openvino-* variant runs the one "openvino".
EXPORTS = {
    "onnx-fp32": ("onnx", None),
    "onnx-int8": ("onnx", "int8"),
    "onnx-int8-static": ("onnx", "int8-static"),
    "openvino": ("openvino", None),
}


def export_of(variant: str) -> str | None:
    """The export (key of :data:`EXPORTS`) ``variant`` runs on; None: the PyTorch folder."""
    if variant.startswith("openvino-"):
        return "openvino"
    return variant if variant in EXPORTS else None


def drop_refused(variants: list[str], refused: dict) -> list[str]:
    """``variants`` without those whose export (``refused``: export name -> why) was refused."""
    return [v for v in variants if export_of(v) not in refused]


def reusable_export(out: Path, fmt: str, quantize: str | None, source_version: str) -> bool:
    """Whether ``out`` holds an export to reuse: its weights, and an ``export_report.json``
    that says it passed verification and was made, this way, from the same model."""
    from reviewsense.inference.backends import ONNX_FILE, OPENVINO_FILE
    from reviewsense.inference.export import REPORT_FILE

    weights = ONNX_FILE if fmt == "onnx" else OPENVINO_FILE
    if not (out / weights).is_file() or not (out / REPORT_FILE).is_file():
        return False
    try:
        report = json.loads((out / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        report.get("passed") is True
        and report.get("source_version") == source_version
        and report.get("format", "onnx") == fmt
        and report.get("quantize") == quantize
    )


def prepare_exports(
    variants: list[str], model_dir: Path, work: Path, threads: int, refused: dict
) -> dict:
    """Export (and verify) the ONNX / OpenVINO folders the variants need, reusing a folder of
    ``work`` only where :func:`reusable_export` says so; returns export name -> folder.

    An export its own verification refuses is recorded in ``refused`` (export name -> reason).
    """
    from reviewsense.errors import ModelError
    from reviewsense.inference.export import export_onnx
    from reviewsense.inference.predictor import model_version

    version = model_version(model_dir)
    dirs = {}
    for key in dict.fromkeys(e for e in map(export_of, variants) if e):
        fmt, quantize = EXPORTS[key]
        out = work / key
        if reusable_export(out, fmt, quantize, version):
            log.info("%s: reusing the verified export in %s", key, out)
        else:
            # min_agreement 0: the benchmark records max_dp itself; a random head sits near 0.5.
            try:
                export_onnx(
                    model_dir,
                    out,
                    quantize=quantize,
                    fmt=fmt,
                    num_threads=threads,
                    min_agreement=0.0,
                    overwrite=True,
                )
            except ModelError as e:  # refused by its own verification: not a usable variant
                log.warning("%s: export refused, its variants skipped: %s", key, e)
                refused[key] = str(e)
                continue
        dirs[key] = out
    return dirs
