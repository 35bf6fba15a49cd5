"""`python -m reviewsense analyze` end to end: exit codes, outputs, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "trainer_states"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures not present")


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reviewsense", "analyze", *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )  # fmt: skip


@needs_fixtures
def test_analyze_one_run(tmp_path):
    src = next(FIXTURES.glob("05_*.json"))
    r = cli(src, "--output", tmp_path / "out", "--no-plots")
    assert r.returncode == 0, r.stderr
    assert "overfitting" in r.stdout and "Report written to" in r.stdout
    assert (tmp_path / "out" / "summary.json").is_file()


@needs_fixtures
def test_analyze_several_runs_compares(tmp_path):
    for p in ("02", "08"):
        (tmp_path / f"run{p}").mkdir()
        shutil.copy(next(FIXTURES.glob(f"{p}_*.json")), tmp_path / f"run{p}" / "trainer_state.json")
    r = cli(tmp_path / "run02", tmp_path / "run08", "--no-plots")
    assert r.returncode == 0, r.stderr
    assert "Comparison of 2 runs" in r.stdout
    assert (tmp_path / "comparison" / "summary.json").is_file()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: (d / "a.json").write_text("{not json") and d / "a.json", "not valid JSON"),
        (lambda d: (d / "b.json").write_text('{"x": 1}') and d / "b.json", "no 'log_history'"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no readable trainer_state.json"),
    ],
)
def test_bad_input_one_line_no_traceback(tmp_path, make, expected):
    r = cli(make(tmp_path), "--no-plots")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("reviewsense analyze: error:")
        and expected in lines[0]
    )


@needs_fixtures
@pytest.mark.parametrize(
    ("kinds", "code"),
    [("overfitting,not_learning", 3), ("not_learning,loss_collapse,nonfinite_grad_norm", 0)],
)
def test_fail_on_exit_codes(tmp_path, kinds, code):
    src = next(FIXTURES.glob("05_*.json"))  # overfitting by loss, nothing else of these
    r = cli(src, "--output", tmp_path / "out", "--no-plots", "--fail-on", kinds)
    assert r.returncode == code, r.stderr
    assert ("--fail-on: found overfitting" in r.stdout) == (code == 3)


@needs_fixtures
def test_fail_on_unknown_kind_is_a_user_error(tmp_path):
    src = next(FIXTURES.glob("05_*.json"))
    r = cli(src, "--output", tmp_path / "out", "--no-plots", "--fail-on", "overfiting")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip()
    assert "\n" not in line and "unknown finding kind(s) overfiting" in line
    assert "choose from" in line and "loss_collapse" in line


@needs_fixtures
def test_eval_size_reaches_the_summary(tmp_path):
    src = next(FIXTURES.glob("06_*.json"))
    r = cli(src, "--output", tmp_path / "out", "--no-plots", "--eval-size", "1084")
    assert r.returncode == 0, r.stderr
    detail = json.loads((tmp_path / "out" / "summary.json").read_text())["overfitting_detail"]
    assert detail["eval_size"] == 1084 and detail["noise_source"] == "binomial"
    r = cli(src, "--output", tmp_path / "out", "--no-plots", "--eval-size", "0")
    assert r.returncode == 2 and "--eval-size must be a positive" in r.stderr
