"""`reviewsense train` from the command line: one-line errors (exit 2), --skip-invalid runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_reviews

from reviewsense import rundir
from reviewsense.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
# tiny and quick: a few optimizer steps at 64 tokens, no analysis report
FAST = [
    "--max-steps", "2", "--precision", "fp32", "--max-length", "64", "--truncation", "head",
    "--no-analysis", "--val-size", "8", "--train-size", "all",
]  # fmt: skip


def cli(*args, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reviewsense", "train", *map(str, args)],
        capture_output=True, text=True, timeout=300, env=ENV, cwd=cwd,
    )  # fmt: skip


def error_line(stderr: str) -> str:
    """The one error line, which must be the last line of stderr (after any log lines)."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1, stderr
    assert lines[-1] == errors[0]
    assert errors[0].startswith("reviewsense train: error: ")
    return errors[0]


def write_csv(path: Path, rows: list[tuple], columns=("text", "label")) -> Path:
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


# -- config errors (no model, no data: fast) -------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--preset", "nope"], ["unknown preset 'nope'", "available:", "offline", "seed"]),
        (["--set", "foo=1"], ["unknown config key 'foo'", "known:", "batch_size", "lr"]),
        (["--lr", "-1"], ["invalid value for 'lr'", "-1", "must be > 0"]),
        (["--batch-size", "0"], ["'batch_size'"]),
        (["--set", "max_length=100"], ["'max_length'", "head_tail", "130"]),
        (["--set", "precision=fp8"], ["'precision'", "fp32"]),
        (["--set", "nonsense"], ["--set expects key=value", "'nonsense'"]),
        (["--preset", "seed", "--config", "x.yaml"], ["either --preset or --config"]),
        (["--config", "no-such.yaml"], ["no-such.yaml", "does not exist"]),
        (["--max-steps", "0"], ["'max_steps'", "must be > 0, or -1"]),
    ],
)
def test_config_errors_one_line_exit_2(tmp_path, args, expected):
    r = cli(*args, "--output", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    line = error_line(r.stderr)
    for part in expected:
        assert part in line
    assert not (tmp_path / "run").exists()  # nothing created before the config is valid


def test_resume_without_run_dir(tmp_path):
    r = cli("--resume", tmp_path)
    assert r.returncode == 2
    line = error_line(r.stderr)
    assert str(tmp_path) in line and "config.yaml" in line


@pytest.fixture
def resumable_run(tmp_path, tiny_bert, review_files) -> Path:
    """A run directory as an interrupted run leaves it: config.yaml (lr 1e-3, 128 reviews)."""
    from tiny_models import tiny_config

    from reviewsense import config

    run = tmp_path / "run"
    run.mkdir()
    config.save(tiny_config(tiny_bert, review_files), run / rundir.CONFIG_YAML)
    return run


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["--preset", "seed"], "--preset"),
        (["--config", "x.yaml", "--output", "elsewhere"], "--config, --output"),
        (["--train-size", "10"], "--train-size"),  # the data of a run never changes midway
        (["--lr", "0.001", "--epochs", "5"], "--epochs"),  # --lr equals the run's: accepted
        (["--set", "max_length=128", "--max-steps", "3"], "--max-steps, --set max_length"),
    ],
)
def test_resume_refuses_flags_that_change_the_run(capsys, resumable_run, args, refused):
    before = (resumable_run / rundir.CONFIG_YAML).read_text()
    code = cli_main.main(["train", "--resume", str(resumable_run), *args])
    assert code == 2
    line = error_line(capsys.readouterr().err)
    assert f"--resume {resumable_run} continues the run as its config.yaml defines it" in line
    assert f"drop {refused} (or start a new run with --output)" in line
    assert (resumable_run / rundir.CONFIG_YAML).read_text() == before
    assert not (resumable_run / rundir.CHECKPOINTS_DIR).exists()


def test_help_explains_the_training_flags(capsys):
    with pytest.raises(SystemExit):
        cli_main.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for flag in ("--epochs EPOCHS passes", "--weight-decay WEIGHT_DECAY AdamW", "--seed SEED seed"):
        assert flag in out
    assert out.count("(default: the preset's)") >= 4


def test_infinite_int_override_one_line(tmp_path):
    r = cli("--set", "max_length=inf", "--output", tmp_path / "run")
    assert r.returncode == 2
    assert "'max_length'" in error_line(r.stderr)


# -- data errors -----------------------------------------------------------------------------
def train_in_process(capsys, tmp_path, model, train_file, *extra) -> tuple[int, str]:
    """Run `reviewsense train` in this process (no interpreter/torch start-up per case)."""
    argv = ["train", "--model", str(model), "--train-file", str(train_file)]
    code = cli_main.main([*argv, "--output", str(tmp_path / "run"), *FAST, *extra])
    return code, capsys.readouterr().err


GOOD = make_reviews(40, seed=5)


def test_missing_train_file_names_it(capsys, tmp_path, tiny_bert):
    missing = tmp_path / "no-such-train.csv"
    code, err = train_in_process(capsys, tmp_path, tiny_bert, missing)
    assert code == 2
    line = error_line(err)
    assert str(missing) in line and "not found" in line


@pytest.mark.parametrize(
    ("rows", "columns", "expected"),
    [
        (
            GOOD,
            ("text", "sentiment"),
            ["column 'label' not found", "columns found: text, sentiment"],
        ),
        (GOOD, ("review", "label"), ["column 'text' not found", "columns found: review, label"]),
        (
            [*GOOD[:4], ("   ", 1), *GOOD[4:]],
            ("text", "label"),
            ["row 5:", "empty", "--skip-invalid"],
        ),
        ([*GOOD[:2], (None, 0), *GOOD[2:]], ("text", "label"), ["row 3:", "text is missing"]),
        (
            [*GOOD[:6], ("fine film", "maybe"), *GOOD[6:]],
            ("text", "label"),
            ["row 7:", "'maybe'", "column 'label'"],
        ),
        (
            [r for r in GOOD if r[1] == 1],
            ("text", "label"),
            ["single class", "positive"],
        ),
    ],
    ids=[
        "no-label-column",
        "no-text-column",
        "empty-text",
        "null-text",
        "label-maybe",
        "one-class",
    ],
)
def test_bad_train_file_one_line(capsys, tmp_path, tiny_bert, rows, columns, expected):
    f = write_csv(tmp_path / "train.csv", rows, columns)
    code, err = train_in_process(capsys, tmp_path, tiny_bert, f)
    assert code == 2
    line = error_line(err)
    for part in expected:
        assert part in line, line
    assert not (tmp_path / "run" / rundir.DONE_MARKER).exists()


def test_several_bad_rows_counted(capsys, tmp_path, tiny_bert):
    rows = [*GOOD[:3], ("", 1), ("fine", "maybe"), *GOOD[3:]]
    f = write_csv(tmp_path / "train.csv", rows)
    code, err = train_in_process(capsys, tmp_path, tiny_bert, f)
    assert code == 2
    line = error_line(err)
    assert "row 4:" in line and "1 more invalid row" in line


# -- a real (tiny) run that skips bad rows ---------------------------------------------------
def test_skip_invalid_trains_and_logs_the_count(tmp_path, tiny_bert, review_files):
    rows = [*make_reviews(60, seed=7)]
    rows[10] = ("   ", 1)
    rows[20] = ("an ok film", "maybe")
    rows[30] = ("", 0)
    f = write_csv(tmp_path / "train.csv", rows)
    run = tmp_path / "run"
    args = ["--model", tiny_bert, "--train-file", f, "--test-file", review_files["test"]]
    r = cli(*args, "--skip-invalid", "--output", run, *FAST)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert f"run directory: {run}" in r.stdout
    log = (run / rundir.TRAIN_LOG).read_text()
    assert "60 reviews" not in log
    assert "57 reviews" in log and "3 invalid rows skipped" in log
    for row in (11, 21, 31):  # 1-based data rows
        assert f"row {row}:" in log
    assert (run / rundir.DONE_MARKER).is_file()
    m = json.loads((run / rundir.METRICS_JSON).read_text())
    assert m["data"]["skipped"] == 3
    assert m["data"]["train"] + m["data"]["val"] == 57
    assert m["data"]["val"] == 8
    assert m["test"]["n"] == 64
    assert m["train"]["steps"] == 2
    cfg = (run / rundir.CONFIG_YAML).read_text()
    assert "skip_invalid: true" in cfg and "max_steps: 2" in cfg
    assert not (run / rundir.ANALYSIS_DIR).exists()  # --no-analysis
    settings = rundir.read_model_settings(run / rundir.MODEL_DIR)
    assert (settings.max_length, settings.truncation) == (64, "head")
