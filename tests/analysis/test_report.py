"""analyze_run writes summary.json (strict JSON, contract keys), report.md/html and plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reviewsense.analysis.report import analyze_run, default_output_dir
from reviewsense.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "trainer_states"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures not present")
CONTRACT_KEYS = {
    "run", "loss_table", "lowest_loss", "final_loss", "lr_schedule", "spikes", "eval",
    "overfitting", "overfitting_detail", "recommended_epochs", "recommended_checkpoint",
    "recommended_checkpoint_by_loss", "findings",
}  # fmt: skip
RUN_KEYS = {"global_step", "epochs", "train_batch_size", "logging_steps", "eval_steps", "save_steps",
            "best_model_checkpoint", "best_metric"}  # fmt: skip


def fixture(prefix: str) -> Path:
    return next(FIXTURES.glob(f"{prefix}_*.json"))


@needs_fixtures
def test_run_dir_default_output_and_contract(tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "checkpoint-4500"
    ckpt.mkdir(parents=True)
    shutil.copy(fixture("05"), ckpt / "trainer_state.json")
    summary = analyze_run(run)
    out = run / "analysis"
    assert summary["outputs"]["dir"] == str(out)
    on_disk = json.loads((out / "summary.json").read_text())
    assert CONTRACT_KEYS <= on_disk.keys() and RUN_KEYS <= on_disk["run"].keys()
    # Overfitting by loss from epoch 5; accuracy (the inferred metric) is best at epoch 17,
    # so the recommendation follows accuracy and names the lowest-loss checkpoint too.
    assert on_disk["overfitting"] is True and on_disk["overfitting_start_epoch"] == 5
    assert on_disk["overfitting_detail"]["by_loss"] is True
    assert on_disk["recommended_epochs"] == 17
    assert on_disk["recommended_checkpoint_by_loss"] == "checkpoint-490"
    assert "checkpoint-4500" in on_disk["run"]["checkpoint_note"]
    assert {"shape", "warmup_steps", "start", "peak", "end"} <= on_disk["lr_schedule"].keys()
    for name in (
        "report.md",
        "report.html",
        "loss.png",
        "eval.png",
        "learning_rate.png",
        "grad_norm.png",
    ):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "src='loss.png'" not in html
    md = (out / "report.md").read_text()
    assert (
        "## Findings" in md and "Overfitting: **yes**" in md and "![training loss](loss.png)" in md
    )


@needs_fixtures
def test_nan_grad_norm_run_writes_strict_json_without_plots(tmp_path):
    summary = analyze_run(fixture("14"), tmp_path / "out", plots=False)
    text = (tmp_path / "out" / "summary.json").read_text()
    # strict JSON: a bare NaN/Infinity literal would reach parse_constant
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert data["overfitting"] is None
    assert not list((tmp_path / "out").glob("*.png")) and summary["outputs"]["plots"] == []


def test_empty_log_history_still_reports(tmp_path):
    p = tmp_path / "trainer_state.json"
    p.write_text('{"global_step": 0, "log_history": []}')
    summary = analyze_run(p)
    assert default_output_dir(p) == tmp_path / "analysis"
    assert (tmp_path / "analysis" / "report.html").is_file()
    assert summary["overfitting"] is None and summary["loss_table"] == []


def test_bad_input_raises_data_error(tmp_path):
    with pytest.raises(DataError):
        analyze_run(tmp_path / "missing")
