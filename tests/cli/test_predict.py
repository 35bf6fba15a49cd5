"""`reviewsense predict`: texts, files of every format, bad rows, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from inference.models import build_tiny_bert  # tests/ is on sys.path

from reviewsense.cli.main import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A run directory whose model/ is a tiny random BERT."""
    run = tmp_path_factory.mktemp("run")
    build_tiny_bert(run / "model")
    return run


def test_texts_print_label_and_score(model_dir, capsys):
    assert main(["predict", str(model_dir), "I loved it", "", "word " * 100]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    label, score, *_ = lines[0].split("\t")
    assert label in ("negative", "positive") and 0.5 <= float(score) <= 1.0
    assert "empty text" in lines[1]
    assert lines[2].endswith("truncated")


def test_options_may_come_before_texts(model_dir, capsys):
    argv = ["predict", str(model_dir), "--precision", "fp32", "--truncation", "chunks", "ok"]
    assert main(argv) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


@pytest.mark.parametrize("ext", [".csv", ".jsonl", ".parquet", ".txt"])
def test_file_formats_keep_every_row(model_dir, tmp_path, capsys, ext):
    src = tmp_path / f"in{ext}"
    if ext == ".txt":
        src.write_bytes(b"great\n\nawful \xff film\n  \nfine\n")
        expected = ["ok", "empty text", "invalid utf-8", "empty text", "ok"]
    else:
        df = pd.DataFrame({"id": [1, 2, 3], "body": ["great", None, "awful"]})
        if ext == ".csv":
            df.to_csv(src, index=False)
        elif ext == ".jsonl":
            df.to_json(src, orient="records", lines=True)
        else:
            df.to_parquet(src)
        expected = ["ok", "missing text", "ok"]
    out = tmp_path / "out.jsonl"
    argv = ["predict", str(model_dir), "--input", str(src), "--output", str(out)]
    if ext != ".txt":
        argv += ["--text-column", "body"]
    assert main([*argv, "--batch-size", "2", "--threads", "1"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in rows] == expected
    for r in rows:
        assert (r["label"] is None) == (r["status"] != "ok")
    n_ok = expected.count("ok")
    assert f"scored {n_ok} of {len(expected)} rows" in capsys.readouterr().err


def test_output_format_follows_extension(model_dir, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("good\nbad\n", encoding="utf-8")
    for ext in (".csv", ".parquet"):
        out = tmp_path / f"out{ext}"
        assert main(["predict", str(model_dir), "-i", str(src), "-o", str(out)]) == 0
        df = pd.read_csv(out) if ext == ".csv" else pd.read_parquet(out)
        assert list(df.columns) == [
            "text",
            "label",
            "score",
            "prob_negative",
            "prob_positive",
            "truncated",
            "status",
        ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input", "{tmp}/missing.csv", "--output", "{tmp}/o.csv"], "missing.csv: no such file"),
        (["--input", "{tmp}/in.csv", "--output", "{tmp}/o.xlsx"], "unsupported file extension"),
        (["--input", "{tmp}/in.csv", "--output", "{tmp}/o.csv", "--text-column", "x"], "found"),
        (
            ["--input", "{tmp}/in.txt", "--output", "{tmp}/o.csv", "--text-column", "body"],
            "--text-column body does not apply to a .txt file",
        ),
        (["--input", "{tmp}/in.csv"], "--input needs --output"),
        ([], "nothing to score"),
        (["--text-column", "body", "hi"], "--text-column names a column of --input FILE"),
        (["--backend", "onnx", "hi"], "no model.onnx"),
    ],
)
def test_errors_are_one_line_with_exit_2(model_dir, tmp_path, capsys, extra, message):
    (tmp_path / "in.csv").write_text("text\nhello\n", encoding="utf-8")
    (tmp_path / "in.txt").write_text("hello\n", encoding="utf-8")
    argv = ["predict", str(model_dir), *[a.format(tmp=tmp_path) for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("reviewsense predict: error: ") and message in err[-1]
    assert not any("Traceback" in line for line in err)


def test_bad_model_path_in_a_real_process(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "reviewsense", "predict", str(tmp_path / "nope"), "text"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("does not exist")


def test_truncation_choices_are_the_predictors():
    from reviewsense.cli.main import build_parser
    from reviewsense.inference.predictor import INFERENCE_TRUNCATION_MODES

    for command in ("predict", "evaluate"):
        sub = build_parser(command)._subparsers._group_actions[0].choices[command]
        (action,) = [a for a in sub._actions if a.dest == "truncation" and a.help != "==SUPPRESS=="]
        assert tuple(action.choices) == ("head", "head_tail", "chunks"), command  # user-facing
        assert action.choices is INFERENCE_TRUNCATION_MODES, command  # the one list, imported
