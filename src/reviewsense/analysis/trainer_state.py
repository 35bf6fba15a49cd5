"""Find and parse a Hugging Face ``trainer_state.json`` of any transformers version.

The parser is deliberately lenient about content (missing ``grad_norm``, no eval rows, NaN /
Infinity literals, CRLF, repeated or out-of-order steps after a resume, non-scalar eval
metrics) and strict about form: a missing path, a file that is not JSON or JSON without
``log_history`` raise :class:`~reviewsense.errors.DataError` with a one-line message.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reviewsense.errors import DataError
from reviewsense.rundir import CHECKPOINTS_DIR, METRICS_JSON, TRAINER_STATE

log = logging.getLogger(__name__)

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")

# Eval keys that describe speed, not quality: kept as timing, never treated as metrics.
EVAL_TIMING_KEYS = frozenset(
    {
        "eval_runtime",
        "eval_samples_per_second",
        "eval_steps_per_second",
        "eval_model_preparation_time",
    }
)
# Eval keys that are neither quality metrics nor timing.
_EVAL_NOT_METRICS = EVAL_TIMING_KEYS | {"eval_loss", "eval_samples"}
# Keys of the end-of-training summary row the Trainer appends.
_SUMMARY_KEYS = frozenset(
    {
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "train_loss",
        "total_flos",
    }
)


@dataclass
class EvalRow:
    """One evaluation: its step, epoch, eval loss (or None) and the other scalar metrics."""

    step: int
    epoch: float | None
    loss: float | None
    metrics: dict[str, float] = field(default_factory=dict)  # without the ``eval_`` prefix
    runtime_s: float | None = None
    n_samples: int | None = None  # ``eval_samples`` when the run logged it


@dataclass
class TrainerState:
    """A parsed trainer state: header fields plus the log history split by kind.

    Train arrays are aligned, sorted by step and de-duplicated; absent values are NaN.
    """

    path: Path
    header: dict
    step: np.ndarray
    epoch: np.ndarray
    loss: np.ndarray
    learning_rate: np.ndarray
    grad_norm: np.ndarray
    grad_norm_logged: np.ndarray  # bool: the row has a grad_norm key (NaN there = non-finite)
    evals: list[EvalRow]
    summary_row: dict | None
    notes: list[str] = field(default_factory=list)
    checkpoint_note: str | None = None
    # Resume evidence, in log order: steps where the epoch counter went back while the step
    # did not, and how many training steps were logged twice (a final eval is often repeated
    # by design, so only training rows count).
    epoch_resets: list[int] = field(default_factory=list)
    repeated_train_steps: int = 0
    run_metrics: dict | None = None  # reviewsense's metrics.json beside the state, if any

    @property
    def has_grad_norm(self) -> bool:
        return bool(self.grad_norm_logged.any())

    @property
    def n_train(self) -> int:
        return int(self.step.size)


def _checkpoint_number(p: Path) -> int | None:
    m = _CHECKPOINT_RE.match(p.name)
    return int(m.group(1)) if m else None


def _readable_state(p: Path) -> bool:
    """True when ``p`` parses as a trainer state (used to skip half-written checkpoints)."""
    try:
        _read_json(p)
    except DataError:
        return False
    return True


def _newest_checkpoint(folder: Path) -> tuple[Path, str] | None:
    """The newest ``checkpoint-N/`` under ``folder`` with a readable state, and a note."""
    ckpts = sorted(
        (c for c in folder.iterdir() if c.is_dir() and _checkpoint_number(c) is not None),
        key=lambda c: _checkpoint_number(c) or 0,
        reverse=True,
    )
    if not ckpts:
        return None
    skipped: list[str] = []
    for c in ckpts:
        candidate = c / TRAINER_STATE
        if candidate.is_file() and _readable_state(candidate):
            note = f"using {c.name} (newest complete of {len(ckpts)} checkpoints)"
            if skipped:
                note += f"; skipped {', '.join(skipped)} (no readable {TRAINER_STATE})"
            return candidate, note
        skipped.append(c.name)
    return None


def locate_trainer_state(path: str | Path) -> tuple[Path, str | None]:
    """Resolve a run dir, checkpoint dir, folder of checkpoints or json file to one state file.

    Args:
        path: what the user passed.

    Returns:
        The ``trainer_state.json`` path and a note saying which checkpoint was chosen (or None).

    Raises:
        DataError: when the path does not exist or holds no trainer state.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p} does not exist")
    if p.is_file():
        return p, None
    if (p / TRAINER_STATE).is_file():
        return p / TRAINER_STATE, None
    for folder in (p, p / CHECKPOINTS_DIR):
        if folder.is_dir():
            found = _newest_checkpoint(folder)
            if found:
                return found
    raise DataError(
        f"{p}: no readable {TRAINER_STATE} found (looked in {p.name}/, "
        f"{p.name}/checkpoint-*/ and {p.name}/{CHECKPOINTS_DIR}/checkpoint-*/)"
    )


def _read_json(p: Path) -> dict:
    """Read a trainer state file; NaN/Infinity literals parse as floats (json allows them)."""
    try:
        # utf-8-sig: tolerate a BOM written by Windows editors; CRLF is just whitespace.
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{p}: not a text file (expected a JSON trainer_state.json)") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from None
    if not isinstance(data, dict) or "log_history" not in data:
        raise DataError(
            f"{p}: JSON has no 'log_history' key; not a Hugging Face trainer_state.json"
        )
    if not isinstance(data["log_history"], list):
        raise DataError(f"{p}: 'log_history' must be a list of log entries")
    return data


def _num(v: object) -> float | None:
    """A JSON scalar as float (NaN kept), or None for anything non-numeric."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _count(v: object) -> int | None:
    x = _num(v)
    return int(x) if x is not None and math.isfinite(x) and x >= 1 else None


def _kind(entry: dict) -> str:
    # Train rows ("loss") never carry eval_* keys; checking them first keeps long logs fast.
    if "loss" in entry:
        return "train"
    if any(k.startswith("eval_") for k in entry):
        return "eval"
    if _SUMMARY_KEYS & entry.keys():
        return "summary"
    return "other"


def _entry_step(entry: dict, index: int) -> int:
    s = entry.get("step")
    if type(s) is int:  # the common case, checked first: this runs once per log entry
        return s
    if isinstance(s, float) and math.isfinite(s):
        return int(s)
    return -1 - index  # no step: keep the row, ordered before stepped rows, never merged


def _column(rows: list[dict], key: str) -> np.ndarray:
    """``key`` of every row as floats; missing or non-numeric values become NaN."""
    try:
        # Fast path: numbers and missing keys (None -> NaN) convert in one call.
        col = np.array([e.get(key) for e in rows], dtype=float)
        if col.ndim == 1 and col.size == len(rows):  # equal-length lists would make it 2-D
            return col
    except (TypeError, ValueError):
        pass
    vals = [_num(e.get(key)) for e in rows]
    return np.array([np.nan if v is None else v for v in vals], dtype=float)


def parse_trainer_state(data: dict, path: Path) -> TrainerState:
    """Split ``log_history`` into train arrays, eval rows and the summary row.

    Duplicates (same step and kind, as after a resume) keep their last occurrence; rows are
    then sorted by step.
    """
    notes: list[str] = []
    latest: dict[tuple[str, int], tuple[int, dict]] = {}  # (kind, step) -> (position, entry)
    n_dupes = 0
    out_of_order = False
    last_step = -math.inf
    last_epoch, resets, repeated_train = -math.inf, [], 0
    for i, entry in enumerate(data["log_history"]):
        if not isinstance(entry, dict):
            continue
        kind = _kind(entry)
        step = _entry_step(entry, i)
        if kind != "summary":
            if step < last_step:
                out_of_order = True
            else:
                last_step = step
            last_epoch = _track_epoch(entry, step, last_epoch, resets)
        key = (kind, step)
        if key in latest:
            n_dupes += 1
            repeated_train += kind == "train"
        latest[key] = (i, entry)
    if n_dupes:
        notes.append(
            f"{n_dupes} repeated log entries (same step and kind, e.g. after resuming) "
            "were dropped; the last occurrence of each was kept"
        )
    if out_of_order:
        notes.append("log entries were out of step order (resumed run?); sorted by step")

    rows = sorted(latest.items(), key=lambda kv: (kv[0][1], kv[1][0]))
    train = [e for (k, _), (_, e) in rows if k == "train"]
    evals_raw = [e for (k, _), (_, e) in rows if k == "eval"]
    summaries = [e for (k, _), (_, e) in rows if k == "summary"]

    header = {k: v for k, v in data.items() if k != "log_history"}

    evals, skipped = _parse_evals(evals_raw)
    if skipped:
        notes.append(
            "non-scalar eval values skipped: "
            + ", ".join(f"{k} ({t})" for k, t in sorted(skipped.items()))
        )
    return TrainerState(
        path=path,
        header=header,
        step=np.array([k[1] for k, _ in rows if k[0] == "train"], dtype=np.int64),
        epoch=_column(train, "epoch"),
        loss=_column(train, "loss"),
        learning_rate=_column(train, "learning_rate"),
        grad_norm=_column(train, "grad_norm"),
        # A NaN literal is a logged (non-finite) grad norm; a missing key or null is not.
        grad_norm_logged=np.array(
            [isinstance(e.get("grad_norm"), float | int) for e in train], dtype=bool
        ),
        evals=evals,
        summary_row=summaries[-1] if summaries else None,
        notes=notes,
        epoch_resets=resets,
        repeated_train_steps=repeated_train,
    )


def _track_epoch(entry: dict, step: int, last_epoch: float, resets: list[int]) -> float:
    """Record ``step`` when the epoch counter drops by more than rounding (a resume)."""
    ep = _num(entry.get("epoch"))
    if ep is None or not math.isfinite(ep):
        return last_epoch
    if ep < last_epoch - 0.01 and step > 0:
        resets.append(step)
    return ep


def _parse_evals(entries: list[dict]) -> tuple[list[EvalRow], dict[str, str]]:
    rows: list[EvalRow] = []
    skipped: dict[str, str] = {}
    for e in entries:
        metrics: dict[str, float] = {}
        for k, v in e.items():
            if not k.startswith("eval_") or k in _EVAL_NOT_METRICS:
                continue
            x = _num(v)
            if x is None:
                skipped[k] = type(v).__name__
                continue
            metrics[k[len("eval_") :]] = x
        epoch = _num(e.get("epoch"))
        rows.append(
            EvalRow(
                step=_entry_step(e, 0),
                epoch=epoch,
                loss=_num(e.get("eval_loss")),
                metrics=metrics,
                runtime_s=_num(e.get("eval_runtime")),
                n_samples=_count(e.get("eval_samples")),
            )
        )
    return rows, skipped


def load_trainer_state(path: str | Path) -> TrainerState:
    """Locate, read and parse a trainer state.

    Args:
        path: run directory, ``checkpoint-N/`` folder, folder of checkpoints or json file.

    Returns:
        The parsed :class:`TrainerState` (with ``checkpoint_note`` when a checkpoint was chosen).

    Raises:
        DataError: for a missing path, a non-JSON file or JSON without ``log_history``.
    """
    file, note = locate_trainer_state(path)
    state = parse_trainer_state(_read_json(file), file)
    state.checkpoint_note = note
    state.run_metrics = read_run_metrics(file)
    return state


def read_run_metrics(state_file: Path) -> dict | None:
    """reviewsense's ``metrics.json`` for the run that wrote ``state_file``, if there is one.

    Looks beside the state and, for a ``checkpoint-N/`` state, in the run folder above it
    (``<run>/checkpoint-N/`` or ``<run>/checkpoints/checkpoint-N/``).
    Only a file with reviewsense's ``best`` or ``validation`` key counts; an unreadable one
    is ignored (it only adds the eval size and the run's own choice of epoch).
    """
    folder = state_file.resolve().parent
    folders = [folder]
    if _checkpoint_number(folder) is not None:  # <run>/checkpoint-N/ or <run>/checkpoints/...
        folders.append(folder.parent)
        if folder.parent.name == CHECKPOINTS_DIR:
            folders.append(folder.parent.parent)
    for folder in folders:
        f = folder / METRICS_JSON
        if not f.is_file():
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            log.warning("%s: unreadable, ignored", f)
            continue
        if isinstance(data, dict) and ("best" in data or "validation" in data):
            return data
    return None
