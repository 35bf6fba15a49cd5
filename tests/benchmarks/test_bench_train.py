"""bench_train's argument rules and ratios (pure functions; nothing is trained)."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_train as bt  # noqa: E402
from train_speed import PROCESS_BASE, process_rows  # noqa: E402


def _refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as e:
        bt.parse_args(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("flag", ["--rounds", "--warmup", "--batch-size", "--steps"])
def test_accuracy_refuses_speed_flags(flag, capsys):
    err = _refused(["--part", "accuracy", flag, "5"], capsys)
    assert flag in err and "--part accuracy" in err


def test_accuracy_refuses_only(capsys):
    err = _refused(["--part", "accuracy", "--only", bt.USER], capsys)
    assert "--only" in err


def test_accuracy_takes_one_max_length(capsys):
    err = _refused(["--part", "accuracy", "--max-length", "128", "256"], capsys)
    assert "--max-length" in err
    assert bt.parse_args(["--part", "accuracy", "--max-length", "128"]).max_length == [128]


@pytest.mark.parametrize(
    "argv", [["--seeds", "2"], ["--epochs", "1"], ["--out", "x"], ["--ablations", "default_fp32"]]
)
def test_speed_refuses_accuracy_flags(argv, capsys):
    err = _refused(["--part", "speed", *argv], capsys)
    assert argv[0] in err


def test_speed_refuses_steps(capsys):
    assert "--steps" in _refused(["--part", "speed", "--steps", "4"], capsys)


def test_unknown_variant_and_bad_counts_are_refused(capsys):
    assert "--only" in _refused(["--part", "process", "--only", "nope"], capsys)
    assert "--rounds" in _refused(["--rounds", "0"], capsys)
    assert "--max-length" in _refused(["--max-length", "100000"], capsys)


def test_defaults_are_filled_per_part():
    speed = bt.parse_args([])
    assert (speed.rounds, speed.warmup, speed.batch_size, speed.steps) == (3, 1, 16, 3)
    acc = bt.parse_args(["--part", "accuracy"])
    assert (acc.seeds, acc.epochs, acc.out, acc.ablations) == (3, 2.0, "runs/bench-train", [])
    assert bt.parse_args(["--part", "process", "--warmup", "2"]).warmup == 2


def test_process_ratio_is_the_median_of_paired_rounds():
    base = PROCESS_BASE
    other = "torchrun 2 processes x 1 thread (DDP, gloo)"
    # per round (seconds): base 1, 2, 3; other 3, 1, 2 -> per-round ratios 1/3, 2, 1.5
    times = {base: [[1.0], [2.0], [3.0]], other: [[3.0], [1.0], [2.0]]}
    rows = {r["name"]: r for r in process_rows(times, 256, 16)}
    assert rows[other]["ratio_vs_default"] == pytest.approx(1.5)  # ratio of medians: 1.0
    assert rows[base]["ratio_vs_default"] == pytest.approx(1.0)
    assert rows[other]["ms_per_round"] == [3000.0, 1000.0, 2000.0]
    assert rows[other]["precision"] == "bf16 autocast"


def test_process_rounds_sum_their_steps():
    base, other = PROCESS_BASE, "1 process x 2 threads, OMP_PROC_BIND=close OMP_PLACES=cores"
    times = {base: [[1.0, 1.0], [2.0, 2.0]], other: [[0.5, 0.5], [2.0, 2.0]]}
    rows = {r["name"]: r for r in process_rows(times, 128, 16)}
    assert rows[other]["ratio_vs_default"] == pytest.approx(1.5)  # median of 2.0 and 1.0


def _run(folder, seed, eps, cpu="AMD EPYC", path="avx512_bf16", precision="bf16"):
    d = folder / f"seed{seed}"
    d.mkdir(parents=True)
    metrics = {
        "train": {"examples_per_s": eps, "precision": precision},
        "best_validation": {"accuracy": 0.8},
        "test": {"accuracy": 0.85},
    }
    (d / "metrics.json").write_text(json.dumps(metrics))
    (d / "environment.json").write_text(json.dumps({"cpu": cpu, "bf16_path": path}))
    return d


def test_accuracy_row_records_precision_and_environment(tmp_path):
    seeds = {0: _run(tmp_path, 0, 6.0, precision="fp32"), 1: _run(tmp_path, 1, 8.0)}
    row = bt._accuracy_row(bt.USER, seeds)
    assert row["examples_per_s"] == pytest.approx(7.0)
    assert row["precision"] == ["bf16", "fp32"]
    assert row["environments"] == ["AMD EPYC (bf16 path avx512_bf16)"]


def test_accuracy_speedup_only_on_one_environment(tmp_path):
    user = bt._accuracy_row(bt.USER, {0: _run(tmp_path / "u", 0, 6.0, precision="fp32")})
    default = bt._accuracy_row(bt.DEFAULT, {0: _run(tmp_path / "d", 0, 18.0)})
    same = bt.accuracy_speedup([user, default])
    assert same["speedup"] == pytest.approx(3.0)
    assert same["speedup_paired"] is False and "unpaired" in same["speedup_note"]
    moved = bt._accuracy_row(bt.DEFAULT, {0: _run(tmp_path / "m", 0, 18.0, cpu="Xeon", path="amx")})
    differ = bt.accuracy_speedup([user, moved])
    assert differ["speedup"] is None and "Xeon" in differ["speedup_note"]


def test_environment_lists_the_precisions_used():
    rows = [{"precision": "fp32"}, {"precision": "bf16 autocast"}, {"precision": ["bf16"]}]
    assert bt.precisions_used(rows) == "bf16, bf16 autocast, fp32"
