"""`reviewsense evaluate` on a run directory made by `reviewsense train` on a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reviewsense import rundir
from reviewsense.cli import main as cli_main
from reviewsense.metrics import METRIC_KEYS

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reviewsense", *map(str, args)],
        capture_output=True, text=True, timeout=300, env=ENV, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tiny_bert, review_files, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cli-eval") / "run"
    r = cli(
        "train", "--model", tiny_bert,
        "--train-file", review_files["train"], "--test-file", review_files["test"],
        "--train-size", "all", "--val-size", "16", "--epochs", "1", "--precision", "fp32",
        "--max-length", "160", "--truncation", "head_tail", "--no-analysis", "--output", run,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / rundir.DONE_MARKER).is_file()
    return run


def test_evaluate_writes_json_report(run_dir, review_files, tmp_path):
    out = tmp_path / "reports" / "report.json"
    r = cli(
        "evaluate", run_dir, "--test-file", review_files["test"], "--output", out,
        "--precision", "fp32",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert "evaluate 64/64 (100%)" in r.stderr  # progress with rate and time, in the log
    assert "accuracy 95% CI" in r.stdout and "report written to" in r.stdout
    assert "confusion [[tn, fp], [fn, tp]] = [[" in r.stdout  # not eaten as rich markup
    report = json.loads(out.read_text())
    m = report["metrics"]
    assert set(METRIC_KEYS) <= set(m)
    assert m["n"] == 64 and report["data"]["n"] == 64
    assert sum(map(sum, m["confusion_matrix"])) == 64
    assert sum(m["confusion_matrix"][1]) == 32  # positives in the test file
    assert 0.0 <= m["accuracy"] <= 1.0
    assert m["accuracy"] == pytest.approx(
        (m["confusion_matrix"][0][0] + m["confusion_matrix"][1][1]) / 64
    )
    assert report["model"] == str(run_dir / rundir.MODEL_DIR)
    assert report["model_settings"]["max_length"] == 160
    assert report["model_settings"]["truncation"] == "head_tail"
    assert report["inference"] == {"backend": "torch", "precision": "fp32"}
    assert sum(b["n"] for b in report["by_length"]) == 64
    assert len(report["confident_mistakes"]) <= 20


def test_evaluate_defaults_to_the_runs_data(run_dir, capsys, tmp_path):
    """Without --test-file the run's own config.yaml (its test file) is used."""
    out = tmp_path / "report.json"
    code = cli_main.main(["evaluate", str(run_dir), "--output", str(out), "--test-size", "16"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["metrics"]["n"] == 16
    assert "test.jsonl" in report["data"]["source"]


def test_evaluate_missing_model_one_line(tmp_path, capsys):
    code = cli_main.main(["evaluate", str(tmp_path / "nope"), "--test-file", "x.csv"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("reviewsense evaluate: error: ")
    assert "does not exist" in err[-1] and "Traceback" not in "\n".join(err)


def _strict(name: str):
    raise ValueError(f"{name} is not valid JSON")


def test_one_class_report_is_strict_json(run_dir, tmp_path, capsys):
    test = tmp_path / "positives.csv"
    test.write_text("text,label\ngreat film,1\nloved it,1\nsuperb acting,1\n")
    out = tmp_path / "report.json"
    code = cli_main.main(["evaluate", str(run_dir), "--test-file", str(test), "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text(), parse_constant=_strict)
    assert report["metrics"]["roc_auc"] is None


def test_evaluate_a_checkpoint_uses_the_runs_truncation(run_dir, tmp_path, capsys):
    (ckpt,) = (run_dir / rundir.CHECKPOINTS_DIR).glob("checkpoint-*")
    out = tmp_path / "ckpt.json"
    code = cli_main.main(["evaluate", str(ckpt), "--test-size", "16", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["model"] == str(ckpt)
    assert (report["model_settings"]["truncation"], report["model_settings"]["max_length"]) == (
        "head_tail",
        160,
    )
    assert "test.jsonl" in report["data"]["source"]  # the run's data too


@pytest.mark.parametrize("flag", ["--truncation", "--inference-truncation"])
def test_truncation_flag_overrides_at_inference(run_dir, tmp_path, capsys, flag):
    out = tmp_path / "head.json"
    code = cli_main.main(
        ["evaluate", str(run_dir), "--test-size", "16", flag, "head", "--output", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["model_settings"]["truncation"] == "head"


@pytest.mark.parametrize("flag", ["--max-length=64", "--train-size=10", "--val-size=5"])
def test_flags_evaluate_would_not_use_are_errors(run_dir, capsys, flag):
    with pytest.raises(SystemExit) as e:
        cli_main.main(["evaluate", str(run_dir), flag])
    assert e.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_data_dir_replaces_the_data_the_run_was_trained_on(run_dir, tmp_path, capsys):
    """The run trained on files; --data-dir must score that folder, not the run's test file."""
    for label, texts in (("pos", ["loved it", "superb"]), ("neg", ["awful", "dull film"])):
        (tmp_path / "acl" / "test" / label).mkdir(parents=True)
        for i, text in enumerate(texts):
            (tmp_path / "acl" / "test" / label / f"{i}_5.txt").write_text(text)
    out = tmp_path / "report.json"
    argv = ["evaluate", str(run_dir), "--data-dir", str(tmp_path / "acl"), "--output", str(out)]
    assert cli_main.main(argv) == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["data"]["n"] == 4 and "aclImdb test" in report["data"]["source"]


def test_seed_without_a_test_subset_is_an_error(run_dir, capsys):
    assert cli_main.main(["evaluate", str(run_dir), "--seed", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("reviewsense evaluate: error: --seed draws the --test-size subset")
