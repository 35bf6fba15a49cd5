"""`reviewsense.sweep.report`: summary.json, report.md and report.html from finished runs."""

from __future__ import annotations

import json

import pytest

from reviewsense import sweep

from .fakes import (
    FakeTrainer,
    grid_spec,
)


def test_report_only_from_partial_sweep(tmp_path):
    out = tmp_path / "s"
    trainer = FakeTrainer(interrupt_at="epochs_3-batch_size_16/seed-43")
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(grid_spec(), out, train_fn=trainer, curves=False)
    summary = sweep.write_report(sweep.load_plan(out), curves=False)
    assert summary["complete_runs"] == 4
    e = summary["variants"]["epochs_2-batch_size_8"]
    assert e["n_seeds"] == 1 and "1 seed only" in e["verdict"]
    statuses = {(r["variant"], r["seed"]): r["status"] for r in summary["runs"]}
    assert statuses[("epochs_3-batch_size_16", 43)] == "partial"


def test_report_files_are_rendered_from_analysis_blocks(tmp_path):
    out = tmp_path / "s"
    sweep.run_sweep(grid_spec(seeds=1), out, train_fn=FakeTrainer(), curves=False)
    (out / "curves").mkdir()
    (out / "curves" / "loss.png").write_bytes(b"\x89PNG fake")
    summary = sweep.write_report(sweep.load_plan(out), curves=False)
    md = (out / "report.md").read_text()
    assert md.startswith("# Sweep t\n") and "| reviews better/worse |" in md
    assert "![curves/loss.png](curves/loss.png)" in md
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html  # self-contained, like `analyze`'s report
    assert all(e["verdict"] in md for e in summary["variants"].values())
    # summary.json is strict JSON: the baseline's missing p-value is null, not NaN.
    text = (out / "summary.json").read_text()
    assert (
        "NaN" not in text
        and json.loads(text)["variants"]["epochs_3-batch_size_16"]["p_value"] is None
    )
