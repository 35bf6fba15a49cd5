"""`reviewsense pretrain` flags: one-line errors (exit 2) before any work, and a tiny real run."""

from __future__ import annotations

import json

import pytest
from conftest import imdb_available

from reviewsense.cli import main as cli_main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli_main.main(["pretrain", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--lr", "-1"], "invalid value for 'lr': -1.0 (must be > 0)"),
        (["--max-length", "4"], "invalid value for 'max_length'"),
        (["--train-size", "1"], "invalid value for 'train_size'"),
        (["--batch-size", "0"], "invalid value for 'batch_size'"),
        (["--epochs", "0"], "invalid value for 'epochs'"),
        (["--max-steps", "0"], "invalid value for 'max_steps': 0 (must be > 0, or -1"),
        (["--max-length", "9000"], "'max_length': 9000 (must be at least 8 and at most 8192"),
        (["--data", "/nonexistent/texts.csv"], "/nonexistent/texts.csv: file not found"),
    ],
)
def test_invalid_flags_fail_in_one_line(capsys, tmp_path, args, expected):
    code, _, err = run_cli(capsys, "--output", tmp_path / "out", *args)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("reviewsense pretrain: error: ")
    assert expected in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args",
    [["--train-size", "many"], ["--precision", "fp8"], []],  # [] lacks --output
)
def test_argparse_rejects_malformed_flags(capsys, args):
    with pytest.raises(SystemExit) as e:
        cli_main.main(["pretrain", *args])
    assert e.value.code == 2


def test_help_lists_the_contract_flags(capsys):
    with pytest.raises(SystemExit):
        cli_main.main(["pretrain", "--help"])
    out = capsys.readouterr().out
    for flag in ("--model", "--data", "--output", "--train-size", "--epochs", "--max-steps",
                 "--max-length", "--lr", "--batch-size", "--resume", "--precision",
                 "--whole-word"):  # fmt: skip
        assert flag in out


@pytest.mark.skipif(not imdb_available(), reason="IMDb parquet files not present")
def test_tiny_run_writes_a_model_folder(capsys, tiny_bert, tmp_path):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        capsys, "--model", tiny_bert, "--train-size", "100", "--max-steps", "2",
        "--max-length", "64", "--precision", "fp32", "--whole-word", "--output", out,
    )  # fmt: skip
    assert code == 0 and f"model folder: {out}" in stdout
    report = json.loads((out / "pretrain.json").read_text())
    assert report["config"]["whole_word"] and report["train"]["steps"] == 2
