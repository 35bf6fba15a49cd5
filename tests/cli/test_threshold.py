"""`reviewsense threshold`: choosing the negative-class threshold and storing it in the model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from reviewsense import rundir
from reviewsense.cli.main import main
from reviewsense.errors import DataError
from reviewsense.metrics import choose_threshold


def make_run(tmp_path, labels, prob_positive):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    pd.DataFrame(
        {
            "row_id": [str(i) for i in range(len(labels))],
            "label": labels,
            "prob_positive": prob_positive,
            "prediction": [int(p >= 0.5) for p in prob_positive],
        }
    ).to_parquet(run / rundir.VAL_PREDICTIONS)
    return run


def test_lowest_threshold_reaching_the_precision():
    # P(negative) sorted: 0.95(neg) 0.9(neg) 0.8(pos) 0.7(neg) 0.6(neg) 0.4(pos) 0.2(neg)
    p_neg = [0.95, 0.9, 0.8, 0.7, 0.6, 0.4, 0.2]
    labels = [0, 0, 1, 0, 0, 1, 0]
    r = choose_threshold(labels, p_neg, precision_target=0.8)
    assert r["threshold"] == 0.6  # 4 of 5 flagged are negative
    assert r["precision"] == pytest.approx(0.8) and r["recall"] == pytest.approx(0.8)
    assert r["n"] == 7 and r["flagged"] == 5
    assert choose_threshold(labels, p_neg, precision_target=1.0)["threshold"] == 0.9


def test_ties_flag_together():
    r = choose_threshold([0, 1, 0], [0.9, 0.9, 0.1], precision_target=0.6)
    assert r["threshold"] == 0.1 and r["precision"] == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="no threshold reaches"):
        choose_threshold([0, 1], [0.9, 0.9], precision_target=0.9)


def test_cli_writes_threshold_and_info(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    prob_pos = np.clip(labels * 0.6 + rng.normal(0.2, 0.2, 400), 0, 1)
    run = make_run(tmp_path, labels, prob_pos)
    assert main(["threshold", str(run), "--precision", "0.9"]) == 0
    settings = rundir.read_model_settings(run / "model")
    info = settings.threshold_info
    assert 0 < settings.threshold < 1
    assert info["precision_target"] == 0.9 and info["precision"] >= 0.9
    assert 0 < info["recall"] <= 1 and info["n"] == 400
    assert info["source"].endswith(rundir.VAL_PREDICTIONS)
    assert json.loads((run / "model" / "config.json").read_text())["model_type"] == "bert"
    assert "precision" in capsys.readouterr().out


def test_dry_run_changes_nothing(tmp_path):
    run = make_run(tmp_path, [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
    assert main(["threshold", str(run), "--precision", "0.9", "--dry-run"]) == 0
    assert rundir.read_model_settings(run / "model").threshold is None


def test_explicit_model_folder(tmp_path):
    run = make_run(tmp_path, [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
    other = tmp_path / "exported"
    other.mkdir()
    (other / "config.json").write_text("{}")
    assert main(["threshold", str(run), "--precision", "0.9", "--model", str(other)]) == 0
    assert rundir.read_model_settings(other).threshold == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", ["--precision", "0.9"], "not found"),
        ("ok", ["--precision", "1.5"], "--precision"),
        ("ok", ["--precision", "0"], "--precision"),
        ("unreachable", ["--precision", "0.99"], "no threshold reaches"),
        ("nonneg", ["--precision", "0.9"], "no negative"),
        ("badlabel", ["--precision", "0.9"], "label"),
        ("badprob", ["--precision", "0.9"], "prob_positive"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, capsys, setup, args, message):
    run = tmp_path / "run"
    if setup == "ok":
        run = make_run(tmp_path, [0, 1], [0.1, 0.9])
    elif setup == "unreachable":
        run = make_run(tmp_path, [1, 0, 1, 0], [0.1, 0.2, 0.3, 0.9])
    elif setup == "nonneg":
        run = make_run(tmp_path, [1, 1], [0.1, 0.9])
    elif setup == "badlabel":
        run = make_run(tmp_path, [0, 2], [0.1, 0.9])
    elif setup == "badprob":
        run = make_run(tmp_path, [0, 1], [0.1, 1.9])
    else:
        run.mkdir()
    assert main(["threshold", str(run), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reviewsense threshold: error:") and message in err
    assert err.count("\n") == 1
