"""`reviewsense export`: success writes a usable folder; verification failure exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inference.models import build_tiny_distilbert  # tests/ is on sys.path

from reviewsense.cli.main import main
from reviewsense.inference import export as export_mod


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_distilbert(tmp_path_factory.mktemp("m") / "model")


def test_export_then_predict(model_dir, tmp_path, capsys):
    verify = tmp_path / "verify.txt"
    verify.write_text("good film\nbad film\n\nawful\n", encoding="utf-8")
    out = tmp_path / "onnx"
    argv = ["export", str(model_dir), "--format", "onnx", "--output", str(out)]
    assert main([*argv, "--verify-file", str(verify)]) == 0
    assert "exported fp32 onnx" in capsys.readouterr().out
    report = json.loads((out / "export_report.json").read_text())
    assert report["passed"] and report["n_samples"] == 3
    assert report["verify_skipped_rows"] == 1  # the blank line: counted in the report too
    assert main(["predict", str(out), "good film"]) == 0
    assert capsys.readouterr().out.startswith(("negative", "positive"))
    # Exporting onto a non-empty folder needs --overwrite.
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_verification_failure_exits_2(model_dir, tmp_path, capsys, monkeypatch):
    strict = export_mod.Tolerance(
        dp_limit=-1.0, dp_quantile=1.0, mean_abs_diff=1.0, min_label_agreement=0.0
    )
    monkeypatch.setitem(export_mod.TOLERANCES, "fp32", strict)
    assert main(["export", str(model_dir), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("reviewsense export: error: ") and "outside tolerance" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_text_column_without_verify_file_is_an_error(model_dir, tmp_path, capsys):
    argv = ["export", str(model_dir), "--output", str(tmp_path / "o"), "--text-column", "body"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "reviewsense export: error: --text-column names a column of --verify-file FILE; "
        "give both or neither"
    )
    assert not (tmp_path / "o").exists()


def test_text_column_of_a_txt_verify_file_is_an_error(model_dir, tmp_path, capsys):
    verify = tmp_path / "verify.txt"
    verify.write_text("good film\n", encoding="utf-8")
    argv = ["export", str(model_dir), "--output", str(tmp_path / "o"), "--verify-file"]
    assert main([*argv, str(verify), "--text-column", "body"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--text-column body does not apply to a .txt file" in err[-1]
    assert not (tmp_path / "o").exists()


def test_unscorable_verify_rows_are_counted_and_logged(tmp_path, caplog):
    import logging

    from reviewsense.cli.export import _verify_texts

    verify = tmp_path / "verify.csv"
    verify.write_text('body\ngood film\n""\nawful\n"  "\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="reviewsense.cli.export"):
        texts, skipped = _verify_texts(str(verify), "body")
    assert texts == ["good film", "awful"] and skipped == 2
    assert "2 rows skipped (first: row 2, missing text); verifying on the other 2" in caplog.text


def test_min_agreement_default_comes_from_verify(monkeypatch):
    """The flag reads verify.MIN_AGREEMENT, not a copy of it."""
    from reviewsense.cli.main import build_parser
    from reviewsense.inference import verify

    monkeypatch.setattr(verify, "MIN_AGREEMENT", 0.97)
    sub = build_parser("export")._subparsers._group_actions[0].choices["export"]
    assert sub.get_default("min_agreement") == 0.97
    assert "default 0.97" in " ".join(sub.format_help().split())
