"""The run-directory and model-folder contract: what is written where.

A run directory (``reviewsense train --output DIR``)::

    config.yaml               resolved RunConfig
    trainer_state.json        the HF Trainer's state (log_history, best checkpoint)
    metrics.json              validation per epoch + final test (accuracy 95% CI)
    test_predictions.parquet  row_id, label, prob_positive, prediction
    val_predictions.parquet   same columns, best model on the validation split (thresholds)
    environment.json          versions, CPU/GPU, precision, wall time, examples/s, peak memory
    train.log                 the run's log
    checkpoints/              Trainer checkpoints (best + last only)
    model/                    self-contained model folder (below)
    analysis/                 `reviewsense analyze` output

A model folder holds a Hugging Face model (safetensors + config.json + tokenizer files). Its
``config.json`` carries ``id2label``/``label2id`` and a ``reviewsense`` dict with the
truncation settings it was trained with, so prediction and serving need nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reviewsense.errors import ModelError

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

    max_length: int = 256  # tokens, including [CLS] and [SEP]
    truncation: str = "head"  # head | head_tail
    head_tokens: int = 128  # head_tail: content tokens kept from the start
    base_model: str | None = None  # what it was fine-tuned from
    threshold: float | None = None  # P(negative) at or above which `serve` flags a review
    threshold_info: dict = field(default_factory=dict)  # how the threshold was chosen

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> ModelSettings:
        d = dict(d or {})
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a run directory or its ``model/`` folder; return the model folder.

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
    """Read the ``reviewsense`` settings of a model folder (defaults when absent)."""
    cfg_path = Path(model_dir) / MODEL_CONFIG
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"cannot read {cfg_path}: {e}") from None
    return ModelSettings.from_dict(cfg.get(SETTINGS_KEY))


def write_model_settings(model_dir: str | Path, settings: ModelSettings) -> None:
    """Store ``settings`` in ``model/config.json`` (keeps every other key)."""
    cfg_path = Path(model_dir) / MODEL_CONFIG
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg[SETTINGS_KEY] = settings.to_dict()
    tmp = cfg_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(cfg_path)


def is_complete_run(run_dir: str | Path) -> bool:
    return (Path(run_dir) / DONE_MARKER).is_file()
