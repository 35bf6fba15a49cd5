"""Batched review-sentiment prediction on a model folder (PyTorch or ONNX Runtime).

The :class:`Predictor` reads the truncation the model was trained with from its folder
(``config.json`` → ``reviewsense``), tokenizes with :func:`reviewsense.truncation.encode_texts`
(the one truncation implementation), sorts texts by token count so each batch pads little,
runs the backend and restores the input order.

Backends:

- ``torch``: ``AutoModelForSequenceClassification`` under ``torch.inference_mode``; with
  ``precision="bf16"`` the model runs in bf16 (AMX / avx512_bf16 CPUs, bf16 GPUs).
- ``onnx``: an exported folder (``reviewsense export``) with ``model.onnx``, run by ONNX Runtime.

Long reviews: besides the trained ``head`` / ``head_tail`` truncation, ``truncation="chunks"``
scores overlapping windows over the whole review and averages their probabilities.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reviewsense import rundir
from reviewsense.errors import ModelError
from reviewsense.runtime import bf16_available
from reviewsense.truncation import SPECIAL_TOKENS, encode_texts, validate

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
PRECISIONS = ("auto", "fp32", "bf16")
INFERENCE_TRUNCATION_MODES = ("head", "head_tail", "chunks")
ONNX_FILE = "model.onnx"  # an exported folder holds this instead of model.safetensors
WEIGHT_FILES = (ONNX_FILE, "model.safetensors", "pytorch_model.bin")

# Logits runner: (input_ids [B, T] int64, attention_mask [B, T] int64) -> logits [B, L] float32.
Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Prediction:
    """The verdict on one review."""

    label: str  # "negative" | "positive" (from the model's id2label)
    score: float  # probability of `label`
    prob_negative: float
    prob_positive: float
    truncated: bool  # the text was longer than the model's max_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PAD_MULTIPLE = 16  # tokens


def is_onnx_folder(model_dir: str | Path) -> bool:
    """True for a folder written by ``reviewsense export`` (holds ``model.onnx``)."""
    return (Path(model_dir) / ONNX_FILE).is_file()


def model_version(model_dir: str | Path) -> str:
    """A stable id of the weights: folder name + 12 hex digits of sha256(config + weights).

    A run's ``model/`` folder is named after its run directory (``demo-model-3f2a...``).
    """
    d = Path(model_dir).resolve()
    name = f"{d.parent.name}-{d.name}" if d.name == rundir.MODEL_DIR else d.name
    h = hashlib.sha256()
    h.update((d / rundir.MODEL_CONFIG).read_bytes())
    for fname in WEIGHT_FILES:
        p = d / fname
        if p.is_file():
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):  # 1 MiB
                    h.update(chunk)
            break
    return f"{name}-{h.hexdigest()[:12]}"


def chunk_windows(content_ids: Sequence[int], window: int, stride: int) -> list[list[int]]:
    """Overlapping windows over content token ids (no special tokens).

    Args:
        content_ids: the whole review's token ids.
        window: content tokens per window (``max_length - 2``).
        stride: step between window starts (``window // 2`` gives 50% overlap).

    Returns:
        At least one window; the last one ends at the review's last token.
    """
    n = len(content_ids)
    if n <= window:
        return [list(content_ids)]
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] != n - window:
        starts.append(n - window)  # cover the tail exactly (the verdict is often at the end)
    return [list(content_ids[s : s + window]) for s in starts]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _read_config(model_dir: Path) -> dict:
    path = model_dir / rundir.MODEL_CONFIG
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"cannot read {path}: {e}") from None


def _label_indices(config: dict, path: Path) -> tuple[int, int]:
    """(index of negative, index of positive) in the logits, from config id2label."""
    id2label = {int(k): str(v).lower() for k, v in (config.get("id2label") or {}).items()}
    if len(id2label) != 2:
        raise ModelError(f"{path}: expected 2 labels in id2label, got {id2label or 'none'}")
    by_name = {v: k for k, v in id2label.items()}
    if set(by_name) == set(rundir.LABEL2ID):
        return by_name["negative"], by_name["positive"]
    log.warning("%s: id2label %s is not negative/positive; assuming 0=negative", path, id2label)
    return 0, 1


def _torch_runner(model_dir: Path, precision: str, device: str) -> Runner:
    import torch
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load a PyTorch model from {model_dir}: {e}") from None
    # bf16: weights and activations in bf16 (LayerNorm/softmax accumulate in fp32 inside the
    # kernels). Measured 1.6x faster than fp32 autocast on AMX, which re-casts every weight on
    # every call; BENCHMARKS.md has the accuracy.
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model.eval().to(device=device, dtype=dtype)

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        ids = torch.from_numpy(input_ids).to(device)
        mask = torch.from_numpy(attention_mask).to(device)
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits  # [B, 2]
        return logits.float().cpu().numpy()

    return run


def _onnx_runner(model_dir: Path, num_threads: int | None) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # The exported graph is already optimised; "basic" keeps loading fast and safe.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
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


class Predictor:
    """Sentiment predictor over a model folder (see module docstring).

    Create with :meth:`from_pretrained`. :meth:`predict` holds a lock, so one instance may be
    shared by threads (calls are serialised; the tokenizer is not thread-safe).

    Attributes:
        settings: the model's :class:`rundir.ModelSettings`, with ``truncation`` set to the
            mode in effect (a ``truncation=`` override, e.g. ``chunks``).
        trained_truncation: the truncation stored with the model.
        model_version: stable id of the weights (:func:`model_version`).
        backend: "torch" | "onnx".
        precision: "fp32" | "bf16" (ONNX: "fp32", or "int8" for a quantized export).
        model_dir: the resolved model folder.
    """

    def __init__(
        self,
        *,
        model_dir: Path,
        tokenizer,
        runner: Runner,
        settings: rundir.ModelSettings,
        trained_truncation: str,
        label_indices: tuple[int, int],
        backend: str,
        precision: str,
        batch_size: int,
        num_threads: int | None,
        version: str,
    ) -> None:
        self.model_dir = model_dir
        self.tokenizer = tokenizer
        self._run = runner
        self.settings = settings
        self.trained_truncation = trained_truncation
        self._neg, self._pos = label_indices
        self.backend = backend
        self.precision = precision
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.model_version = version
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        backend: str = "auto",
        num_threads: int | None = None,
        precision: str = "auto",
        batch_size: int = 32,
        truncation: str | None = None,
        device: str | None = None,
    ) -> Predictor:
        """Load a model folder, a run directory or an exported ONNX folder.

        Args:
            model_dir: run directory or model folder (:func:`rundir.resolve_model_dir`).
            backend: "auto" (onnx for an exported ONNX folder, else torch), "torch" or "onnx".
            num_threads: intra-op threads (torch: process-wide ``torch.set_num_threads``);
                None takes ``REVIEWSENSE_NUM_THREADS`` or the library default.
            precision: "auto" (bf16 when the CPU has AMX/avx512_bf16 or the GPU supports
                bf16; torch backend only), "fp32" or "bf16".
            batch_size: texts (chunks mode: windows) per forward pass.
            truncation: override the trained truncation: "head", "head_tail" or "chunks".
            device: torch device; None picks "cuda" when available, else "cpu".

        Returns:
            A ready :class:`Predictor`.

        Raises:
            ModelError: the folder cannot be loaded or an option does not fit it.
        """
        if backend not in BACKENDS:
            raise ModelError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if precision not in PRECISIONS:
            raise ModelError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        if truncation is not None and truncation not in INFERENCE_TRUNCATION_MODES:
            raise ModelError(
                f"truncation must be one of {', '.join(INFERENCE_TRUNCATION_MODES)}, "
                f"got {truncation!r}"
            )
        mdir = rundir.resolve_model_dir(model_dir)
        onnx_folder = is_onnx_folder(mdir)
        if backend == "auto":
            backend = "onnx" if onnx_folder else "torch"
        if backend == "onnx" and not onnx_folder:
            raise ModelError(
                f"{mdir} has no {ONNX_FILE}; create one with `reviewsense export {model_dir} "
                "--format onnx --output DIR` or use --backend torch"
            )
        if backend == "torch" and onnx_folder and not (mdir / "model.safetensors").is_file():
            raise ModelError(f"{mdir} is an exported ONNX folder; use --backend onnx")

        if num_threads is None:
            from reviewsense.settings import get_settings

            num_threads = get_settings().num_threads
        if num_threads is not None and num_threads < 1:
            raise ModelError(f"num_threads must be at least 1, got {num_threads}")

        config = _read_config(mdir)
        settings = rundir.ModelSettings.from_dict(config.get(rundir.SETTINGS_KEY))
        trained = settings.truncation
        settings = dataclasses.replace(settings, truncation=truncation or trained)
        try:  # fail at load time, not on the first request
            validate(
                settings.max_length,
                settings.truncation if truncation != "chunks" else "head",
                settings.head_tokens,
            )
        except ValueError as e:
            raise ModelError(f"{mdir / rundir.MODEL_CONFIG}: {e}") from None
        labels = _label_indices(config, mdir / rundir.MODEL_CONFIG)

        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(mdir)
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot load the tokenizer from {mdir}: {e}") from None

        if backend == "torch":
            import torch

            if num_threads is not None:
                torch.set_num_threads(num_threads)
            if device is None:
                device = "cuda" if torch.cuda.is_available() else "cpu"
            if precision == "auto":
                precision = "bf16" if bf16_available(device) else "fp32"
            runner = _torch_runner(mdir, precision, device)
        else:
            if precision == "bf16":
                raise ModelError("precision bf16 is for the torch backend; ONNX runs fp32/int8")
            export_info = config.get("reviewsense_export") or {}
            precision = "int8" if export_info.get("quantize") == "int8" else "fp32"
            runner = _onnx_runner(mdir, num_threads)

        version = model_version(mdir)
        log.info(
            "loaded %s (%s, %s, truncation=%s, max_length=%d, threads=%s)",
            version,
            backend,
            precision,
            settings.truncation,
            settings.max_length,
            num_threads or "default",
        )
        return cls(
            model_dir=mdir,
            tokenizer=tokenizer,
            runner=runner,
            settings=settings,
            trained_truncation=trained,
            label_indices=labels,
            backend=backend,
            precision=precision,
            batch_size=batch_size,
            num_threads=num_threads,
            version=version,
        )

    # ------------------------------------------------------------------ encoding

    def encode(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int], list[bool]]:
        """Token ids of every model input and which text each belongs to.

        Returns:
            (sequences with [CLS]/[SEP], owner text index per sequence, truncated per text).
            head / head_tail give one sequence per text; chunks gives one per window.
        """
        s = self.settings
        if s.truncation != "chunks":
            enc = encode_texts(self.tokenizer, texts, s.max_length, s.truncation, s.head_tokens)
            return enc["input_ids"], list(range(len(texts))), enc["truncated"]
        # Whole review: a "head" cut that never cuts, then windows over the content tokens.
        full = encode_texts(self.tokenizer, texts, 1 << 30, "head")
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        window = s.max_length - SPECIAL_TOKENS  # content tokens per window
        stride = max(1, window // 2)
        seqs, owner, truncated = [], [], []
        for i, ids in enumerate(full["input_ids"]):
            content = ids[1:-1]
            truncated.append(len(content) > window)
            for w in chunk_windows(content, window, stride):
                seqs.append([cls_id, *w, sep_id])
                owner.append(i)
        return seqs, owner, truncated

    def _forward(self, seqs: list[list[int]]) -> np.ndarray:
        """Probabilities [N, 2] for sequences, batched by length; input order kept."""
        n = len(seqs)
        probs = np.zeros((n, 2), dtype=np.float64)
        order = sorted(range(n), key=lambda i: len(seqs[i]), reverse=True)
        pad_id = self.tokenizer.pad_token_id or 0
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            width = len(seqs[idx[0]])  # longest in the batch (sorted descending)
            # Round up to a multiple of 16: AMX tiles are 16 rows, and few distinct shapes keep
            # oneDNN's per-shape kernel cache (and memory) small.
            width = max(
                width, min(-(-width // PAD_MULTIPLE) * PAD_MULTIPLE, self.settings.max_length)
            )
            ids = np.full((len(idx), width), pad_id, dtype=np.int64)  # [B, T]
            mask = np.zeros((len(idx), width), dtype=np.int64)  # [B, T]
            for row, i in enumerate(idx):
                ids[row, : len(seqs[i])] = seqs[i]
                mask[row, : len(seqs[i])] = 1
            p = _softmax(self._run(ids, mask))  # [B, 2]
            probs[idx, 0] = p[:, self._neg]
            probs[idx, 1] = p[:, self._pos]
        return probs

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Score reviews.

        Args:
            texts: review texts (an empty text gets the model's verdict on [CLS][SEP];
                callers that want to reject empty input should check first).

        Returns:
            One :class:`Prediction` per text, in input order.
        """
        if isinstance(texts, str):
            raise TypeError("predict() takes a sequence of texts, not one str")
        texts = list(texts)
        if not texts:
            return []
        with self._lock:
            seqs, owner, truncated = self.encode(texts)
            seq_probs = self._forward(seqs)  # [N_seq, 2]
        # Average window probabilities per text (one window per text outside chunks mode).
        sums = np.zeros((len(texts), 2), dtype=np.float64)
        np.add.at(sums, np.asarray(owner), seq_probs)
        counts = np.bincount(np.asarray(owner), minlength=len(texts))[:, None]
        probs = sums / counts
        out = []
        for (p_neg, p_pos), cut in zip(probs.tolist(), truncated, strict=True):
            label = "positive" if p_pos >= p_neg else "negative"
            out.append(
                Prediction(
                    label=label,
                    score=max(p_neg, p_pos),
                    prob_negative=p_neg,
                    prob_positive=p_pos,
                    truncated=bool(cut),
                )
            )
        return out

    def __repr__(self) -> str:
        return (
            f"Predictor({self.model_version!r}, backend={self.backend}, "
            f"precision={self.precision}, truncation={self.settings.truncation})"
        )
