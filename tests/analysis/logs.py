"""Synthetic ``trainer_state.json`` contents shaped like real Trainer logs (test helper).

A run logs the training loss every ``log_every`` steps and evaluates once per epoch, like
``eval_strategy="epoch"``; eval values are given per epoch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reviewsense.analysis.diagnose import diagnose
from reviewsense.analysis.trainer_state import parse_trainer_state


def make_log(
    evals: dict[str, list[float]] | None = None,
    spe: int = 100,
    epochs: int | None = None,
    train: Callable[[float], float] | None = lambda frac: 0.7 * math.exp(-3 * frac) + 0.05,
    log_every: int = 10,
    seed: int = 0,
    **header: object,
) -> dict:
    """A trainer state dict.

    Args:
        evals: eval key without ``eval_`` -> one value per epoch (``loss`` = eval_loss).
        spe: optimizer steps per epoch.
        epochs: number of epochs (default: the length of the eval series, else 3).
        train: training loss as a function of the fraction of the run done (None: no train
            loss logged); 5% multiplicative noise is added.
        header: extra top-level fields (best_metric, best_model_checkpoint, ...).
    """
    evals = evals or {}
    n_epochs = epochs or max((len(v) for v in evals.values()), default=3)
    total = n_epochs * spe
    rng = np.random.default_rng(seed)
    log: list[dict] = []
    for step in range(1, total + 1):
        if train is not None and step % log_every == 0:
            loss = train(step / total) * (1 + 0.05 * rng.standard_normal())
            log.append(
                {"step": step, "epoch": step / spe, "loss": round(loss, 6), "grad_norm": 1.0,
                 "learning_rate": 2e-5 * (1 - step / total)}
            )  # fmt: skip
        if step % spe == 0:
            e = step // spe
            row = {"step": step, "epoch": float(e), "eval_runtime": 1.0}
            for k, values in evals.items():
                if e - 1 < len(values):
                    row[f"eval_{k}"] = values[e - 1]
            log.append(row)
    return {"global_step": total, "max_steps": total, "num_train_epochs": n_epochs,
            "train_batch_size": 16, **header, "log_history": log}  # fmt: skip


def analyse(data: dict, eval_size: int | None = None, path: Path | None = None) -> dict:
    """Diagnose a state dict through a JSON round trip; the summary must be strict JSON."""
    state = parse_trainer_state(json.loads(json.dumps(data)), path or Path("trainer_state.json"))
    summary = diagnose(state, eval_size)
    json.dumps(summary, allow_nan=False)
    return summary


def kinds(summary: dict) -> set[str]:
    return {f["kind"] for f in summary["findings"]}


def finding_of(summary: dict, kind: str) -> dict:
    return next(f for f in summary["findings"] if f["kind"] == kind)


def synthetic(n=400, spe=100, lr=None, loss=None, grad=True, evals=(), **header) -> dict:
    """A run of ``n`` steps logged every step; ``evals`` = eval dicts (epoch, eval_loss, ...)."""
    rng = np.random.default_rng(0)
    lr = lr or (lambda s: 2e-5 * (1 - s / n))
    loss = loss or (lambda s: 0.7 * math.exp(-s / 150) + 0.1)
    log = []
    for s in range(1, n + 1):
        e = {
            "step": s,
            "epoch": s / spe,
            "loss": loss(s) * (1 + 0.1 * rng.standard_normal()),
            "learning_rate": lr(s),
        }
        if grad:
            e["grad_norm"] = float(abs(1.0 + 0.1 * rng.standard_normal()))
        log.append(e)
    for ev in evals:
        log.append(
            {
                "step": int(ev["epoch"] * spe),
                **{k if k == "epoch" else f"eval_{k}": v for k, v in ev.items()},
            }
        )
    return {"global_step": n, "max_steps": n, "train_batch_size": 16, **header, "log_history": log}


def run(data: dict) -> dict:
    summary = diagnose(
        parse_trainer_state(json.loads(json.dumps(data)), Path("trainer_state.json"))
    )
    json.dumps(summary, allow_nan=False)
    return summary
