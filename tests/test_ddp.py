"""Data-parallel training: `torchrun --nproc_per_node 2 -m reviewsense train` on CPU (gloo).

Two processes with per-device batch 4 must reproduce a single process with batch 8 (the same
global batch): same steps, same data order (accelerate hands the ranks alternate batches of
one seeded sampler), gradients averaged over the 8 examples. With a tiny fp32 model and no
dropout the only differences left are float reduction order (all-reduce sums in another
order), so the tolerance is tight:

* training, validation and test loss: |Δ| <= 1e-2 (observed ~1e-7 once the Trainer's
  token-count loss scaling is off, see below);
* test accuracy: at most 1 of the 32 test reviews predicted differently (a probability
  sitting at 0.5 may flip on a 1e-6 difference).

This test caught a real DDP bug: with ``average_tokens_across_devices=True`` (the transformers
5 default) the Trainer multiplies the loss by the world size for models whose forward takes
``**kwargs`` — BERT's does, but its classification loss is a plain mean that ignores
``num_items_in_batch`` — so every logged train/eval loss and every gradient was 2× (gradient
clipping then bites at half the norm). ``TrainingArguments(average_tokens_across_devices=False)``
in train.py fixes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tiny_models import build_tiny_model

from reviewsense.rundir import DONE_MARKER, METRICS_JSON, TEST_PREDICTIONS

LOSS_TOL = 1e-2
POS = ["great", "wonderful", "loved", "excellent", "superb", "delightful", "brilliant"]
NEG = ["awful", "terrible", "hated", "boring", "dreadful", "worst", "dull"]
FILLER = ["the", "film", "plot", "cast", "was", "and", "a", "story", "it"]


def _tiny_model(folder: Path) -> Path:
    """Random 2-layer BERT, hidden 32, dropout 0 (ranks draw different dropout masks)."""
    return build_tiny_model(folder, dropout=0.0, max_position_embeddings=64)


def _reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    texts = []
    for y in labels:
        words = list(rng.choice(FILLER, int(rng.integers(4, 20))))
        for w in rng.choice(POS if y else NEG, 3):
            words.insert(int(rng.integers(0, len(words) + 1)), str(w))
        texts.append(" ".join(words))
    return pd.DataFrame({"text": texts, "label": labels})


def _write_config(tmp: Path, model: Path) -> Path:
    data = tmp / "data"
    data.mkdir()
    _reviews(80, 1).to_csv(data / "train.csv", index=False)  # 64 train + 16 validation
    with (data / "test.jsonl").open("w") as f:
        for rec in _reviews(32, 2).to_dict("records"):
            f.write(json.dumps({"text": rec["text"], "label": int(rec["label"])}) + "\n")
    cfg = {
        "name": "ddp-test",
        "model": str(model),
        "data": {
            "dataset": "files",
            "train_file": str(data / "train.csv"),
            "test_file": str(data / "test.jsonl"),
            "train_size": None,
            "val_size": 16,
            "test_size": None,
            "max_length": 64,
            "truncation": "head",
        },
        "train": {
            "epochs": 2,
            "eval_batch_size": 16,
            "lr": 2e-3,
            "weight_decay": 0.01,
            "precision": "fp32",
            "logging_steps": 1,
            "group_by_length": False,  # length groups depend on the per-device batch size
            "num_threads": 1,
            "analyze": False,
            "seed": 7,
        },
    }
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    # The token cache is shared; keep the test's away from the user's.
    return env


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    return proc


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_single_process(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    if not Path(torchrun).exists():
        pytest.skip("torchrun not installed")
    model = _tiny_model(tmp_path / "tiny-bert")
    cfg = _write_config(tmp_path, model)
    work = tmp_path / "work"  # cwd of both launches: nothing else may appear here
    work.mkdir()

    _run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "reviewsense",
            "train",
            "--config",
            str(cfg),
            "--set",
            "batch_size=4",
            "--output",
            str(work / "ddp"),
        ],
        cwd=work,
    )
    _run(
        [
            sys.executable,
            "-m",
            "reviewsense",
            "train",
            "--config",
            str(cfg),
            "--set",
            "batch_size=8",
            "--output",
            str(work / "single"),
        ],
        cwd=work,
    )

    assert sorted(p.name for p in work.iterdir()) == ["ddp", "single"]  # one run dir each
    ddp, single = work / "ddp", work / "single"
    assert (ddp / DONE_MARKER).is_file()
    md = json.loads((ddp / METRICS_JSON).read_text())
    ms = json.loads((single / METRICS_JSON).read_text())
    assert md["train"]["world_size"] == 2 and md["train"]["global_batch_size"] == 8
    assert ms["train"]["world_size"] == 1 and ms["train"]["global_batch_size"] == 8
    assert md["train"]["steps"] == ms["train"]["steps"] == 16  # 64 / 8 per epoch × 2

    assert len(md["validation"]) == len(ms["validation"]) == 2
    for a, b in zip(md["validation"], ms["validation"], strict=True):
        assert abs(a["loss"] - b["loss"]) <= LOSS_TOL, (a, b)
    assert abs(md["train"]["train_loss"] - ms["train"]["train_loss"]) <= LOSS_TOL
    assert abs(md["test"]["log_loss"] - ms["test"]["log_loss"]) <= LOSS_TOL
    pd_, ps = pd.read_parquet(ddp / TEST_PREDICTIONS), pd.read_parquet(single / TEST_PREDICTIONS)
    assert len(pd_) == len(ps) == 32  # every test review once (no duplicates from padding)
    j = pd_.merge(ps, on="row_id", suffixes=("_d", "_s"))
    assert len(j) == 32
    assert int((j["prediction_d"] != j["prediction_s"]).sum()) <= 1
    assert float(np.abs(j["prob_positive_d"] - j["prob_positive_s"]).max()) <= LOSS_TOL
