"""Typed run configuration: presets from ``configs/*.yaml`` plus CLI/sweep overrides.

A preset file looks like::

    name: offline
    model: minilm
    data:  {dataset: imdb, train_size: 2000, val_size: 500, max_length: 256, ...}
    train: {epochs: 3, batch_size: 16, lr: 2.0e-5, weight_decay: 0.01, ...}

Overrides are ``key=value`` pairs where ``key`` is a field of any section (``epochs``) or a
dotted path (``train.epochs``); unknown keys and invalid values raise :class:`ConfigError`
naming the key, before anything runs.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from reviewsense.attention import ATTENTION_KERNELS
from reviewsense.dropout import DROPOUT_KERNELS
from reviewsense.errors import ConfigError
from reviewsense.runtime import PRECISIONS
from reviewsense.settings import PROJECT_ROOT
from reviewsense.truncation import (
    DEFAULT_HEAD_TOKENS,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MODE,
    TruncationSpec,
    spec_problem,
)

# Keys older config.yaml files may hold; read without error, not used.
_RETIRED_KEYS = {
    "metric_for_best_model": "the kept checkpoint is chosen by validation accuracy with the "
    "paired noise band (reviewsense.selection)",
}
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
DATASETS = ("imdb", "files", "aclimdb")


# Attention-probability dropout when training (train, pretrain). 0 lets PyTorch run the fused
# SDPA attention kernel instead of its math fallback (explicit masks, fp32 upcast): 1.4-1.8x
# faster steps at no measured accuracy cost (+0.0 pt, 3 seeds paired; BENCHMARKS.md).
TRAINING_ATTENTION_DROPOUT = 0.0


def valid_attention_dropout(p: float | None) -> bool:
    """An attention-dropout setting: a probability in [0, 1), or None (the checkpoint's)."""
    return p is None or 0 <= p < 1


# max_steps of train, pretrain and distill: -1 (the Trainer's "not set") trains for the epochs
MAX_STEPS_RULE = "must be > 0, or -1 to train for the epochs"


def valid_max_steps(n: int) -> bool:
    """A max_steps setting: a positive step count, or -1 (train for the epochs)."""
    return n == -1 or n > 0


# Keys that say how a run executes, not what it computes: a resumed run may change them.
EXECUTION_KEYS = ("num_threads", "analyze")


@dataclass
class DataConfig:
    """Where the reviews come from and how they are cut."""

    dataset: str = "imdb"  # imdb | files (--train-file/--test-file) | aclimdb (raw folder)
    data_dir: str | None = None  # imdb parquet folder, or the aclImdb/ folder
    train_file: str | None = None  # CSV / JSONL / Parquet
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    train_size: int | None = 2000  # training reviews (stratified); None = all
    val_size: float = 1000  # carved from train, disjoint from the training subset; <1 = fraction
    test_size: int | None = None  # None = the whole test split (25,000 for IMDb)
    # The truncation spec, flat so that `max_length=128` stays a config key (see `spec`).
    max_length: int = DEFAULT_MAX_LENGTH  # tokens incl. [CLS]/[SEP]
    truncation: str = DEFAULT_MODE  # head | head_tail (truncation.TRUNCATION_MODES)
    head_tokens: int = DEFAULT_HEAD_TOKENS  # head_tail: content tokens kept from the start
    skip_invalid: bool = False  # skip (and count) bad rows instead of failing
    split_seed: int = 0  # data seed of the test subset: the same reviews whatever train.seed

    @property
    def spec(self) -> TruncationSpec:
        """The :class:`TruncationSpec` of these settings (raises ValueError when invalid)."""
        return TruncationSpec(self.max_length, self.truncation, self.head_tokens)


@dataclass
class TrainConfig:
    """Optimisation and Trainer settings."""

    epochs: float = 3
    batch_size: int = 16  # per device; global = batch_size * world size
    eval_batch_size: int = 64
    lr: float = 2e-5
    weight_decay: float = 0.01
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    seed: int = 42
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    logging_steps: int = 10  # the user's recipe logs every 10 steps
    save_total_limit: int = 2  # checkpoints kept: the last + the one selection.py chose
    # patience in evaluations without an improvement beyond the paired noise band; None = off
    early_stopping: int | None = None
    group_by_length: bool = True  # length-bucketed batches in random order: less padding
    dynamic_padding: bool = True  # pad per batch (False = pad every review to max_length)
    num_threads: int | None = None  # None = physical cores
    gradient_accumulation_steps: int = 1
    # Attention-probability dropout in training (TRAINING_ATTENTION_DROPOUT; None = the
    # checkpoint's value, 0.1 for BERT/MiniLM: the user's way).
    attention_dropout: float | None = TRAINING_ATTENTION_DROPOUT
    attention_kernel: str = "auto"  # ATTENTION_KERNELS; "sdpa" = transformers' default
    dropout_kernel: str = "auto"  # DROPOUT_KERNELS; "torch" = nn.Dropout's bernoulli masks
    max_steps: int = -1  # >0 overrides epochs (tests, smoke runs); valid_max_steps
    analyze: bool = True  # run `analyze` into <run>/analysis at the end


@dataclass
class RunConfig:
    """Everything a training run needs; saved as ``config.yaml`` in the run directory."""

    name: str = "custom"
    model: str = "minilm"  # Hub id, local folder, or the alias `minilm`
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> RunConfig:
        """Check values; raise ConfigError naming the key."""
        d, t = self.data, self.train
        checks = [
            ("model", bool(str(self.model).strip()), "must not be empty"),
            ("dataset", d.dataset in DATASETS, f"must be one of {', '.join(DATASETS)}"),
            ("train_size", d.train_size is None or d.train_size >= 2, "must be >= 2 or null"),
            ("test_size", d.test_size is None or d.test_size >= 1, "must be >= 1 or null"),
            ("val_size", d.val_size > 0, "must be > 0 (a count, or a fraction below 1)"),
            ("epochs", t.epochs > 0, "must be > 0"),
            ("batch_size", t.batch_size >= 1, "must be >= 1"),
            ("eval_batch_size", t.eval_batch_size >= 1, "must be >= 1"),
            ("lr", t.lr > 0, "must be > 0"),
            ("weight_decay", t.weight_decay >= 0, "must be >= 0"),
            ("warmup_ratio", 0 <= t.warmup_ratio < 1, "must be in [0, 1)"),
            ("lr_scheduler", t.lr_scheduler in SCHEDULERS, f"must be one of {SCHEDULERS}"),
            ("precision", t.precision in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}"),
            ("logging_steps", t.logging_steps >= 1, "must be >= 1"),
            ("save_total_limit", t.save_total_limit >= 1, "must be >= 1"),
            ("early_stopping", t.early_stopping is None or t.early_stopping >= 1, "must be >= 1"),
            ("num_threads", t.num_threads is None or t.num_threads >= 1, "must be >= 1"),
            ("gradient_accumulation_steps", t.gradient_accumulation_steps >= 1, "must be >= 1"),
            ("max_steps", valid_max_steps(t.max_steps), MAX_STEPS_RULE),
            (
                "attention_dropout",
                valid_attention_dropout(t.attention_dropout),
                "must be in [0, 1), or null for the checkpoint's value",
            ),
            (
                "attention_kernel",
                t.attention_kernel in ATTENTION_KERNELS,
                f"must be one of {', '.join(ATTENTION_KERNELS)}",
            ),
            (
                "dropout_kernel",
                t.dropout_kernel in DROPOUT_KERNELS,
                f"must be one of {', '.join(DROPOUT_KERNELS)}",
            ),
        ]
        for key, ok, why in checks:
            if not ok:
                raise ConfigError(f"invalid value for '{key}': {self.get(key)!r} {why}")
        problem = spec_problem(d.max_length, d.truncation, d.head_tokens)
        if problem is not None:
            key = problem.split(" ", 1)[0]
            key = key if key in ("truncation", "max_length", "head_tokens") else "max_length"
            raise ConfigError(f"invalid value for '{key}': {self.get(key)!r} — {problem}")
        return self

    # -- overrides ---------------------------------------------------------------------------
    def _locate(self, key: str) -> tuple[Any, str]:
        if "." in key:
            section, _, name = key.partition(".")
            obj = getattr(self, section, None)
            if not dataclasses.is_dataclass(obj) or name not in _field_names(obj):
                raise ConfigError(f"unknown config key '{key}' (known: {', '.join(known_keys())})")
            return obj, name
        if key in ("name", "model"):
            return self, key
        for obj in (self.data, self.train):
            if key in _field_names(obj):
                return obj, key
        raise ConfigError(f"unknown config key '{key}' (known: {', '.join(known_keys())})")

    def get(self, key: str) -> Any:
        obj, name = self._locate(key)
        return getattr(obj, name)

    def set(self, key: str, value: Any) -> None:
        """Set one key, coercing strings (from the CLI or a grid) to the field's type."""
        obj, name = self._locate(key)
        ftype = _field_types(obj)[name]
        setattr(obj, name, _coerce(key, value, ftype))

    def definition_changes(self, overrides: dict[str, Any]) -> list[str]:
        """The keys of ``overrides`` that would change what this run computes.

        ``None`` values (flag not given), values equal to the current ones (after coercion)
        and :data:`EXECUTION_KEYS` are not changes. Raises ConfigError for an unknown key or a
        value of the wrong type, like :meth:`set`.
        """
        probe = copy.deepcopy(self)
        changed = []
        for key, value in overrides.items():
            if value is None:
                continue
            probe.set(key, value)
            if self._locate(key)[1] not in EXECUTION_KEYS and probe.get(key) != self.get(key):
                changed.append(key)
        return changed

    def override(self, overrides: dict[str, Any]) -> RunConfig:
        """Apply ``{key: value}`` in order, then validate the result.

        ``None`` values are ignored (flag not given). Raises ConfigError naming the key.
        """
        for k, v in overrides.items():
            if v is not None:
                self.set(k, v)
        return self.validate()


def _field_names(obj) -> set[str]:
    return {f.name for f in fields(obj)}


def _field_types(obj) -> dict[str, Any]:
    return typing.get_type_hints(type(obj))


def _coerce(key: str, value: Any, ftype: Any) -> Any:
    """Convert ``value`` to ``ftype`` (int, float, bool, str, or X | None)."""
    args = typing.get_args(ftype)
    optional = type(None) in args and (typing.get_origin(ftype) in (typing.Union, types.UnionType))
    base = next((a for a in args if a is not type(None)), ftype) if optional else ftype
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"invalid value for '{key}': None (a value is required)")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("true", "1", "yes", "on"):
                return True
            if s in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if base is int:
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if base is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float('inf'))
        name = getattr(base, "__name__", str(base))
        raise ConfigError(f"invalid value for '{key}': {value!r} is not a valid {name}") from None


def known_keys() -> list[str]:
    r = RunConfig()
    return ["name", "model", *sorted(_field_names(r.data) | _field_names(r.train))]


# -- presets ---------------------------------------------------------------------------------
def configs_dir() -> Path:
    """``configs/`` of the checkout, or the copy shipped inside the package."""
    for cand in (PROJECT_ROOT / "configs", Path(__file__).resolve().parent / "configs"):
        if cand.is_dir():
            return cand
    return PROJECT_ROOT / "configs"


def list_presets() -> list[str]:
    return sorted(p.stem for p in configs_dir().glob("*.yaml"))


def from_dict(d: dict, source: str = "config") -> RunConfig:
    """Build a RunConfig from a nested dict (preset/config.yaml layout)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    cfg = RunConfig()
    for key, value in d.items():
        if key in ("data", "train"):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{key}' must be a mapping")
            for k, v in value.items():
                if key == "train" and k in _RETIRED_KEYS:
                    logging.getLogger(__name__).info(
                        "%s: '%s' ignored: %s", source, k, _RETIRED_KEYS[k]
                    )
                    continue
                cfg.set(f"{key}.{k}", v)
        else:
            cfg.set(key, value)
    return cfg.validate()


def load_file(path: str | Path) -> RunConfig:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {e}") from None
    return from_dict(d, source=str(p))


def load_preset(name: str) -> RunConfig:
    path = configs_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{name}' (available: {', '.join(list_presets())})")
    return load_file(path)


def save(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
