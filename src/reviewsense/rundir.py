"""The run-directory and model-folder contract: what is written where.

A run directory (``reviewsense train --output DIR``)::

    config.yaml               resolved RunConfig
    trainer_state.json        the HF Trainer's state (log_history, best checkpoint)
    metrics.json              validation per epoch + final test (accuracy 95% CI)
    test_predictions.parquet  row_id, label, prob_positive, prediction
    val_predictions.parquet   same columns, best model on the validation split (thresholds)
    environment.json          versions, CPU/GPU, precision, wall time, examples/s, peak memory
    train.log                 the run's log
    checkpoints/              Trainer checkpoints (the last + the one selection.py chose); each
                              checkpoint-N/config.json carries the `reviewsense` settings too
    model/                    self-contained model folder (below)
    analysis/                 `reviewsense analyze` output

A model folder holds a Hugging Face model (safetensors + config.json + tokenizer files). Its
``config.json`` carries ``id2label``/``label2id`` and a ``reviewsense`` dict with the
truncation settings it was trained with (and whether its bf16 path passed its check against
fp32), so prediction and serving need nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reviewsense.errors import ModelError
from reviewsense.jsonio import write_json
from reviewsense.truncation import (
    DEFAULT_HEAD_TOKENS,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MODE,
    TruncationSpec,
)

CONFIG_YAML = "config.yaml"
TRAINER_STATE = "trainer_state.json"
METRICS_JSON = "metrics.json"
TEST_PREDICTIONS = "test_predictions.parquet"
VAL_PREDICTIONS = "val_predictions.parquet"
ENVIRONMENT_JSON = "environment.json"
TRAIN_LOG = "train.log"
CHECKPOINTS_DIR = "checkpoints"
MODEL_DIR = "model"
ANALYSIS_DIR = "analysis"
DONE_MARKER = "DONE"  # written last: a run directory with it is complete (sweeps skip it)

MODEL_CONFIG = "config.json"
SETTINGS_KEY = "reviewsense"  # key inside model/config.json

ID2LABEL = {0: "negative", 1: "positive"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}


@dataclass
class ModelSettings:
    """Inference settings stored in ``model/config.json`` under ``reviewsense``."""

    # The truncation spec (defaults: truncation.py, the same as a training run's).
    max_length: int = DEFAULT_MAX_LENGTH  # tokens, including [CLS] and [SEP]
    truncation: str = DEFAULT_MODE  # head | head_tail
    head_tokens: int = DEFAULT_HEAD_TOKENS  # head_tail: content tokens kept from the start
    base_model: str | None = None  # what it was fine-tuned from
    threshold: float | None = None  # P(negative) at or above which `serve` flags a review
    threshold_info: dict = field(default_factory=dict)  # how the threshold was chosen
    # the bf16 torch path checked against fp32 (inference.verify.record_bf16_check); when it did not
    # pass, precision "auto" runs this folder in fp32. Empty: not checked (bf16 as usual).
    bf16_verification: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def spec(self) -> TruncationSpec:
        """The :class:`TruncationSpec` of these settings (raises ValueError when invalid)."""
        return TruncationSpec(self.max_length, self.truncation, self.head_tokens)

    @classmethod
    def from_dict(cls, d: dict | None) -> ModelSettings:
        d = dict(d or {})
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def run_dir_of(model_dir: str | Path) -> Path | None:
    """The run directory a model folder belongs to (``model/`` or ``checkpoints/checkpoint-N``).

    Returns:
        The run directory (it holds ``config.yaml``), or None for a stand-alone model folder.
    """
    p = Path(model_dir)
    for cand in (p.parent, p.parent.parent):
        if (cand / CONFIG_YAML).is_file() and (
            p.name == MODEL_DIR or p.parent.name == CHECKPOINTS_DIR
        ):
            return cand
    return None


def _run_settings(run_dir: Path) -> ModelSettings:
    """The model settings a run trained with, from its ``config.yaml`` (``data`` section)."""
    import yaml

    try:
        cfg = yaml.safe_load((run_dir / CONFIG_YAML).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ModelError(f"cannot read {run_dir / CONFIG_YAML}: {e}") from None
    data = cfg.get("data") or {}
    known = ("max_length", "truncation", "head_tokens")
    return ModelSettings(base_model=cfg.get("model"), **{k: data[k] for k in known if k in data})


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a run directory, its ``model/`` folder or a checkpoint; return the model folder.

    A checkpoint (``runs/X/checkpoints/checkpoint-N``) is a model folder too; its settings are
    its own or, for checkpoints written before they carried them, the run's
    (:func:`read_model_settings`).

    Raises:
        ModelError: when neither holds a ``config.json``.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model path {p} does not exist")
    if (p / MODEL_DIR / MODEL_CONFIG).is_file():
        return p / MODEL_DIR
    if (p / MODEL_CONFIG).is_file():
        return p
    raise ModelError(
        f"{p} is neither a model folder (with {MODEL_CONFIG}) nor a run directory "
        f"(with {MODEL_DIR}/{MODEL_CONFIG})"
    )


def read_model_settings(model_dir: str | Path) -> ModelSettings:
    """Read the ``reviewsense`` settings of a model folder.

    When the folder has none: the settings of the run it belongs to (a checkpoint inside
    ``runs/X/checkpoints/``), else the defaults (:mod:`reviewsense.truncation`).
    """
    cfg_path = Path(model_dir) / MODEL_CONFIG
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"cannot read {cfg_path}: {e}") from None
    if SETTINGS_KEY not in cfg:
        run_dir = run_dir_of(model_dir)
        if run_dir is not None:
            return _run_settings(run_dir)
    return ModelSettings.from_dict(cfg.get(SETTINGS_KEY))


def write_model_settings(model_dir: str | Path, settings: ModelSettings) -> None:
    """Store ``settings`` in ``model/config.json`` (keeps every other key)."""
    cfg_path = Path(model_dir) / MODEL_CONFIG
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg[SETTINGS_KEY] = settings.to_dict()
    write_json(cfg_path, cfg)  # the one JSON writer: strict, atomic


def is_complete_run(run_dir: str | Path) -> bool:
    return (Path(run_dir) / DONE_MARKER).is_file()


def write_predictions(path: Path, split, probs) -> None:
    """Per-review predictions in the contract's layout (``test_predictions.parquet``):
    row_id, label, prob_positive (float64), prediction (argmax, metrics.predicted_labels).

    ``split``: anything with ``ids`` and ``labels`` (a data Split); ``probs``: P(positive) per row.
    """
    import numpy as np
    import pandas as pd

    from reviewsense.metrics import predicted_labels

    probs = np.asarray(probs, dtype=np.float64)
    pd.DataFrame(
        {
            "row_id": [str(i) for i in split.ids],
            "label": np.asarray(split.labels, dtype=np.int64),
            "prob_positive": probs,
            "prediction": predicted_labels(probs),
        }
    ).to_parquet(path, index=False)
