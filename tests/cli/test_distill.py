"""`reviewsense distill` flags: one-line errors (exit 2) before any training."""

from __future__ import annotations

import pytest

from reviewsense.cli import main as cli_main


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = cli_main.main(["distill", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--layers", "0"], "invalid value for 'layers': 0 (must be >= 1)"),
        (["--temperature", "0"], "invalid value for 'temperature'"),
        (["--alpha", "1.5"], "invalid value for 'alpha': 1.5 (must be in [0, 1])"),
        (["--unlabeled-size", "-1"], "invalid value for 'unlabeled_size'"),
        (["--max-length", "4"], "invalid value for 'max_length'"),
        (["--max-steps", "0"], "invalid value for 'max_steps': 0 (must be > 0, or -1"),
        # the tiny teacher cuts head_tail (the default settings): 128 head tokens + 1 tail
        (["--layers", "1", "--max-length", "100"], "pass --max-length 131 or more"),
    ],
)
def test_invalid_flags_fail_in_one_line(capsys, tiny_bert, tmp_path, args, expected):
    code, err = run_cli(capsys, tiny_bert, "--output", tmp_path / "out", *args)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("reviewsense distill: error: ")
    assert expected in err
    assert not (tmp_path / "out").exists()


def test_more_layers_than_the_teacher_is_refused(capsys, tiny_bert, tmp_path):
    code, err = run_cli(capsys, tiny_bert, "--layers", "3", "--output", tmp_path / "out")
    assert code == 2
    assert "the teacher has 2 layers; choose 1..2" in err.strip().splitlines()[-1]


def test_missing_teacher_is_refused(capsys, tmp_path):
    code, err = run_cli(capsys, tmp_path / "nope", "--output", tmp_path / "out")
    assert code == 2 and "does not exist" in err


def test_help_lists_the_contract_flags(capsys):
    with pytest.raises(SystemExit):
        cli_main.main(["distill", "--help"])
    out = capsys.readouterr().out
    for flag in ("TEACHER_RUN", "--layers", "--train-size", "--unlabeled-size", "--epochs",
                 "--max-length", "--temperature", "--alpha", "--lr", "--batch-size",
                 "--precision", "--output"):  # fmt: skip
        assert flag in out
