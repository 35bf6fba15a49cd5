"""`reviewsense sweep` CLI: exit codes, one-line errors, no tracebacks (fake trainer)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewsense.cli.main import main
from reviewsense.rundir import DONE_MARKER, METRICS_JSON, TEST_PREDICTIONS
from reviewsense.sweep import run as sweep_run

SMALL = ["--set", "train_size=100", "--set", "max_length=64", "--set", "truncation=head"]


def _fake_train(cfg, run_dir: Path, resume: bool) -> None:
    """A run directory by the contract; accuracy improves with epochs."""
    run_dir.mkdir(parents=True, exist_ok=True)
    n = 200
    y = np.arange(n) % 2
    rng = np.random.default_rng(cfg.train.seed)
    pred = np.where(rng.random(n) < 0.7 + 0.05 * cfg.train.epochs, y, 1 - y)
    pd.DataFrame(
        {
            "row_id": [str(i) for i in range(n)],
            "label": y,
            "prob_positive": pred * 1.0,
            "prediction": pred,
        }
    ).to_parquet(run_dir / TEST_PREDICTIONS)
    acc = float((pred == y).mean())
    metrics = {
        "validation": [{"epoch": 1, "step": 5, "loss": 0.5, "accuracy": acc, "f1": acc}],
        "best": {"epoch": 1, "step": 5},
        "test": {"accuracy": acc, "f1": acc, "log_loss": 0.5},
        "train": {"train_time_s": 10.0 * cfg.train.epochs, "examples_per_s": 50.0},
    }
    (run_dir / METRICS_JSON).write_text(json.dumps(metrics))
    (run_dir / DONE_MARKER).write_text("")


@pytest.fixture
def fake_trainer(monkeypatch):
    calls = []

    def train(cfg, run_dir, resume):
        calls.append(run_dir)
        _fake_train(cfg, run_dir, resume)

    monkeypatch.setattr(sweep_run, "_default_train_fn", lambda: train)
    return calls


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("reviewsense sweep: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_grid_sweep_runs_reports_and_skips(tmp_path, capsys, fake_trainer):
    out = tmp_path / "s"
    argv = ["sweep", "--preset", "offline", "--grid", "epochs=3,2", "--seeds", "2", *SMALL]
    assert main([*argv, "--output", str(out), "--no-curves"]) == 0
    stdout = capsys.readouterr().out
    assert "epochs_2: accuracy" in stdout and "report:" in stdout
    assert len(fake_trainer) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["variants"]) == {"epochs_3", "epochs_2"}
    assert summary["variants"]["epochs_2"]["p_value"] is not None
    # Same command again: nothing trained.
    assert main([*argv, "--output", str(out), "--no-curves"]) == 0
    assert len(fake_trainer) == 4
    # The same sweep with other seeds is a different sweep: refused, one line.
    argv3 = [*argv[:5], "--seeds", "3", *SMALL]
    assert main([*argv3, "--output", str(out)]) == 2
    assert "different sweep" in _one_line_error(capsys)


def test_report_only_and_dry_run(tmp_path, capsys, fake_trainer):
    out = tmp_path / "s"
    argv = ["sweep", "--preset", "offline", "--grid", "weight_decay=0.01,0.05", *SMALL]
    assert main([*argv, "--output", str(out), "--dry-run"]) == 0
    assert "2 runs, all variants valid" in capsys.readouterr().out
    assert not out.exists() and fake_trainer == []
    assert main([*argv, "--output", str(out), "--no-curves"]) == 0
    (out / "report.md").unlink()
    capsys.readouterr()
    assert main(["sweep", "--report-only", "--output", str(out), "--no-curves"]) == 0
    assert "2/2 runs complete" in capsys.readouterr().out
    assert (out / "report.md").is_file()


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--name", "x"], "--name"),
        (["--set", "epochs=1", "--seeds", "3"], "--set, --seeds"),
        (["--baseline", "b", "--grid", "epochs=1,2"], "--baseline, --grid"),
        (["--dry-run", "--keep-going"], "--dry-run, --keep-going"),
    ],
)
def test_report_only_from_the_folder_refuses_flags_it_would_ignore(
    tmp_path, capsys, fake_trainer, extra, named
):
    out = tmp_path / "s"
    argv = ["sweep", "--preset", "offline", *SMALL, "--output", str(out), "--no-curves"]
    assert main(argv) == 0
    capsys.readouterr()
    (out / "report.md").unlink()
    assert main(["sweep", "--report-only", "--output", str(out), *extra]) == 2
    line = _one_line_error(capsys)
    assert f"ignores {named}:" in line and "drop them" in line
    assert not (out / "report.md").exists() and len(fake_trainer) == 1


def test_set_errors_read_the_same_in_train_and_sweep(tmp_path, capsys, fake_trainer):
    assert (
        main(["sweep", "--preset", "offline", "--set", "nonsense", "--output", str(tmp_path)]) == 2
    )
    sweep_line = _one_line_error(capsys).removeprefix("reviewsense sweep: error: ")
    assert main(["train", "--set", "nonsense", "--output", str(tmp_path / "run")]) == 2
    train_err = capsys.readouterr().err.strip().splitlines()[-1]
    assert train_err == f"reviewsense train: error: {sweep_line}"
    assert "--set expects key=value, e.g. --set train_size=500 (got 'nonsense')" in sweep_line


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--preset", "offline", "--grid", "lr=2e-5,-1e-5"], "invalid value for 'lr'"),
        (["--preset", "offline", "--grid", "batch_size=0,16"], "invalid value for 'batch_size'"),
        (["--preset", "offline", "--grid", "epochz=1,2"], "unknown config key 'epochz'"),
        (["--preset", "offline", "--grid", "model=minilm,bert-bsae"], "invalid value for 'model'"),
        (["--preset", "offline", "--set", "lr=abc"], "invalid value for 'lr'"),
        (["--preset", "offline", "--grid", "epochs"], "--grid expects key=v1,v2"),
        (["--preset", "offline", "--seeds", "0"], "invalid value for 'seeds'"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--config", "no_such_sweep.yaml"], "does not exist"),
        (["--config", "seed_debugging", "--grid", "epochs=1,2"], "--grid goes with --preset"),
        ([], "give --config FILE"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, fake_trainer, args, expected):
    out = tmp_path / "s"
    assert main(["sweep", *args, "--output", str(out)]) == 2
    assert expected in _one_line_error(capsys)
    assert not out.exists() and fake_trainer == []


def test_failed_run_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    def broken(cfg, run_dir, resume):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(sweep_run, "_default_train_fn", lambda: broken)
    code = main(["sweep", "--preset", "offline", *SMALL, "--output", str(tmp_path / "s")])
    assert code == 2
    line = _one_line_error(capsys)
    assert "1 of 1 runs failed" in line and "out of memory" in line


def test_subprocess_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reviewsense",
            "sweep",
            "--preset",
            "offline",
            "--grid",
            "batch_size=16,0",
            "--output",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "reviewsense sweep: error: variant 'batch_size_0': invalid value for 'batch_size'"
        )
    )
    assert not (tmp_path / "s").exists()
