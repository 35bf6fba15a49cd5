"""Noise-aware checkpoint selection during training (the rule itself: :mod:`reviewsense.selection`).

* :class:`EvalRecorder` keeps every evaluation's validation P(positive) — its
  ``compute_metrics`` is the Trainer's — and persists them next to the checkpoints
  (``checkpoints/eval_probs.json``) so a resumed run still compares against the earlier epochs.
* :class:`CheckpointKeeper` writes the model settings into every ``checkpoint-N/config.json``
  and keeps only the newest checkpoints plus the one the rule currently chooses.
* :class:`NoiseAwareEarlyStopping` stops when ``patience`` evaluations in a row did not beat the
  best one so far by more than the paired noise band.
* :func:`choose_and_load` applies the rule at the end and loads the chosen weights.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from reviewsense import rundir
from reviewsense.checkpoints import list_checkpoints
from reviewsense.jsonio import write_json
from reviewsense.metrics import binary_metrics, softmax_positive
from reviewsense.selection import is_significantly_better, select_epoch

log = logging.getLogger(__name__)

EVAL_PROBS_JSON = "eval_probs.json"  # inside checkpoints/: per-evaluation validation P(positive)
CONFIDENCE = 0.95


@dataclass
class Evaluation:
    step: int
    epoch: float
    probs: np.ndarray  # (n_val,) P(positive), in the validation dataset's order


def _epoch_label(epoch: float | None) -> float | int | None:
    if epoch is None:
        return None
    return int(round(epoch)) if abs(epoch - round(epoch)) < 1e-6 else round(float(epoch), 2)


@dataclass
class EvalRecorder(TrainerCallback):
    """Collects each evaluation's validation probabilities (and the labels, once)."""

    ckpt_dir: Path
    write: bool = True  # rank 0 only
    labels: np.ndarray | None = None  # (n_val,) 0/1 in the validation dataset's order
    evals: list[Evaluation] = field(default_factory=list)
    _pending: np.ndarray | None = None

    def compute_metrics(self, eval_pred) -> dict:
        """The Trainer's ``compute_metrics``: scalar validation metrics; keeps the probabilities."""
        logits = eval_pred.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        probs = softmax_positive(logits)
        self.labels = np.asarray(eval_pred.label_ids).astype(np.int64)
        self._pending = probs
        m = binary_metrics(self.labels, probs)
        cm = m.pop("confusion_matrix")
        m.pop("accuracy_ci95")
        # the Trainer logs scalars only; flatten the confusion matrix
        m.update({"tn": cm[0][0], "fp": cm[0][1], "fn": cm[1][0], "tp": cm[1][1]})
        return m

    def on_evaluate(self, args, state, control, **kwargs):
        if self._pending is None:
            return
        self.evals.append(Evaluation(state.global_step, state.epoch or 0.0, self._pending))
        self._pending = None
        if self.write:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.ckpt_dir / EVAL_PROBS_JSON, self.to_dict())

    def to_dict(self) -> dict:
        return {
            "labels": None if self.labels is None else self.labels.tolist(),
            "evals": [
                {"step": e.step, "epoch": e.epoch, "prob_positive": e.probs.tolist()}
                for e in self.evals
            ],
        }

    def restore(self, up_to_step: int) -> None:
        """Reload the evaluations up to ``up_to_step`` (a resumed run's checkpoint)."""
        path = self.ckpt_dir / EVAL_PROBS_JSON
        if not path.is_file():
            return
        d = json.loads(path.read_text(encoding="utf-8"))
        self.labels = None if d["labels"] is None else np.asarray(d["labels"], dtype=np.int64)
        self.evals = [
            Evaluation(e["step"], e["epoch"], np.asarray(e["prob_positive"], dtype=np.float64))
            for e in d["evals"]
            if e["step"] <= up_to_step
        ]
        log.info("restored %d earlier validation evaluations from %s", len(self.evals), path)

    def choice(self) -> dict | None:
        """:func:`selection.select_epoch` over the evaluations so far (None before the first)."""
        if not self.evals or self.labels is None:
            return None
        return select_epoch(
            self.labels,
            [e.probs for e in self.evals],
            confidence=CONFIDENCE,
            epochs=[_epoch_label(e.epoch) for e in self.evals],
        )


class CheckpointKeeper(TrainerCallback):
    """After each save: settings into the checkpoint, then keep newest ``keep`` + the chosen one."""

    def __init__(self, recorder: EvalRecorder, settings: rundir.ModelSettings, keep: int):
        self.recorder, self.settings, self.keep = recorder, settings, max(1, keep)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        ckpt_dir = Path(args.output_dir)
        current = ckpt_dir / f"checkpoint-{state.global_step}"
        if (current / rundir.MODEL_CONFIG).is_file():
            rundir.write_model_settings(current, self.settings)
        choice = self.recorder.choice()
        chosen = self.recorder.evals[choice["index"]].step if choice else None
        found = list_checkpoints(ckpt_dir)
        newest = {s for s, _ in found[-self.keep :]}
        for step, path in found:
            if step not in newest and step != chosen:
                shutil.rmtree(path, ignore_errors=True)
                log.debug("removed %s (neither recent nor chosen)", path.name)


class NoiseAwareEarlyStopping(TrainerCallback):
    """Stop after ``patience`` evaluations without a significant improvement (paired band)."""

    def __init__(self, recorder: EvalRecorder, patience: int):
        self.recorder, self.patience = recorder, patience

    def waiting(self) -> int:
        """Evaluations since the last one that beat the reference by more than the band."""
        evals, y = self.recorder.evals, self.recorder.labels
        if not evals or y is None:
            return 0
        ref, waited = evals[0].probs, 0
        for e in evals[1:]:
            if is_significantly_better(y, e.probs, ref, confidence=CONFIDENCE):
                ref, waited = e.probs, 0
            else:
                waited += 1
        return waited

    def on_evaluate(self, args, state, control, **kwargs):
        waited = self.waiting()
        if waited >= self.patience:
            log.info(
                "early stopping: %d evaluations without an improvement beyond the noise band",
                waited,
            )
            control.should_training_stop = True


def choose_and_load(trainer, recorder: EvalRecorder, ckpt_dir: Path) -> dict:
    """Apply the rule to the run's evaluations and load the chosen weights when not the last.

    Returns:
        ``metrics.json`` -> ``best``: ``{"epoch", "step", "checkpoint", "metric", "value",
        "reason", "noise_band", "difference", "method", "confidence"}`` (fractions of accuracy).
    """
    choice = recorder.choice()
    state = trainer.state
    if choice is None:
        return {
            "epoch": _epoch_label(state.epoch),
            "step": state.global_step,
            "checkpoint": None,
            "metric": "accuracy",
            "value": None,
            "reason": "no validation evaluation during training: the final model is kept",
            "noise_band": None,
        }
    chosen = recorder.evals[choice["index"]]
    path = ckpt_dir / f"checkpoint-{chosen.step}"
    if choice["index"] != choice["last_index"]:
        log.info("loading %s: %s", path.name, choice["reason"])
        trainer._load_from_checkpoint(str(path))  # the Trainer's own loader (tied weights, DDP)
    else:
        log.info("keeping the last evaluation's model: %s", choice["reason"])
    value = choice["accuracy_by_eval"][choice["index"]]
    # analyze reads the Trainer's state: record the choice there too
    state.best_model_checkpoint = str(path) if path.is_dir() else None
    state.best_metric = value
    return {
        "epoch": _epoch_label(chosen.epoch),
        "step": chosen.step,
        "checkpoint": str(path) if path.is_dir() else None,
        "metric": "accuracy",
        "value": value,
        "reason": choice["reason"],
        "noise_band": choice["noise_band"],
        "difference": choice["difference"],
        "method": choice["method"],
        "confidence": CONFIDENCE,
    }
