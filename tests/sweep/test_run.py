"""`reviewsense.sweep.run`: skip + resume, failures, the real trainer on a tiny model.

Most tests inject a fake trainer that writes a run directory by the contract (fast, exact
control over predictions); the slow tests run the real trainer on a tiny random BERT.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from reviewsense import sweep
from reviewsense.rundir import DONE_MARKER, METRICS_JSON, TEST_PREDICTIONS

from .fakes import (
    N_TEST,
    FakeTrainer,
    base_config,
    grid_spec,
    make_tiny_data,
    make_tiny_model,
    tiny_config,
)


def test_sweep_runs_skips_and_reports(tmp_path, caplog):
    out = tmp_path / "s"
    trainer = FakeTrainer()
    result = sweep.run_sweep(grid_spec(), out, train_fn=trainer, curves=False)
    assert len(trainer.calls) == 8 and result.n_trained == 8
    assert (out / "sweep.yaml").is_file()
    assert all((out / v / f"seed-{s}" / DONE_MARKER).is_file() for v, s in _all(out))

    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete_runs"] == 8 and summary["baseline"] == "epochs_3-batch_size_16"
    variants = summary["variants"]
    assert len(variants) == 4
    for name, e in variants.items():
        assert {"mean", "std", "delta", "ci", "p_value", "verdict"} <= set(e)
        assert e["n_seeds"] == 2
        assert name in (out / "report.md").read_text()
        assert name in (out / "report.html").read_text()
    e2 = variants["epochs_2-batch_size_16"]
    assert 0 <= e2["p_value"] <= 1 and e2["ci"]["test_accuracy"][0] < e2["ci"]["test_accuracy"][1]
    assert e2["delta"]["test_accuracy"] > 0  # the fake trainer made 2 epochs better
    assert e2["delta"]["train_time_s_rel"] == pytest.approx(-1 / 3)
    assert "33% less training time" in e2["verdict"]
    assert e2["n_paired_predictions"] == 2 * N_TEST  # both seeds
    assert e2["review_test"]["n_reviews"] == N_TEST  # the review is the unit, not the pair
    assert variants["epochs_3-batch_size_16"]["p_value"] is None  # the baseline itself

    # Re-running the same sweep trains nothing and leaves the runs untouched.
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob(METRICS_JSON)}
    caplog.set_level(logging.INFO, logger="reviewsense.sweep")
    again = FakeTrainer()
    result = sweep.run_sweep(grid_spec(), out, train_fn=again, curves=False)
    assert again.calls == [] and result.n_skipped == 8
    assert sum("complete, skipped" in r.getMessage() for r in caplog.records) == 8
    assert mtimes == {p: p.stat().st_mtime_ns for p in out.rglob(METRICS_JSON)}


def _all(out: Path):
    for v in ("epochs_3-batch_size_16", "epochs_2-batch_size_8"):
        for s in (42, 43):
            yield v, s


def test_interrupted_sweep_resumes_the_unfinished_run(tmp_path):
    out = tmp_path / "s"
    trainer = FakeTrainer(interrupt_at="epochs_2-batch_size_16/seed-42")
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(grid_spec(), out, train_fn=trainer, curves=False)
    assert len(trainer.calls) == 3
    assert not (out / "epochs_2-batch_size_16" / "seed-42" / DONE_MARKER).exists()
    assert not (out / ".sweep.lock").exists()

    again = FakeTrainer()
    result = sweep.run_sweep(grid_spec(), out, train_fn=again, curves=False)
    # The unfinished run resumes (resume=True), the two finished ones are skipped.
    assert again.calls[0] == ("epochs_2-batch_size_16/seed-42", True)
    assert all(resume is False for _, resume in again.calls[1:])
    assert len(again.calls) == 6 and result.n_skipped == 2


def test_failed_run_stops_and_reports(tmp_path):
    def broken(cfg, run_dir, resume):
        raise RuntimeError("boom\nsecond line")

    with pytest.raises(sweep.SweepError, match="1 of 8 runs failed.*RuntimeError: boom"):
        sweep.run_sweep(grid_spec(), tmp_path / "s", train_fn=broken, curves=False)


@pytest.mark.slow
def test_tiny_model_sweep(tmp_path, caplog):
    model = make_tiny_model(tmp_path / "tiny-bert")
    train, test = make_tiny_data(tmp_path / "data")
    spec = sweep.SweepSpec(
        name="tiny",
        base=tiny_config(model, train, test),
        base_source="test",
        variants=sweep.expand_grid({"epochs": [2, 1], "weight_decay": [0.01, 0.05]}),
        seeds=2,
    )
    out = tmp_path / "sweep"
    result = sweep.run_sweep(spec, out, curves=True)
    assert result.n_trained == 8 and not result.failed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete_runs"] == 8 and len(summary["variants"]) == 4
    for e in summary["variants"].values():
        assert e["n_seeds"] == 2 and e["mean"]["test_accuracy"] is not None
        if not e["is_baseline"]:
            assert 0 <= e["p_value"] <= 1 and e["n_paired_predictions"] == 2 * 32
    md = (out / "report.md").read_text()
    assert all(name in md for name in summary["variants"])
    metrics = json.loads(
        (out / "epochs_1-weight_decay_0.05" / "seed-43" / METRICS_JSON).read_text()
    )
    assert metrics["train"]["global_batch_size"] == 8

    # An interrupted run (no DONE yet) is resumed; the finished ones are skipped.
    (out / "epochs_1-weight_decay_0.05" / "seed-43" / DONE_MARKER).unlink()
    caplog.set_level(logging.INFO, logger="reviewsense.sweep")
    result = sweep.run_sweep(spec, out, curves=False)
    assert result.n_skipped == 7 and result.n_trained == 1
    assert [o.status for o in result.outcomes].count("resumed") == 1
    assert any("resuming an unfinished run" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_every_seed_is_tested_on_the_same_reviews(tmp_path):
    # A 16-review test subset drawn from 48: the training seed must not change which ones.
    model = make_tiny_model(tmp_path / "tiny-bert")
    train, test = make_tiny_data(tmp_path / "data", n_train=48, n_test=48)
    base = tiny_config(model, train, test)
    base.override({"test_size": 16, "epochs": 1})
    spec = sweep.SweepSpec(
        name="same-reviews",
        base=base.validate(),
        base_source="test",
        variants=[sweep.Variant("baseline", {})],
        seeds=[1, 2],
    )
    out = tmp_path / "sweep"
    result = sweep.run_sweep(spec, out, curves=False)
    assert result.n_trained == 2 and not result.failed
    ids = [
        pd.read_parquet(out / "baseline" / f"seed-{s}" / TEST_PREDICTIONS)["row_id"].astype(str)
        for s in (1, 2)
    ]
    assert len(ids[0]) == 16
    assert sorted(ids[0]) == sorted(ids[1])


@pytest.mark.slow
def test_distilled_student_is_a_variant_tested_on_the_teachers_reviews(tmp_path):
    # Per seed, the student of that seed's baseline run: 1 layer of the tiny 2-layer BERT.
    model = make_tiny_model(tmp_path / "tiny-bert")
    train, test = make_tiny_data(tmp_path / "data", n_train=64, n_test=48)
    base = tiny_config(model, train, test)
    base.override({"train_size": 48, "val_size": 16, "epochs": 2})
    distill = {"teacher": "baseline", "layers": 1, "unlabeled_size": 0, "epochs": 2}
    spec = sweep.SweepSpec(
        name="students",
        base=base.validate(),
        base_source="test",
        variants=[sweep.Variant("baseline", {}), sweep.Variant("student", {}, distill)],
        seeds=[1, 2],
    )
    out = tmp_path / "sweep"
    result = sweep.run_sweep(spec, out, curves=False)
    assert result.n_trained == 4 and not result.failed
    for seed in (1, 2):
        run = out / "student" / f"seed-{seed}"
        ids = {
            name: sorted(pd.read_parquet(out / name / f"seed-{seed}" / TEST_PREDICTIONS)["row_id"])
            for name in ("baseline", "student")
        }
        assert len(ids["student"]) == 48 and ids["student"] == ids["baseline"]
        metrics = json.loads((run / METRICS_JSON).read_text())
        assert metrics["distill"]["layers_kept"] == [1]
        assert metrics["distill"]["teacher"].endswith(f"baseline/seed-{seed}/model")
        assert metrics["data"]["train"] == 48  # the teacher run's training split
        assert json.loads((run / "model" / "config.json").read_text())["num_hidden_layers"] == 1
    summary = json.loads((out / "summary.json").read_text())
    student = summary["variants"]["student"]
    assert student["n_seeds"] == 2 and student["n_paired_predictions"] == 2 * 48


def test_student_of_an_unfinished_teacher_is_refused(tmp_path):
    from reviewsense.distill_run import distill_run
    from reviewsense.errors import ReviewsenseError

    (tmp_path / "teacher").mkdir()
    with pytest.raises(ReviewsenseError, match="not complete .*re-run the sweep"):
        distill_run(base_config(), {}, tmp_path / "teacher", tmp_path / "student")
    assert not (tmp_path / "student").exists()
