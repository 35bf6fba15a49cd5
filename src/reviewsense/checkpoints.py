"""Checkpoint safety for training runs: which ``checkpoint-N`` folders can be resumed from.

A process killed while saving leaves a folder with missing files or a truncated safetensors
file; both are detected here, so they are moved aside rather than loaded.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from reviewsense.runtime import is_main_process

log = logging.getLogger(__name__)

CKPT_RE = re.compile(r"^checkpoint-(\d+)$")
# A checkpoint is loadable only if the Trainer finished writing all of these.
_CKPT_REQUIRED = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def dir_size_mb(path: Path) -> float:
    """Size of every file under ``path`` in MiB (0 when it does not exist)."""
    if not path.exists():
        return 0.0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def checkpoint_step(path: Path) -> int | None:
    """N of a ``checkpoint-N`` folder, else None."""
    m = CKPT_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoint-N`` under ``ckpt_dir``, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = ((checkpoint_step(p), p) for p in ckpt_dir.iterdir() if p.is_dir())
    return sorted((s, p) for s, p in found if s is not None)


def _safetensors_problem(weights: Path) -> str | None:
    if not weights.is_file():
        return "missing model.safetensors"
    try:
        # Header = 8-byte little-endian length + JSON with byte offsets; a truncated file
        # ends before the last tensor's end offset.
        with weights.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        end = max(
            (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0
        )
        if weights.stat().st_size < 8 + n + end:
            return "truncated model.safetensors"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable model.safetensors ({e})"
    return None


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why ``ckpt`` cannot be resumed from, or None when it is complete."""
    for name in _CKPT_REQUIRED:
        if not (ckpt / name).is_file():
            return f"missing {name}"
    try:
        json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"unreadable trainer_state.json ({e})"
    return _safetensors_problem(ckpt / "model.safetensors")


def last_complete_checkpoint(ckpt_dir: Path) -> Path | None:
    """Newest complete ``checkpoint-N``; incomplete ones are renamed aside and logged."""
    for _, p in reversed(list_checkpoints(ckpt_dir)):
        problem = checkpoint_problem(p)
        if problem is None:
            return p
        aside = p.with_name(f"incomplete-{p.name}")
        log.warning("skipping incomplete checkpoint %s (%s); moved to %s", p, problem, aside.name)
        if is_main_process():
            shutil.rmtree(aside, ignore_errors=True)
            p.rename(aside)
    return None
