"""Batched review-sentiment prediction on a model folder (PyTorch, ONNX Runtime or OpenVINO).

The :class:`Predictor` takes the truncation the model was trained with from its folder
(:func:`reviewsense.rundir.read_model_settings`), tokenizes with
:func:`reviewsense.truncation.encode_texts` (the one truncation implementation), sorts texts by
token count so each batch pads little, runs a backend (:mod:`reviewsense.inference.backends`)
and restores the input order.

Long reviews: besides the trained ``head`` / ``head_tail`` truncation, ``truncation="chunks"``
scores overlapping windows over the whole review and averages their probabilities.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reviewsense import rundir
from reviewsense.errors import ModelError
from reviewsense.inference.backends import (
    BACKENDS,
    COMPILE_PAD_MULTIPLE,
    ONNX_FILE,
    PRECISIONS,
    WEIGHT_FILES,
    Runner,
    folder_backend,
    label_indices,
    load_runner,
    model_runner,
)
from reviewsense.metrics import softmax
from reviewsense.truncation import SPECIAL_TOKENS, TRUNCATION_MODES, encode_texts, validate

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "ONNX_FILE", "PRECISIONS", "Prediction", "Predictor"]

# The trained modes plus chunks (overlapping windows, averaged): what inference may override to.
INFERENCE_TRUNCATION_MODES = (*TRUNCATION_MODES, "chunks")
PAD_MULTIPLE = 16  # tokens
BATCH_SIZE = 32  # texts per forward pass, unless the caller says otherwise


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


def is_onnx_folder(model_dir: str | Path) -> bool:
    """True for a folder written by ``reviewsense export --format onnx`` (holds ``model.onnx``)."""
    return folder_backend(Path(model_dir)) == "onnx"


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


def _resolve_threads(num_threads: int | None) -> int | None:
    if num_threads is None:  # REVIEWSENSE_NUM_THREADS, else the runtime's own default
        from reviewsense.runtime import configured_threads

        num_threads = configured_threads()
    if num_threads is not None and num_threads < 1:
        raise ModelError(f"num_threads must be at least 1, got {num_threads}")
    return num_threads


def _settings(mdir: Path, truncation: str | None) -> tuple[rundir.ModelSettings, str]:
    """(settings with the truncation in effect, the trained truncation); checked at load time."""
    if truncation is not None and truncation not in INFERENCE_TRUNCATION_MODES:
        raise ModelError(
            f"truncation must be one of {', '.join(INFERENCE_TRUNCATION_MODES)}, got {truncation!r}"
        )
    settings = rundir.read_model_settings(mdir)
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
    return settings, trained


def _hf_config(mdir: Path) -> dict:
    """The folder's Hugging Face config (labels, export record) through transformers."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(mdir).to_dict()
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {mdir / rundir.MODEL_CONFIG}: {e}") from None


def _tokenizer(mdir: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(mdir)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load the tokenizer from {mdir}: {e}") from None


class Predictor:
    """Sentiment predictor over a model folder (see module docstring).

    Create with :meth:`from_pretrained`. :meth:`predict` holds a lock, so one instance may be
    shared by threads (calls are serialised; the tokenizer is not thread-safe).

    Attributes:
        settings: the model's :class:`rundir.ModelSettings`, with ``truncation`` set to the
            mode in effect (a ``truncation=`` override, e.g. ``chunks``).
        trained_truncation: the truncation stored with the model.
        model_version: stable id of the weights (:func:`model_version`).
        backend: "torch" | "onnx" | "openvino".
        precision: "fp32" | "bf16" | "int8" (a quantized ONNX export).
        model_dir: the resolved model folder (None for :meth:`from_model`).
    """

    def __init__(
        self,
        *,
        model_dir: Path | None,
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
        self.pad_multiple = PAD_MULTIPLE  # batch widths round up to this (compiled graphs: 64)
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        backend: str = "auto",
        num_threads: int | None = None,
        precision: str = "auto",
        batch_size: int = BATCH_SIZE,
        truncation: str | None = None,
        device: str | None = None,
        compile: bool = False,
        attention: str = "auto",
        linear: str = "auto",
    ) -> Predictor:
        """Load a model folder, a run directory (or checkpoint) or an exported folder.

        Args:
            model_dir: run directory, checkpoint or model folder (:func:`rundir.resolve_model_dir`).
            backend: "auto" (the folder's own format: openvino / onnx export, else torch),
                "torch", "onnx" or "openvino".
            num_threads: intra-op threads (torch: process-wide ``torch.set_num_threads``);
                None takes ``REVIEWSENSE_NUM_THREADS`` or the library default.
            precision: "auto" (bf16 where the CPU has AMX/avx512_bf16 or the GPU supports
                bf16: ``runtime.resolve_precision``), "fp32" or "bf16".
            batch_size: texts (chunks mode: windows) per forward pass.
            truncation: override the trained truncation: "head", "head_tail" or "chunks".
            device: torch device; None picks "cuda" when available, else "cpu".
            compile: torch.compile the torch model (widths padded to 64 tokens).
            attention: torch attention kernel: "auto", "sdpa", "chunked", "varlen" or "packed"
                (``inference.attention``).
            linear: torch linear layers: "auto", "torch" or "fused" (``inference.fused``).

        Raises:
            ModelError: the folder cannot be loaded or an option does not fit it.
        """
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        num_threads = _resolve_threads(num_threads)
        mdir = rundir.resolve_model_dir(model_dir)
        settings, trained = _settings(mdir, truncation)
        config = _hf_config(mdir)
        labels = label_indices(config, mdir / rundir.MODEL_CONFIG)
        tokenizer = _tokenizer(mdir)
        runner, backend, precision = load_runner(
            mdir,
            config,
            backend=backend,
            precision=precision,
            num_threads=num_threads,
            device=device,
            source=str(model_dir),
            compile=compile,
            attention=attention,
            linear=linear,
        )
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
        predictor = cls(
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
        if compile:
            predictor.pad_multiple = COMPILE_PAD_MULTIPLE
        return predictor

    @classmethod
    def from_model(
        cls,
        model,
        tokenizer,
        settings: rundir.ModelSettings,
        *,
        precision: str,
        device: str = "cpu",
        batch_size: int = BATCH_SIZE,
    ) -> Predictor:
        """A Predictor around a PyTorch model in memory, run as :meth:`from_pretrained` runs a
        folder's (``train`` scores its validation reviews with one around a copy of the model
        it trains: ``reviewsense.train_eval``).

        Args:
            model: a transformers sequence-classification model; changed in place (cast to
                ``precision``, inference attention kernel, fused linear layers), so pass a copy.
            tokenizer: its tokenizer; ``settings``: the truncation and max length to encode with.
            precision: "fp32" or "bf16"; ``device``: where ``model`` runs.
        """
        if precision not in ("fp32", "bf16"):
            raise ModelError(f"precision must be fp32 or bf16 in memory, got {precision!r}")
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        return cls(
            model_dir=None,
            tokenizer=tokenizer,
            runner=model_runner(model, precision, device),
            settings=settings,
            trained_truncation=settings.truncation,
            label_indices=label_indices(model.config.to_dict(), Path("config.json")),
            backend="torch",
            precision=precision,
            batch_size=batch_size,
            num_threads=None,
            version="in-memory",
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
        # The whole review's content tokens (no cut), then windows over them.
        full = self.tokenizer(
            list(texts), add_special_tokens=False, truncation=False, verbose=False
        )
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        window = s.max_length - SPECIAL_TOKENS  # content tokens per window
        stride = max(1, window // 2)
        seqs, owner, truncated = [], [], []
        for i, content in enumerate(full["input_ids"]):
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
                width,
                min(-(-width // self.pad_multiple) * self.pad_multiple, self.settings.max_length),
            )
            ids = np.full((len(idx), width), pad_id, dtype=np.int64)  # [B, T]
            mask = np.zeros((len(idx), width), dtype=np.int64)  # [B, T]
            for row, i in enumerate(idx):
                ids[row, : len(seqs[i])] = seqs[i]
                mask[row, : len(seqs[i])] = 1
            p = softmax(self._run(ids, mask))  # [B, 2]
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

    def predict_many(
        self,
        texts: Sequence[str],
        chunk: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[Prediction]:
        """Score any number of texts, longest first in chunks, calling ``on_progress(done)``
        after each chunk; input order kept (``predict`` and ``train``'s test pass use this).

        Args:
            texts: review texts.
            chunk: texts per :meth:`predict` call; default 8 batches (the progress step).
            on_progress: called with the number of texts scored so far.
        """
        texts = list(texts)
        chunk = chunk or max(256, 8 * self.batch_size)
        # Longest first across all texts: batches pad little and the first ETA is pessimistic.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: list[Prediction | None] = [None] * len(texts)
        for start in range(0, len(order), chunk):
            rows = order[start : start + chunk]
            for i, pred in zip(rows, self.predict([texts[i] for i in rows]), strict=True):
                out[i] = pred
            if on_progress is not None:
                on_progress(start + len(rows))
        return out  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"Predictor({self.model_version!r}, backend={self.backend}, "
            f"precision={self.precision}, truncation={self.settings.truncation})"
        )
