"""Parsing trainer_state.json files of every shape: real fixtures and synthetic edge cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from reviewsense.analysis.trainer_state import load_trainer_state, locate_trainer_state
from reviewsense.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "trainer_states"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures not present")


def fixture(prefix: str) -> Path:
    return next(FIXTURES.glob(f"{prefix}_*.json"))


def write_state(path: Path, log_history: list, **header) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"global_step": 0, **header, "log_history": log_history}), encoding="utf-8"
    )
    return path


@needs_fixtures
def test_crlf_file_parses_all_rows():
    s = load_trainer_state(fixture("06"))
    assert b"\r\n" in fixture("06").read_bytes()
    assert s.n_train == 542 and len(s.evals) == 10
    assert s.has_grad_norm


@needs_fixtures
def test_nan_literal_kept_as_nonfinite_logged_grad_norm():
    s = load_trainer_state(fixture("14"))
    i = int((s.step == 222).nonzero()[0][0])
    assert math.isnan(s.grad_norm[i]) and s.grad_norm_logged[i]
    assert s.summary_row is not None and s.summary_row["train_runtime"] > 0


@needs_fixtures
def test_list_valued_eval_metric_skipped_and_repeated_eval_deduplicated():
    s = load_trainer_state(fixture("08"))
    assert len(s.evals) == 4  # the repeated final eval at step 960 collapses into one
    assert all("thresholds" not in r.metrics for r in s.evals)
    assert {"accuracy", "f1", "roc_auc"} <= set(s.evals[0].metrics)
    assert any("eval_thresholds (list)" in n for n in s.notes)
    assert not s.has_grad_norm


def test_nan_and_infinity_literals(tmp_path):
    p = tmp_path / "trainer_state.json"
    p.write_text(
        '{"log_history": [{"step": 1, "epoch": 0.1, "loss": NaN, "grad_norm": Infinity, "learning_rate": 1e-5},'
        ' {"step": 2, "epoch": 0.2, "loss": 0.5, "grad_norm": -Infinity, "learning_rate": 1e-5}]}\r\n'
    )
    s = load_trainer_state(p)
    assert math.isnan(s.loss[0]) and math.isinf(s.grad_norm[0]) and s.loss[1] == 0.5


def test_resumed_run_repeated_and_out_of_order_steps_keep_last(tmp_path):
    log = [
        {"step": k, "epoch": k / 10, "loss": 1.0 / k, "learning_rate": 1e-5} for k in (1, 2, 3, 4)
    ]
    # resumed from step 2: steps 3 and 4 are logged again with different values
    log += [{"step": k, "epoch": k / 10, "loss": 9.0, "learning_rate": 1e-5} for k in (3, 4)]
    log += [{"step": 6, "epoch": 0.6, "loss": 0.1}, {"step": 5, "epoch": 0.5, "loss": 0.2}]
    s = load_trainer_state(write_state(tmp_path / "trainer_state.json", log))
    assert s.step.tolist() == [1, 2, 3, 4, 5, 6]
    assert s.loss.tolist()[2:4] == [9.0, 9.0]  # last occurrence wins
    assert any("2 repeated" in n for n in s.notes) and any(
        "out of step order" in n for n in s.notes
    )


def test_empty_log_history(tmp_path):
    s = load_trainer_state(write_state(tmp_path / "trainer_state.json", []))
    assert s.n_train == 0 and s.evals == [] and not s.has_grad_norm


def test_locate_forms(tmp_path):
    run = tmp_path / "run"
    write_state(run / "checkpoints" / "checkpoint-10" / "trainer_state.json", [])
    write_state(run / "checkpoints" / "checkpoint-20" / "trainer_state.json", [])
    (run / "checkpoints" / "checkpoint-30").mkdir()  # incomplete: no state
    (run / "checkpoints" / "checkpoint-30" / "trainer_state.json").write_text("{trunc")
    path, note = locate_trainer_state(run)
    assert path.parent.name == "checkpoint-20"
    assert "checkpoint-20" in note and "skipped checkpoint-30" in note
    # folder of checkpoints, a checkpoint folder, a json file, a run dir with top-level state
    assert locate_trainer_state(run / "checkpoints")[0].parent.name == "checkpoint-20"
    assert (
        locate_trainer_state(run / "checkpoints" / "checkpoint-10")[0].parent.name
        == "checkpoint-10"
    )
    top = write_state(run / "trainer_state.json", [])
    assert locate_trainer_state(run) == (top, None)
    assert locate_trainer_state(top) == (top, None)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json at all", "not valid JSON"),
        ('{"global_step": 3}', "no 'log_history'"),
        ("[1, 2]", "no 'log_history'"),
        ('{"log_history": 5}', "must be a list"),
    ],
)
def test_bad_files_raise_one_line_data_error(tmp_path, content, expected):
    p = tmp_path / "trainer_state.json"
    p.write_text(content)
    with pytest.raises(DataError, match=expected) as e:
        load_trainer_state(p)
    assert "\n" not in str(e.value)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_trainer_state(tmp_path / "nope")
    with pytest.raises(DataError, match="no readable trainer_state.json"):
        load_trainer_state(tmp_path)


def test_run_metrics_found_from_a_checkpoint_but_not_from_an_unrelated_parent(tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "checkpoint-8"
    ckpt.mkdir(parents=True)
    state = {"log_history": [{"step": 8, "epoch": 1.0, "loss": 0.5}]}
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    (run / "metrics.json").write_text(json.dumps({"best": {"step": 8}, "data": {"val": 32}}))
    assert load_trainer_state(run).run_metrics["data"]["val"] == 32
    assert load_trainer_state(ckpt).run_metrics["data"]["val"] == 32
    other = tmp_path / "other"
    other.mkdir()
    (other / "trainer_state.json").write_text(json.dumps(state))
    (tmp_path / "metrics.json").write_text(json.dumps({"best": {"step": 8}}))
    assert load_trainer_state(other).run_metrics is None
