"""Export a model folder to ONNX (ONNX Runtime, optionally int8) or OpenVINO IR, verified.

Steps (:func:`export_onnx`):

1. ``torch.onnx.export`` (TorchScript exporter; the dynamo exporter needs ``onnxscript``,
   which is not a dependency) of the eager-attention model with dynamic batch and sequence
   axes: inputs ``input_ids`` / ``attention_mask`` [batch, sequence] int64, output ``logits``
   [batch, 2] float32.
2. ``--format onnx``: ONNX Runtime transformer graph optimisation
   (``onnxruntime.transformers.optimizer``: fused attention, LayerNorm, GELU; falls back to
   ONNX Runtime's own session-level optimisation when the fusion tool fails), then with
   ``--quantize int8`` dynamic int8 quantization of the MatMul weights (per channel), or
   ``--quantize int8-static`` (activation ranges calibrated on training reviews).
   ``--format openvino``: ``openvino.convert_model`` of the plain graph (OpenVINO fuses it
   itself; no torch needed to run it).
3. The folder is made self-contained: weights, ``config.json`` (with the ``reviewsense``
   settings and a ``reviewsense_export`` record), tokenizer files.
4. Verification against the PyTorch fp32 model on real reviews (:mod:`.verify`: 500 IMDb test
   reviews when the data is there, or ``--verify-file``): ``export_report.json`` with label
   agreement and max / p99 / mean |Δp|; :class:`ModelError` when outside the tolerance
   (:data:`.verify.TOLERANCES`) or when label agreement is below ``--min-agreement``
   (default 0.99). An OpenVINO export on a CPU that is fast at bf16 (AMX or avx512_bf16) is
   then checked under the bf16 hint too, which ``auto`` runs there: the record goes to the
   report and the export record (``bf16_verification``); where it fails, ``auto`` runs f32.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reviewsense import rundir
from reviewsense.errors import ModelError
from reviewsense.inference.backends import EXPORT_KEY, ONNX_FILE, OPENVINO_FILE
from reviewsense.inference.predictor import Predictor, model_version
from reviewsense.inference.quantize import (
    QUANTIZE_MODES,
    quantize_dynamic_int8,
    quantize_static_int8,
)
from reviewsense.inference.verify import (
    MIN_AGREEMENT,
    SAMPLE_REVIEWS,
    TOLERANCES,
    Tolerance,
    compare,
    default_texts,
    torch_probs,
    verify_predictor,
)
from reviewsense.runtime import cpu_has_fast_bf16

log = logging.getLogger(__name__)

REPORT_FILE = "export_report.json"
OPSET = 17
FORMATS = ("onnx", "openvino")

__all__ = ["SAMPLE_REVIEWS", "TOLERANCES", "Tolerance", "compare", "export_onnx"]


@dataclass
class ExportReport:
    """What ``export_report.json`` holds."""

    source: str
    source_version: str
    output: str
    model_version: str
    quantize: str | None
    precision: str  # fp32 | int8
    opset: int
    optimizer: str  # which graph optimisation was applied
    onnx_mb: float  # exported weights on disk (MiB): model.onnx or openvino_model.bin
    source_mb: float  # model.safetensors size on disk (MiB)
    export_s: float
    n_samples: int
    max_abs_diff: float  # max |p_onnx - p_torch| over samples (P(positive))
    p99_abs_diff: float  # its 99th percentile (what lossy precisions are held to)
    mean_abs_diff: float
    label_agreement: float  # over all samples
    decisive_samples: int  # samples with |p_torch - 0.5| > tolerance.dp_limit
    decisive_label_agreement: float
    tolerance: dict = field(default_factory=dict)
    passed: bool = False
    failures: list[str] = field(default_factory=list)
    format: str = "onnx"  # onnx | openvino
    verify_source: str = ""  # which reviews the verification ran on
    verify_skipped_rows: int = 0  # rows of --verify-file that could not be scored (left out)
    min_agreement: float = MIN_AGREEMENT
    # OpenVINO where this CPU is fast at bf16: the bf16 hint checked the same way (bf16 limits);
    # also in the folder's export record, where a failure makes `auto` run f32. None: not run.
    bf16_verification: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _logits_only(model):
    """Wrap a sequence classifier so the exported graph has one output, ``logits``."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):  # [B, T] int64 each -> [B, 2]
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    return LogitsOnly(model).eval()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's tracer warnings and ONNX Runtime's INFO chatter (root logger,
    fusion loggers) unless debug logging is on."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    loggers = [logging.getLogger(n) for n in ("", "fusion_base", "onnx_model", "fusion_utils")]
    loggers += [logging.getLogger(n) for n in ("onnx_model_bert", "fusion_options")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export_raw(model_dir: Path, path: Path) -> dict:
    """torch → ONNX at ``path``. Returns the HF config as a dict (num heads, hidden size)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    # Eager attention exports the plain MatMul/Softmax pattern that ORT's fuser recognises.
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    wrapped = _logits_only(model)
    ids = torch.ones((2, 16), dtype=torch.long)  # [batch, sequence] dummy input
    mask = torch.ones((2, 16), dtype=torch.long)
    dyn = {0: "batch", 1: "sequence"}
    with torch.inference_mode():
        torch.onnx.export(
            wrapped,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "logits": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return model.config.to_dict()


def _dims(cfg: dict) -> tuple[int, int]:
    """(attention heads, hidden size) for BERT- and DistilBERT-style configs."""
    heads = cfg.get("num_attention_heads") or cfg.get("n_heads") or 0
    hidden = cfg.get("hidden_size") or cfg.get("dim") or 0
    return int(heads), int(hidden)


def _optimize(raw: Path, out: Path, cfg: dict) -> str:
    """Write the optimised graph to ``out``; return which optimiser was used."""
    heads, hidden = _dims(cfg)
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        opt = optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden)
        opt.save_model_to_file(str(out))
        fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        log.info("transformer fusion: %s", fused)
        return "onnxruntime.transformers (bert fusion)"
    except Exception as e:  # the fusion tool is best-effort: fall back to ORT's own passes
        log.warning("transformer fusion failed (%s); using ORT extended graph optimisation", e)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(out)
    ort.InferenceSession(str(raw), opts, providers=["CPUExecutionProvider"])
    return "onnxruntime session (extended)"


def _write_folder(model_dir: Path, out: Path, record: dict) -> None:
    """config.json (+ export record) and tokenizer files next to model.onnx."""
    from transformers import AutoTokenizer

    _write_config(model_dir, out, record)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)


def _write_config(model_dir: Path, out: Path, record: dict) -> None:
    """The source's config.json with ``record`` as its export record, into ``out``."""
    cfg = json.loads((model_dir / rundir.MODEL_CONFIG).read_text(encoding="utf-8"))
    cfg[EXPORT_KEY] = record
    (out / rundir.MODEL_CONFIG).write_text(
        json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def _to_openvino(raw: Path, out: Path) -> str:
    """OpenVINO IR (``openvino_model.xml/.bin``, fp32 weights) from the plain ONNX graph.

    The plain graph, not ORT's fused one: OpenVINO does its own fusion and does not know ORT's
    contrib ops (Attention, SkipLayerNormalization).
    """
    try:
        import openvino as ov
    except ImportError:
        raise ModelError(
            "--format openvino needs the `openvino` package (.venv/bin/pip install openvino)"
        ) from None
    model = ov.convert_model(str(raw))
    ov.save_model(model, str(out / OPENVINO_FILE), compress_to_fp16=False)
    return f"openvino {ov.__version__} convert_model"


def _prepare_output(src: Path, output: str | Path, overwrite: bool) -> Path:
    out = Path(output)
    if out.resolve() == src.resolve():
        raise ModelError("--output must differ from the model folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ModelError(f"{out} exists and is not empty (pass --overwrite to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _convert(src: Path, out: Path, fmt: str, quantize: str | None) -> str:
    """Write the weights of format ``fmt`` into ``out``; return which optimiser ran."""
    with tempfile.TemporaryDirectory(prefix="reviewsense-export-") as tmp:
        raw, opt = Path(tmp) / "raw.onnx", Path(tmp) / "opt.onnx"
        with _quiet():
            try:
                cfg = _export_raw(src, raw)
            except Exception as e:  # exporter errors are many and untyped
                raise ModelError(f"ONNX export of {src} failed: {type(e).__name__}: {e}") from e
            if fmt == "openvino":
                return _to_openvino(raw, out)
            if quantize == "int8-static":  # the plain graph: ORT fuses the QDQ one at load
                quantize_static_int8(raw, out / ONNX_FILE, src)
                return "onnxruntime quantize_static (QDQ, MinMax calibration)"
            optimizer = _optimize(raw, opt, cfg)
            if quantize == "int8":
                quantize_dynamic_int8(opt, out / ONNX_FILE)
            else:
                shutil.copyfile(opt, out / ONNX_FILE)
    return optimizer


def _verification_texts(verify_texts: Sequence[str] | None) -> tuple[list[str], str]:
    if verify_texts is None:
        texts, source = default_texts()
    else:
        texts, source = list(verify_texts), "given reviews"
    if not texts:
        raise ModelError("no texts to verify the export on")
    return texts, source


def _check_args(quantize: str | None, fmt: str, min_agreement: float) -> None:
    if quantize not in QUANTIZE_MODES:
        raise ModelError(f"--quantize must be int8, int8-static or absent, got {quantize!r}")
    if fmt not in FORMATS:
        raise ModelError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "openvino" and quantize:
        raise ModelError("--quantize int8 is for --format onnx; OpenVINO exports are fp32")
    if not 0.0 <= min_agreement <= 1.0:
        raise ModelError(f"--min-agreement must be within 0..1, got {min_agreement}")


def export_onnx(
    model_dir: str | Path,
    output: str | Path,
    quantize: str | None = None,
    verify_texts: Sequence[str] | None = None,
    num_threads: int | None = None,
    overwrite: bool = False,
    fmt: str = "onnx",
    min_agreement: float = MIN_AGREEMENT,
    verify_skipped_rows: int = 0,
) -> ExportReport:
    """Export, optimise, optionally quantize and verify (see module docstring).

    Args:
        model_dir: run directory, checkpoint or model folder.
        output: folder to write (created; must be empty or absent unless ``overwrite``).
        quantize: None, "int8" (dynamic) or "int8-static" (calibrated; :mod:`.quantize`).
        verify_texts: reviews to verify on (default: 500 IMDb test reviews when the local
            data is there, else the built-in samples; ``verify.default_texts``).
        num_threads: threads for the verification runs.
        overwrite: replace an existing non-empty output folder.
        fmt: "onnx" (ONNX Runtime) or "openvino" (OpenVINO IR).
        min_agreement: least label agreement with PyTorch fp32 over all verification reviews.
        verify_skipped_rows: rows of the caller's verification file left out of
            ``verify_texts`` as unscorable (recorded in the report).

    Returns:
        The report (also written to ``output/export_report.json``).

    Raises:
        ModelError: bad arguments, export failure, or verification outside tolerance (the
            folder and report are still written, with ``passed: false``).
    """
    _check_args(quantize, fmt, min_agreement)
    src = rundir.resolve_model_dir(model_dir)
    if not (src / "model.safetensors").is_file():
        raise ModelError(f"{src} has no model.safetensors (export needs the PyTorch weights)")
    out = _prepare_output(src, output, overwrite)
    texts, texts_source = _verification_texts(verify_texts)
    precision = "int8" if quantize else "fp32"
    t0 = time.perf_counter()
    optimizer = _convert(src, out, fmt, quantize)
    record = {"format": fmt, "quantize": quantize, "opset": OPSET, "optimizer": optimizer}
    record["source_version"] = model_version(src)
    _write_folder(src, out, record)
    export_s = time.perf_counter() - t0

    metrics, failures, cand, bf16_check = _verify(
        src, out, record, texts, precision, min_agreement, num_threads
    )
    weights = out / (ONNX_FILE if fmt == "onnx" else OPENVINO_FILE.replace(".xml", ".bin"))
    report = ExportReport(
        source=str(src),
        source_version=record["source_version"],
        output=str(out),
        model_version=cand.model_version,
        quantize=quantize,
        precision=precision,
        opset=OPSET,
        optimizer=optimizer,
        onnx_mb=weights.stat().st_size / 2**20,
        source_mb=(src / "model.safetensors").stat().st_size / 2**20,
        export_s=export_s,
        tolerance=asdict(TOLERANCES[precision]),
        passed=not failures,
        failures=failures,
        format=fmt,
        verify_source=texts_source,
        verify_skipped_rows=verify_skipped_rows,
        min_agreement=min_agreement,
        bf16_verification=bf16_check,
        **metrics,
    )
    (out / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    _refuse_if_failed(out, precision, failures)
    return report


def _verify(
    src: Path,
    out: Path,
    record: dict,
    texts: list[str],
    precision: str,
    min_agreement: float,
    num_threads: int | None,
) -> tuple[dict, list[str], Predictor, dict | None]:
    """Step 4: the exported folder vs PyTorch fp32 on ``texts``, fp32 reference scored once.

    Returns (metrics, failures, the candidate Predictor, the OpenVINO bf16 record or None).
    """
    fmt = record["format"]
    # The candidate in fp32 (OpenVINO: f32 hint) so the check is of the conversion itself.
    cand = Predictor.from_pretrained(
        out,
        backend=fmt,
        precision="fp32" if fmt == "openvino" else "auto",
        num_threads=num_threads,
    )
    p_ref = torch_probs(src, "fp32", texts, num_threads)  # the reference of every check
    metrics, failures = verify_predictor(
        src, cand, texts, precision, min_agreement, num_threads, p_ref=p_ref
    )
    bf16_check = None
    if fmt == "openvino" and not failures:
        bf16_check = _check_openvino_bf16(
            src, out, record, texts, p_ref, min_agreement, num_threads
        )
    return metrics, failures, cand, bf16_check


def _check_openvino_bf16(
    src: Path,
    out: Path,
    record: dict,
    texts: list[str],
    p_ref: list[float],
    min_agreement: float,
    num_threads: int | None,
) -> dict | None:
    """Where this CPU is fast at bf16, the OpenVINO folder under the bf16 hint vs PyTorch fp32
    (``TOLERANCES["bf16"]``): what ``auto`` runs here (``backends.load_runner``), so it is
    checked like the torch bf16 path (``verify.record_bf16_check``). The record (metrics,
    passed, failures) is added to the folder's config.json and returned; None: not run.
    ``p_ref``: PyTorch fp32 P(positive) of ``texts`` (computed once by :func:`export_onnx`)."""
    if not cpu_has_fast_bf16():
        return None
    cand = Predictor.from_pretrained(
        out, backend="openvino", precision="bf16", num_threads=num_threads
    )
    metrics, failures = verify_predictor(
        src, cand, texts, "bf16", min_agreement, num_threads, p_ref=p_ref
    )
    log.info(
        "OpenVINO bf16 vs PyTorch fp32 on %d reviews: agreement %.4f, p99 |dp| %.3g%s",
        len(texts), metrics["label_agreement"], metrics["p99_abs_diff"],
        f" — FAILED ({'; '.join(failures)}): `auto` runs f32" if failures else "",
    )  # fmt: skip
    check = {"passed": not failures, "failures": failures, **metrics}
    _write_config(src, out, {**record, "bf16_verification": check})
    return check


def _refuse_if_failed(out: Path, precision: str, failures: list[str]) -> None:
    """Raise for a failed verification, first renaming the weights to ``*.refused``.

    Predictor and the `auto` backend treat a folder with weights as verified, so a refused
    export keeps its weights for inspection only, under a name nothing loads.
    """
    if not failures:
        return
    for name in (ONNX_FILE, OPENVINO_FILE, OPENVINO_FILE.replace(".xml", ".bin")):
        if (out / name).is_file():
            (out / name).replace(out / f"{name}.refused")
    raise ModelError(
        f"exported {precision} model in {out} is outside tolerance vs PyTorch fp32: "
        f"{'; '.join(failures)} (see {out / REPORT_FILE})"
    )
