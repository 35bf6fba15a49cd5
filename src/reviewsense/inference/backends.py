"""Logits runners: PyTorch, ONNX Runtime and OpenVINO behind one call signature.

A runner maps ``(input_ids [B, T] int64, attention_mask [B, T] int64)`` to ``logits [B, L]``
float32 numpy. :func:`load_runner` builds the one a :class:`~reviewsense.inference.Predictor`
uses and says which backend/precision it ended up with.

Folder formats:

- a Hugging Face model folder (``model.safetensors``): ``torch`` (fp32 or bf16);
- ``reviewsense export --format onnx``: ``model.onnx`` (fp32 or int8), ONNX Runtime;
- ``reviewsense export --format openvino``: ``openvino_model.xml/.bin``, OpenVINO (no torch at
  run time); bf16 is an inference hint, taken by "auto" where the CPU has AMX or avx512_bf16.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reviewsense import rundir
from reviewsense.errors import ModelError
from reviewsense.inference.attention import KERNELS as ATTENTION_KERNELS
from reviewsense.inference.attention import choose_kernel, use_kernel
from reviewsense.inference.fused import LINEARS, choose_linear, use_linear
from reviewsense.inference.packed import logits_fn
from reviewsense.runtime import cpu_has_fast_bf16, default_device, resolve_precision

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx", "openvino")
PRECISIONS = ("auto", "fp32", "bf16")
ONNX_FILE = "model.onnx"  # an ONNX export holds this instead of model.safetensors
OPENVINO_FILE = "openvino_model.xml"  # + openvino_model.bin (weights)
WEIGHT_FILES = (ONNX_FILE, "openvino_model.bin", "model.safetensors", "pytorch_model.bin")
FORMAT_NAMES = {"torch": "PyTorch", "onnx": "ONNX", "openvino": "OpenVINO"}
EXPORT_KEY = "reviewsense_export"  # record inside an exported folder's config.json

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]


def folder_backend(model_dir: Path) -> str:
    """The backend a folder's weights are for: "openvino", "onnx" or "torch"."""
    if (model_dir / OPENVINO_FILE).is_file():
        return "openvino"
    if (model_dir / ONNX_FILE).is_file():
        return "onnx"
    return "torch"


def _check_backend(backend: str, model_dir: Path, source: str) -> None:
    """Refuse a backend the folder's weights cannot feed, saying how to fix it."""
    has_torch = (model_dir / "model.safetensors").is_file()
    if backend == "torch" and not has_torch:
        kind = folder_backend(model_dir)
        raise ModelError(
            f"{model_dir} is an exported {FORMAT_NAMES[kind]} folder; use --backend {kind}"
        )
    if backend in ("onnx", "openvino") and folder_backend(model_dir) != backend:
        raise ModelError(
            f"{model_dir} has no {ONNX_FILE if backend == 'onnx' else OPENVINO_FILE}; create "
            f"one with `reviewsense export {source} --format {backend} --output DIR` or use "
            "--backend torch"
        )


COMPILE_PAD_MULTIPLE = 64  # compiled graphs: batch widths in 64s, so few graphs are reused


def torch_runner(model_dir: Path, precision: str, device: str, **options) -> Runner:
    """A model folder's PyTorch weights (loaded in fp32) run by :func:`model_runner`;
    ``options``: its ``compile``, ``attention`` and ``linear``."""
    import torch
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load a PyTorch model from {model_dir}: {e}") from None
    return model_runner(model, precision, device, **options)


def model_runner(
    model,
    precision: str,
    device: str,
    compile: bool = False,
    attention: str = "auto",
    linear: str = "auto",
) -> Runner:
    """Eager PyTorch, or with ``compile`` torch.compile (inductor, frozen weights, static shapes),
    for a model in memory (changed in place: cast, kernels, fused layers). ``train`` evaluates a
    copy of the model it trains with it, so its validation figures come from the code
    ``predict`` runs (``reviewsense.train_eval``).

    ``attention``: the attention kernel (:mod:`reviewsense.inference.attention`; "auto" picks
    the measured-faster one for this CPU and precision; compiled models keep SDPA).
    ``linear``: the linear layers (:mod:`reviewsense.inference.fused`; "auto" fuses bias and
    GELU into oneDNN's matmul on CPUs; compiled models keep torch's, inductor fuses them).

    Compiled: every new (batch, width) shape compiles once (seconds to minutes on a busy CPU);
    the Predictor pads widths to :data:`COMPILE_PAD_MULTIPLE` so the set of shapes stays small.
    Measured 1.24x eager bf16 throughput on avx512_bf16 (BENCHMARKS.md).
    """
    import torch

    # bf16: weights and activations in bf16 (LayerNorm/softmax accumulate in fp32 inside the
    # kernels). Measured 1.6x faster than fp32 autocast on AMX, which re-casts every weight on
    # every call; BENCHMARKS.md has the accuracy.
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model.eval().to(device=device, dtype=dtype)
    in_effect = use_kernel(model, choose_kernel(attention, precision, device, compiled=compile))
    log.info("attention kernel: %s (%s)", in_effect, attention)
    linears = use_linear(model, choose_linear(linear, precision, device, compiled=compile))
    log.info("linear layers: %s (%s)", linears, linear)
    if compile:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # weights are constants: folded into the kernels
        model = torch.compile(model, backend="inductor", dynamic=False)
    forward = logits_fn(model, in_effect)  # (ids, mask) -> logits; packed: real tokens only

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        ids = torch.from_numpy(input_ids).to(device)
        mask = torch.from_numpy(attention_mask).to(device)
        with torch.inference_mode():
            logits = forward(ids, mask)  # [B, 2]
        return logits.float().cpu().numpy()

    return run


def onnx_runner(model_dir: Path, num_threads: int | None, static_int8: bool = False) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # The exported graph is already optimised; "basic" keeps loading fast and safe. A static
    # int8 (QDQ) graph is the plain one: "extended" fuses its QDQ pairs into int8 kernels.
    level = "ORT_ENABLE_EXTENDED" if static_int8 else "ORT_ENABLE_BASIC"
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    if num_threads:
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(
            str(model_dir / ONNX_FILE), opts, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelError(f"cannot load {model_dir / ONNX_FILE}: {e}") from None
    names = {i.name for i in sess.get_inputs()}

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        return sess.run(["logits"], {k: v for k, v in feeds.items() if k in names})[0]

    return run


def openvino_runner(model_dir: Path, num_threads: int | None, precision: str) -> Runner:
    """OpenVINO CPU plugin; ``precision`` "bf16" sets the inference precision hint.

    One request at a time with every thread on it. Tried and dropped (AMD EPYC, 2 threads):
    two streams of one thread each on half batches, +4% reviews/s, but one benchmark round in
    ten gave wrong P(positive) for 16 of 1,000 reviews that no rerun reproduced; a speed-up
    that cannot be trusted to be right is not kept (BENCHMARKS.md, "OpenVINO bf16 on AMD").
    """
    try:
        import openvino as ov
    except ImportError:
        raise ModelError(
            "the OpenVINO backend needs the `openvino` package (.venv/bin/pip install openvino)"
        ) from None
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    config["PERFORMANCE_HINT"] = "LATENCY"  # one request at a time, all threads on it
    if num_threads:
        config["INFERENCE_NUM_THREADS"] = num_threads
    config["ENABLE_CPU_PINNING"] = _openvino_pinning(num_threads)
    try:
        compiled = core.compile_model(str(model_dir / OPENVINO_FILE), "CPU", config)
    except Exception as e:  # OpenVINO raises RuntimeError subclasses with long messages
        raise ModelError(f"cannot load {model_dir / OPENVINO_FILE}: {e}") from None
    names = {p.get_any_name() for p in compiled.inputs}
    request = compiled.create_infer_request()

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        out = request.infer({k: v for k, v in feeds.items() if k in names})
        return np.asarray(out[compiled.output(0)], dtype=np.float32)  # [B, 2]

    return run


def _openvino_pinning(num_threads: int | None) -> bool:
    """Whether OpenVINO may pin its threads to cores: only when they take every core of the
    machine. OpenVINO pins from the first core of the process's CPU mask, so several processes
    with fewer threads each (Ray actors, process pools, a ``--threads 1`` predict beside
    another) would all share the same cores. Measured (AMD EPYC, 2 cores, the demo model's
    export, results/scale-out/openvino-pinning-amd/): Ray scoring with 2 actors x 1 thread ran
    at 50.2 rows/s pinned, 75.5 unpinned (1 actor x 2 threads: 76.6). With every core, pinning
    stays (OpenVINO's default): the service ran slower unpinned, 123-125 vs 134-148 reviews/s
    (results/inference/service-lean-client-amd/tried/).
    """
    if num_threads is None:
        return True
    import psutil

    logical = os.cpu_count() or 1
    whole_machine = (
        len(os.sched_getaffinity(0)) >= logical if hasattr(os, "sched_getaffinity") else True
    )
    return whole_machine and num_threads >= (psutil.cpu_count(logical=False) or logical)


def export_record(config: dict) -> dict:
    """The ``reviewsense_export`` record of an exported folder's config.json ({} if none)."""
    return config.get(EXPORT_KEY) or {}


def load_runner(
    model_dir: Path,
    config: dict,
    *,
    backend: str,
    precision: str,
    num_threads: int | None,
    device: str | None,
    source: str,
    compile: bool = False,
    attention: str = "auto",
    linear: str = "auto",
) -> tuple[Runner, str, str]:
    """Build the runner for a model folder.

    Args:
        model_dir: the resolved model folder; ``config``: its config.json as a dict.
        backend: one of :data:`BACKENDS`; "auto" takes the folder's own format (an export is
            only written after it passed verification, see ``export.py``).
        precision: one of :data:`PRECISIONS`; "auto" = bf16 where this CPU (or GPU) is fast
            at it (``runtime.resolve_precision``), else fp32.
        num_threads: intra-op threads (None: library default); ``device``: torch device.
        source: the path the user gave, for messages.
        compile: torch only: torch.compile the model (:func:`torch_runner`).
        attention: torch only: the attention kernel (:func:`torch_runner`).
        linear: torch only: the linear layers, one of ``fused.LINEARS`` (:func:`torch_runner`).

    Returns:
        (runner, backend used, precision used: fp32 | bf16 | int8).
    """
    for name, value, allowed in (
        ("backend", backend, BACKENDS),
        ("precision", precision, PRECISIONS),
        ("attention", attention, ATTENTION_KERNELS),
        ("linear", linear, LINEARS),
    ):
        if value not in allowed:
            raise ModelError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    if backend == "auto":
        backend = folder_backend(model_dir)
    if compile and backend != "torch":
        raise ModelError(f"compile is for the torch backend, not {backend}")
    _check_backend(backend, model_dir, source)
    if backend == "torch":
        import torch

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        if device is None:
            device = default_device()
        requested, precision = precision, resolve_precision(precision, device)
        check = rundir.ModelSettings.from_dict(config.get(rundir.SETTINGS_KEY)).bf16_verification
        if requested == "auto" and precision == "bf16" and _bf16_refused(check, source, "bf16"):
            precision = "fp32"
        runner = torch_runner(
            model_dir, precision, device, compile=compile, attention=attention, linear=linear
        )
        return runner, backend, precision
    if backend == "onnx":
        if precision == "bf16":
            raise ModelError(
                "precision bf16 is for the torch/openvino backends; ONNX runs fp32/int8"
            )
        quantize = export_record(config).get("quantize")
        precision = "int8" if quantize else "fp32"
        runner = onnx_runner(model_dir, num_threads, static_int8=quantize == "int8-static")
        return runner, backend, precision
    # OpenVINO: bf16 wherever torch would take it (AMX or avx512_bf16: 1.8x its f32 path on an
    # AMD EPYC without AMX, results/inference/openvino-amd/) unless its export's check failed.
    precision = _openvino_precision(precision, config, source)
    return openvino_runner(model_dir, num_threads, precision), backend, precision


def _openvino_precision(precision: str, config: dict, source: str) -> str:
    """ "auto": bf16 where this CPU is fast at it, unless the export's bf16 check failed."""
    if precision != "auto":
        return precision
    if not cpu_has_fast_bf16():
        return "fp32"
    check = export_record(config).get("bf16_verification")
    return "fp32" if _bf16_refused(check, source, "OpenVINO bf16") else "bf16"


def _bf16_refused(check: dict | None, source: str, path: str) -> bool:
    """Whether the bf16 check recorded for ``path`` failed (then ``auto`` runs fp32); says why.

    One rule for both records: the torch folder's ``bf16_verification`` (written by ``train``)
    and an OpenVINO export's (written by ``export``)."""
    if not check or check.get("passed") is not False:
        return False
    log.warning(
        "%s: %s failed its verification against PyTorch fp32 (%s); running fp32",
        source,
        path,
        "; ".join(check.get("failures", [])),
    )
    return True


def label_indices(config: dict, path: Path) -> tuple[int, int]:
    """(index of negative, index of positive) in the logits, from config id2label."""
    id2label = {int(k): str(v).lower() for k, v in (config.get("id2label") or {}).items()}
    if len(id2label) != 2:
        raise ModelError(f"{path}: expected 2 labels in id2label, got {id2label or 'none'}")
    by_name = {v: k for k, v in id2label.items()}
    if set(by_name) == set(rundir.LABEL2ID):
        return by_name["negative"], by_name["positive"]
    log.warning("%s: id2label %s is not negative/positive; assuming 0=negative", path, id2label)
    return 0, 1
