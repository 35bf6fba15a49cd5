"""compare_runs: one table, leaders, overlay plots, a report per run; paths or summaries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reviewsense.analysis.compare import compare_runs, default_comparison_dir, run_label
from reviewsense.analysis.report import analyze_run
from reviewsense.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "trainer_states"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures not present")


def make_runs(tmp_path: Path, prefixes: list[str]) -> list[Path]:
    runs = []
    for p in prefixes:
        run = tmp_path / "sweep" / f"run{p}"
        run.mkdir(parents=True)
        shutil.copy(next(FIXTURES.glob(f"{p}_*.json")), run / "trainer_state.json")
        runs.append(run)
    return runs


def test_compare_paths(tmp_path):
    runs = make_runs(tmp_path, ["02", "03", "08"])
    out = default_comparison_dir(runs)
    assert out == tmp_path / "sweep" / "comparison"
    result = compare_runs(runs, out, plots=False)
    on_disk = json.loads((out / "summary.json").read_text())
    assert [r["label"] for r in on_disk["runs"]] == ["run02", "run03", "run08"]
    rows = {r["run"]: r for r in on_disk["comparison"]["rows"]}
    assert rows["run02"]["final_loss"] == 0.349 and rows["run02"]["global_step"] == 375
    assert rows["run03"]["best_eval_loss"] == pytest.approx(0.3029, abs=1e-4)
    assert rows["run03"]["best_f1_macro"] == pytest.approx(0.6534, abs=1e-4)
    assert (
        rows["run08"]["best_f1"] == pytest.approx(0.7433, abs=1e-4)
        and rows["run02"]["best_f1"] is None
    )
    assert any("Best best_eval_loss: run08" in f["message"] for f in result["findings"])
    # side by side: each run's selection metric, recommendation and health findings
    assert rows["run03"]["selection_metric"] == "f1_macro"
    assert rows["run03"]["best_selection_value"] == pytest.approx(0.6534, abs=1e-4)
    assert rows["run03"]["recommended_checkpoint"].endswith("checkpoint-2445")
    assert rows["run03"]["health_findings"] == "class_imbalance"
    assert rows["run02"]["selection_metric"] == "loss" and rows["run02"]["health_findings"] == ""
    # lined up on the same steps: run02 evaluates at 125/250/375, run03 at 815/1630/2445
    aligned = on_disk["aligned"]
    assert aligned["steps"][:3] == [125, 240, 250]
    assert aligned["runs"]["run02"]["values"][0] == pytest.approx(0.3951, abs=1e-4)
    assert aligned["runs"]["run03"]["values"][0] is None
    assert "Evaluations lined up by step" in (out / "report.md").read_text()
    assert (out / "runs" / "run03" / "report.md").is_file() and (out / "report.html").is_file()


def test_compare_summaries_with_labels_and_plots(tmp_path):
    runs = make_runs(tmp_path, ["05", "06"])
    summaries = [analyze_run(r, plots=False) for r in runs]
    result = compare_runs(summaries, tmp_path / "cmp", labels=["lr-a", "lr-b"])
    assert [r["label"] for r in result["runs"]] == ["lr-a", "lr-b"]
    assert result["outputs"]["plots"] == ["compare_loss.png", "compare_eval.png", "compare_lr.png"]
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3


def test_labels_mismatch_and_run_label(tmp_path):
    runs = make_runs(tmp_path, ["02"])
    with pytest.raises(DataError, match="labels"):
        compare_runs(runs, tmp_path / "x", labels=["a", "b"])
    ckpt = tmp_path / "r" / "checkpoints" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    assert run_label(ckpt) == "r"
