"""Export a model folder to ONNX, optimise it for ONNX Runtime, optionally quantize to int8.

Steps (:func:`export_onnx`):

1. ``torch.onnx.export`` (TorchScript exporter; the dynamo exporter needs ``onnxscript``,
   which is not a dependency) of the eager-attention model with dynamic batch and sequence
   axes: inputs ``input_ids`` / ``attention_mask`` [batch, sequence] int64, output ``logits``
   [batch, 2] float32.
2. ONNX Runtime transformer graph optimisation (``onnxruntime.transformers.optimizer``:
   fused attention, LayerNorm, GELU); falls back to ONNX Runtime's own session-level
   optimisation when the fusion tool fails.
3. ``--quantize int8``: dynamic int8 quantization of the MatMul weights
   (``onnxruntime.quantization.quantize_dynamic``; activations quantized per batch at run time).
4. The folder is made self-contained: ``model.onnx``, ``config.json`` (with the ``reviewsense``
   settings and a ``reviewsense_export`` record), tokenizer files.
5. Verification against the PyTorch fp32 model on sample reviews (built-in or a file):
   ``export_report.json``; :class:`ModelError` when outside the tolerance below.

Tolerances (probabilities in [0, 1]):

- fp32: max |Δp| ≤ 1e-3 (labels then agree except within 1e-3 of the 0.5 boundary).
- int8: max |Δp| ≤ 0.10, mean |Δp| ≤ 0.02 and label agreement ≥ 0.95 on the *decisive*
  samples — those whose fp32 probability is more than the max |Δp| tolerance from 0.5 (a flip
  closer to the boundary is within the allowed probability error). Raw agreement is reported
  too.
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

import numpy as np

from reviewsense import rundir
from reviewsense.errors import ModelError
from reviewsense.inference.predictor import ONNX_FILE, Predictor, model_version

log = logging.getLogger(__name__)

REPORT_FILE = "export_report.json"
EXPORT_KEY = "reviewsense_export"  # record inside the exported config.json
OPSET = 17
QUANTIZE_MODES = (None, "int8")


@dataclass(frozen=True)
class Tolerance:
    """Limits the exported model must meet against PyTorch fp32 (probabilities)."""

    max_abs_diff: float
    mean_abs_diff: float
    min_label_agreement: float  # on decisive samples (see module docstring)


TOLERANCES = {
    "fp32": Tolerance(max_abs_diff=1e-3, mean_abs_diff=1e-3, min_label_agreement=1.0),
    "int8": Tolerance(max_abs_diff=0.10, mean_abs_diff=0.02, min_label_agreement=0.95),
}

# Varied reviews for the built-in verification: short, long (beyond max_length), mixed,
# negated, sarcastic, non-English, punctuation-only and numbers.
SAMPLE_REVIEWS: tuple[str, ...] = (
    "A masterpiece. I loved every minute of it.",
    "Terrible. Boring plot, wooden acting, and a pointless ending.",
    "Not bad at all, actually quite good.",
    "I wanted to like this film, but it was a complete waste of time.",
    "The cinematography is stunning and the score gave me chills.",
    "Oh great, another two hours of my life I will never get back.",
    "It's fine. Nothing special, nothing awful.",
    "Worst movie I have ever seen!!!",
    "An absolute delight for the whole family; the kids laughed from start to finish.",
    "The first half drags, but the last act is brilliant and makes it all worthwhile.",
    "Une histoire magnifique, des acteurs formidables.",
    "Die Handlung war langweilig und die Schauspieler waren schlecht.",
    "10/10 would watch again",
    "1/10. Avoid.",
    "?!?! ...",
    "meh",
    "The director clearly had a vision, and the cast commits to it completely. " * 12,
    "I kept checking my watch. The dialogue is clumsy, the jokes fall flat, and the twist is "
    "visible from the opening scene. " * 10,
    "At first I thought this would be another forgettable sequel, with the same tired jokes and "
    "the same recycled villains. " * 8 + "But by the end I was won over: it is wonderful.",
    "Great actors, great director, great budget. " * 10 + "Shame the film itself is awful.",
    "My grandmother recommended it and she was right, as always.",
    "The special effects were cheap but honestly that added to the charm.",
    "Save your money.",
    "A slow, thoughtful drama that rewards patience.",
)


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
    onnx_mb: float  # model.onnx size on disk (MiB)
    source_mb: float  # model.safetensors size on disk (MiB)
    export_s: float
    n_samples: int
    max_abs_diff: float  # max |p_onnx - p_torch| over samples (P(positive))
    mean_abs_diff: float
    label_agreement: float  # over all samples
    decisive_samples: int  # samples with |p_torch - 0.5| > tolerance.max_abs_diff
    decisive_label_agreement: float
    tolerance: dict = field(default_factory=dict)
    passed: bool = False
    failures: list[str] = field(default_factory=list)

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


def _quantize_int8(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference;
    # their outputs are float32, which DefaultTensorType tells the quantizer.
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,  # one scale per output channel: per-tensor int8 drifted up to 0.33 in P on the fine-tuned MiniLM
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _write_folder(model_dir: Path, out: Path, record: dict) -> None:
    """config.json (+ export record) and tokenizer files next to model.onnx."""
    from transformers import AutoTokenizer

    cfg = json.loads((model_dir / rundir.MODEL_CONFIG).read_text(encoding="utf-8"))
    cfg[EXPORT_KEY] = record
    (out / rundir.MODEL_CONFIG).write_text(
        json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)


def compare(
    reference: Sequence[float], candidate: Sequence[float], tol: Tolerance
) -> tuple[dict, list[str]]:
    """Compare P(positive) of a candidate with the reference.

    Returns:
        (metrics dict, list of failure messages — empty when within ``tol``)
    """
    ref, cand = np.asarray(reference, float), np.asarray(candidate, float)
    diff = np.abs(ref - cand)
    agree = (ref >= 0.5) == (cand >= 0.5)
    decisive = np.abs(ref - 0.5) > tol.max_abs_diff
    m = {
        "n_samples": int(ref.size),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "label_agreement": float(agree.mean()),
        "decisive_samples": int(decisive.sum()),
        "decisive_label_agreement": float(agree[decisive].mean()) if decisive.any() else 1.0,
    }
    failures = []
    if m["max_abs_diff"] > tol.max_abs_diff:
        failures.append(f"max |Δp| {m['max_abs_diff']:.4g} > {tol.max_abs_diff:g}")
    if m["mean_abs_diff"] > tol.mean_abs_diff:
        failures.append(f"mean |Δp| {m['mean_abs_diff']:.4g} > {tol.mean_abs_diff:g}")
    if m["decisive_label_agreement"] < tol.min_label_agreement:
        failures.append(
            f"label agreement {m['decisive_label_agreement']:.3f} on "
            f"{m['decisive_samples']} decisive samples < {tol.min_label_agreement:g}"
        )
    return m, failures


def export_onnx(
    model_dir: str | Path,
    output: str | Path,
    quantize: str | None = None,
    verify_texts: Sequence[str] | None = None,
    num_threads: int | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Export, optimise, optionally quantize and verify (see module docstring).

    Args:
        model_dir: run directory or model folder.
        output: folder to write (created; must be empty or absent unless ``overwrite``).
        quantize: None or "int8".
        verify_texts: reviews to verify on (default: :data:`SAMPLE_REVIEWS`).
        num_threads: threads for the verification runs.
        overwrite: replace an existing non-empty output folder.

    Returns:
        The report (also written to ``output/export_report.json``).

    Raises:
        ModelError: bad arguments, export failure, or verification outside tolerance (the
            folder and report are still written, with ``passed: false``).
    """
    if quantize not in QUANTIZE_MODES:
        raise ModelError(f"--quantize must be int8 or absent, got {quantize!r}")
    src = rundir.resolve_model_dir(model_dir)
    if not (src / "model.safetensors").is_file():
        raise ModelError(f"{src} has no model.safetensors (export needs the PyTorch weights)")
    out = Path(output)
    if out.resolve() == src.resolve():
        raise ModelError("--output must differ from the model folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ModelError(f"{out} exists and is not empty (pass --overwrite to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    texts = list(verify_texts) if verify_texts is not None else list(SAMPLE_REVIEWS)
    if not texts:
        raise ModelError("no texts to verify the export on")
    precision = "int8" if quantize == "int8" else "fp32"
    tol = TOLERANCES[precision]

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reviewsense-export-") as tmp:
        raw, opt = Path(tmp) / "raw.onnx", Path(tmp) / "opt.onnx"
        with _quiet():
            try:
                cfg = _export_raw(src, raw)
            except Exception as e:  # exporter errors are many and untyped
                raise ModelError(f"ONNX export of {src} failed: {type(e).__name__}: {e}") from e
            optimizer = _optimize(raw, opt, cfg)
            if quantize == "int8":
                _quantize_int8(opt, out / ONNX_FILE)
            else:
                shutil.copyfile(opt, out / ONNX_FILE)
    record = {"format": "onnx", "quantize": quantize, "opset": OPSET, "optimizer": optimizer}
    record["source_version"] = model_version(src)
    _write_folder(src, out, record)
    export_s = time.perf_counter() - t0

    # Verify with the model's own truncation on both sides.
    ref = Predictor.from_pretrained(src, backend="torch", precision="fp32", num_threads=num_threads)
    cand = Predictor.from_pretrained(out, backend="onnx", num_threads=num_threads)
    p_ref = [p.prob_positive for p in ref.predict(texts)]
    p_cand = [p.prob_positive for p in cand.predict(texts)]
    metrics, failures = compare(p_ref, p_cand, tol)

    report = ExportReport(
        source=str(src),
        source_version=record["source_version"],
        output=str(out),
        model_version=cand.model_version,
        quantize=quantize,
        precision=precision,
        opset=OPSET,
        optimizer=optimizer,
        onnx_mb=(out / ONNX_FILE).stat().st_size / 2**20,
        source_mb=(src / "model.safetensors").stat().st_size / 2**20,
        export_s=export_s,
        tolerance=asdict(tol),
        passed=not failures,
        failures=failures,
        **metrics,
    )
    (out / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    if failures:
        raise ModelError(
            f"exported {precision} model in {out} is outside tolerance vs PyTorch fp32: "
            f"{'; '.join(failures)} (see {out / REPORT_FILE})"
        )
    return report
