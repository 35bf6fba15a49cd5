"""Checkpoint safety on hand-made checkpoint folders (real safetensors files, no Trainer)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from reviewsense.checkpoints import (
    checkpoint_problem,
    checkpoint_step,
    dir_size_mb,
    last_complete_checkpoint,
    list_checkpoints,
)


def make_checkpoint(path, complete: bool = True):
    path.mkdir(parents=True)
    save_file({"w": torch.zeros(64, 64)}, str(path / "model.safetensors"))
    (path / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    (path / "scheduler.pt").write_bytes(b"s")
    if complete:
        (path / "optimizer.pt").write_bytes(b"o")
    return path


def test_problems_are_named(tmp_path):
    good = make_checkpoint(tmp_path / "checkpoint-10")
    assert checkpoint_problem(good) is None
    assert checkpoint_problem(make_checkpoint(tmp_path / "c2", complete=False)) == (
        "missing optimizer.pt"
    )
    cut = make_checkpoint(tmp_path / "c3")
    w = cut / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    assert checkpoint_problem(cut) == "truncated model.safetensors"
    (cut / "trainer_state.json").write_text("{not json")
    assert checkpoint_problem(cut).startswith("unreadable trainer_state.json")


def test_newest_complete_checkpoint_and_listing(tmp_path):
    make_checkpoint(tmp_path / "checkpoint-10")
    make_checkpoint(tmp_path / "checkpoint-20")
    make_checkpoint(tmp_path / "checkpoint-30", complete=False)
    (tmp_path / "not-a-checkpoint").mkdir()
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10, 20, 30]
    assert checkpoint_step(tmp_path / "checkpoint-20") == 20
    assert checkpoint_step(tmp_path / "other") is None
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-20"
    assert (tmp_path / "incomplete-checkpoint-30").is_dir()  # moved aside, not deleted
    assert last_complete_checkpoint(tmp_path / "missing") is None
    assert dir_size_mb(tmp_path) > 0 and dir_size_mb(tmp_path / "missing") == 0.0
