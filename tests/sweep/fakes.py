"""Test helpers for the sweep tests: a fake trainer writing run directories by the contract,
and the tiny real model/data/config for the slow tests that run the real trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from tiny_models import build_tiny_model

from reviewsense import sweep
from reviewsense.config import RunConfig
from reviewsense.rundir import DONE_MARKER, METRICS_JSON, TEST_PREDICTIONS

N_TEST = 400


class FakeTrainer:
    """Writes metrics.json, test_predictions.parquet and DONE like run_training would.

    Accuracy depends on the config (epochs 2 → +4 pt, batch 8 → −1 pt) and a little on the seed,
    so the statistics have something real to find.
    """

    def __init__(self, interrupt_at: str | None = None) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.interrupt_at = interrupt_at

    def __call__(self, cfg: RunConfig, run_dir: Path, resume: bool) -> None:
        label = "/".join(run_dir.parts[-2:])
        self.calls.append((label, resume))
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        if self.interrupt_at == label:
            self.interrupt_at = None  # interrupted once, like Ctrl-C
            raise KeyboardInterrupt
        t = cfg.train
        acc = 0.80 + 0.04 * (t.epochs == 2) - 0.01 * (t.batch_size == 8)
        rng = np.random.default_rng(t.seed * 1000 + int(t.epochs) * 10 + t.batch_size)
        y = np.random.default_rng(0).integers(0, 2, N_TEST)
        pred = np.where(rng.random(N_TEST) < acc, y, 1 - y)
        test_acc = float((pred == y).mean())
        pd.DataFrame(
            {
                "row_id": [f"test-{i}" for i in range(N_TEST)],
                "label": y,
                "prob_positive": pred * 0.8 + 0.1,
                "prediction": pred,
            }
        ).to_parquet(run_dir / TEST_PREDICTIONS)
        metrics = {
            "validation": [
                {"epoch": e, "step": 10 * e, "loss": 0.5 / e, "accuracy": 0.8, "f1": 0.8}
                for e in range(1, int(t.epochs) + 1)
            ],
            "best": {"epoch": 1, "step": 10, "metric": "f1", "value": 0.8},
            "test": {"accuracy": test_acc, "f1": test_acc, "loss": 0.4, "n": N_TEST},
            "train": {
                "wall_time_s": 10.0 * t.epochs,
                "train_time_s": 9.0 * t.epochs,
                "examples_per_s": 100.0,
                "peak_rss_mb": 500.0,
                "checkpoint_disk_mb": 20.0,
                "global_batch_size": t.batch_size,
                "world_size": 1,
            },
        }
        (run_dir / METRICS_JSON).write_text(json.dumps(metrics))
        (run_dir / DONE_MARKER).write_text("")


def base_config() -> RunConfig:
    cfg = RunConfig()
    cfg.override({"model": "minilm", "train_size": 100, "max_length": 64, "truncation": "head"})
    return cfg


def grid_spec(seeds=2) -> sweep.SweepSpec:
    grid = {"epochs": [3, 2], "batch_size": [16, 8]}
    return sweep.SweepSpec(
        name="t",
        base=base_config(),
        base_source="test",
        variants=sweep.expand_grid(grid),
        seeds=seeds,
    )


# -- the real trainer on a tiny model ----------------------------------------------------------
POS = ["great", "wonderful", "loved", "excellent", "superb", "delightful"]
NEG = ["awful", "terrible", "hated", "boring", "dreadful", "worst"]


def make_tiny_model(folder: Path) -> Path:
    """Random 2-layer BERT, hidden 32, dropout 0 (ranks draw different dropout masks)."""
    return build_tiny_model(folder, dropout=0.0, max_position_embeddings=64)


def make_tiny_data(folder: Path, n_train: int = 48, n_test: int = 32) -> tuple[Path, Path]:
    """Balanced CSVs of short synthetic reviews (positive/negative word lists)."""
    rng = np.random.default_rng(0)

    def rows(n: int) -> pd.DataFrame:
        labels = np.arange(n) % 2
        texts = [
            f"the film was {' '.join(rng.choice(POS if y else NEG, 3))} and the cast "
            f"{rng.choice(['was', 'felt'])} {rng.choice(POS if y else NEG)}"
            for y in labels
        ]
        return pd.DataFrame({"text": texts, "label": labels})

    folder.mkdir(parents=True, exist_ok=True)
    train, test = folder / "train.csv", folder / "test.csv"
    rows(n_train).to_csv(train, index=False)
    rows(n_test).to_csv(test, index=False)
    return train, test


def tiny_config(model: Path, train: Path, test: Path) -> RunConfig:
    cfg = RunConfig(name="tiny", model=str(model))
    cfg.override(
        {
            "dataset": "files",
            "train_file": str(train),
            "test_file": str(test),
            "train_size": None,
            "val_size": 16,
            "test_size": None,
            "max_length": 64,
            "truncation": "head",
            "epochs": 2,
            "batch_size": 8,
            "eval_batch_size": 32,
            "lr": 1e-3,
            "precision": "fp32",
            "logging_steps": 1,
            "group_by_length": False,
            "num_threads": 1,
            "analyze": False,
        }
    )
    return cfg.validate()
