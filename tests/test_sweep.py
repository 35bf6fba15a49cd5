"""`reviewsense.sweep`: planning/validation, skip + resume, the stored definition, the report.

Most tests inject a fake trainer that writes a run directory by the contract (fast, exact
control over predictions); ``test_tiny_model_sweep`` runs the real trainer on a tiny random
BERT (hidden 32, 2 layers) for a 2×2 grid × 2 seeds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tiny_models import build_tiny_model

from reviewsense import config as config_mod
from reviewsense import sweep
from reviewsense.config import RunConfig
from reviewsense.errors import ConfigError
from reviewsense.rundir import DONE_MARKER, METRICS_JSON, TEST_PREDICTIONS

N_TEST = 400


class FakeTrainer:
    """Writes metrics.json, test_predictions.parquet and DONE like run_training would.

    Accuracy depends on the config (epochs 2 → +4 pt, batch 8 → −1 pt) and a little on the seed,
    so the statistics have something real to find.
    """

    def __init__(self, interrupt_at: str | None = None) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.interrupt_at = interrupt_at

    def __call__(self, cfg: RunConfig, run_dir: Path, resume: bool) -> None:
        label = "/".join(run_dir.parts[-2:])
        self.calls.append((label, resume))
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        if self.interrupt_at == label:
            self.interrupt_at = None  # interrupted once, like Ctrl-C
            raise KeyboardInterrupt
        t = cfg.train
        acc = 0.80 + 0.04 * (t.epochs == 2) - 0.01 * (t.batch_size == 8)
        rng = np.random.default_rng(t.seed * 1000 + int(t.epochs) * 10 + t.batch_size)
        y = np.random.default_rng(0).integers(0, 2, N_TEST)
        pred = np.where(rng.random(N_TEST) < acc, y, 1 - y)
        test_acc = float((pred == y).mean())
        pd.DataFrame(
            {
                "row_id": [f"test-{i}" for i in range(N_TEST)],
                "label": y,
                "prob_positive": pred * 0.8 + 0.1,
                "prediction": pred,
            }
        ).to_parquet(run_dir / TEST_PREDICTIONS)
        metrics = {
            "validation": [
                {"epoch": e, "step": 10 * e, "loss": 0.5 / e, "accuracy": 0.8, "f1": 0.8}
                for e in range(1, int(t.epochs) + 1)
            ],
            "best": {"epoch": 1, "step": 10, "metric": "f1", "value": 0.8},
            "test": {"accuracy": test_acc, "f1": test_acc, "loss": 0.4, "n": N_TEST},
            "train": {
                "wall_time_s": 10.0 * t.epochs,
                "train_time_s": 9.0 * t.epochs,
                "examples_per_s": 100.0,
                "peak_rss_mb": 500.0,
                "checkpoint_disk_mb": 20.0,
                "global_batch_size": t.batch_size,
                "world_size": 1,
            },
        }
        (run_dir / METRICS_JSON).write_text(json.dumps(metrics))
        (run_dir / DONE_MARKER).write_text("")


def _base() -> RunConfig:
    cfg = RunConfig()
    cfg.override({"model": "minilm", "train_size": 100, "max_length": 64, "truncation": "head"})
    return cfg


def _grid_spec(seeds=2) -> sweep.SweepSpec:
    grid = {"epochs": [3, 2], "batch_size": [16, 8]}
    return sweep.SweepSpec(
        name="t", base=_base(), base_source="test", variants=sweep.expand_grid(grid), seeds=seeds
    )


def test_grid_expansion_names_and_seed_major_plan(tmp_path):
    plan = sweep.plan_sweep(_grid_spec(), tmp_path / "s")
    names = [v.name for v in plan.spec.variants]
    assert names == [
        "epochs_3-batch_size_16",
        "epochs_3-batch_size_8",
        "epochs_2-batch_size_16",
        "epochs_2-batch_size_8",
    ]
    assert plan.seeds == [42, 43]  # base seed + k
    assert [r.label for r in plan.runs[:4]] == [f"{n}/seed-42" for n in names]  # seed-major
    assert plan.runs[5].cfg.train.seed == 43 and plan.runs[5].cfg.train.batch_size == 8
    assert plan.runs[0].run_dir == tmp_path / "s" / names[0] / "seed-42"
    assert not (tmp_path / "s").exists()  # planning writes nothing


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"lr": -1e-5}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": "three"}, "epochs"),
        ({"no_such_key": 1}, "no_such_key"),
        ({"model": "bert-bsae-uncased"}, "model"),
        ({"model": "./no/such/folder"}, "model"),
        ({"early_stopping": 0}, "early_stopping"),
        ({"save_total_limit": 0}, "save_total_limit"),
        ({"seed": 1}, "seed"),
    ],
)
def test_bad_override_rejected_before_any_run(tmp_path, overrides, key):
    spec = sweep.SweepSpec(
        name="bad",
        base=_base(),
        base_source="test",
        variants=[sweep.Variant("baseline", {}), sweep.Variant("broken", overrides)],
    )
    trainer = FakeTrainer()
    with pytest.raises(ConfigError) as ei:
        sweep.run_sweep(spec, tmp_path / "s", train_fn=trainer)
    msg = str(ei.value)
    assert f"'{key}'" in msg and "variant 'broken'" in msg
    assert trainer.calls == []
    assert not (tmp_path / "s").exists()  # not even the sweep folder


def test_early_stopping_and_checkpoint_policy_are_ordinary_overrides(tmp_path):
    spec = sweep.SweepSpec(
        name="es",
        base=_base(),
        base_source="test",
        variants=[sweep.Variant("es", {"early_stopping": 2, "save_total_limit": 1})],
    )
    plan = sweep.plan_sweep(spec, tmp_path)
    assert plan.runs[0].cfg.train.early_stopping == 2
    assert plan.runs[0].cfg.train.save_total_limit == 1


@pytest.mark.parametrize(
    "model, ok",
    [
        ("minilm", True),
        ("bert-base-uncased", True),
        ("distilbert-base-uncased", True),
        ("google/bert_uncased_L-2_H-128_A-2", True),
        ("bert-base", False),
        ("mini-lm", False),
        ("a/b/c", False),
        ("/no/such/dir", False),
    ],
)
def test_check_model(model, ok, tmp_path):
    if ok:
        sweep.check_model(model)
    else:
        with pytest.raises(ConfigError, match="'model'"):
            sweep.check_model(model)


def test_check_model_local_folder(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        sweep.check_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    sweep.check_model(str(tmp_path))


def test_sweep_runs_skips_and_reports(tmp_path, caplog):
    out = tmp_path / "s"
    trainer = FakeTrainer()
    result = sweep.run_sweep(_grid_spec(), out, train_fn=trainer, curves=False)
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
    assert e2["mcnemar"]["n"] == 2 * N_TEST  # pooled over both seeds
    assert variants["epochs_3-batch_size_16"]["p_value"] is None  # the baseline itself

    # Re-running the same sweep trains nothing and leaves the runs untouched.
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob(METRICS_JSON)}
    caplog.set_level(logging.INFO, logger="reviewsense.sweep")
    again = FakeTrainer()
    result = sweep.run_sweep(_grid_spec(), out, train_fn=again, curves=False)
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
        sweep.run_sweep(_grid_spec(), out, train_fn=trainer, curves=False)
    assert len(trainer.calls) == 3
    assert not (out / "epochs_2-batch_size_16" / "seed-42" / DONE_MARKER).exists()
    assert not (out / ".sweep.lock").exists()

    again = FakeTrainer()
    result = sweep.run_sweep(_grid_spec(), out, train_fn=again, curves=False)
    # The unfinished run resumes (resume=True), the two finished ones are skipped.
    assert again.calls[0] == ("epochs_2-batch_size_16/seed-42", True)
    assert all(resume is False for _, resume in again.calls[1:])
    assert len(again.calls) == 6 and result.n_skipped == 2


def test_different_definition_is_refused(tmp_path):
    out = tmp_path / "s"
    sweep.run_sweep(_grid_spec(seeds=1), out, train_fn=FakeTrainer(), curves=False)
    with pytest.raises(sweep.SweepError, match="different sweep.*seeds"):
        sweep.run_sweep(_grid_spec(seeds=2), out, train_fn=FakeTrainer(), curves=False)
    changed = _grid_spec(seeds=1)
    changed.set = {"lr": 1e-4}
    with pytest.raises(sweep.SweepError, match="different sweep.*train.lr"):
        sweep.run_sweep(changed, out, train_fn=FakeTrainer(), curves=False)
    # An existing folder that is not a sweep is refused too.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    with pytest.raises(sweep.SweepError, match="not a sweep folder"):
        sweep.run_sweep(_grid_spec(), tmp_path / "other", train_fn=FakeTrainer(), curves=False)


def test_failed_run_stops_and_reports(tmp_path):
    def broken(cfg, run_dir, resume):
        raise RuntimeError("boom\nsecond line")

    with pytest.raises(sweep.SweepError, match="1 of 8 runs failed.*RuntimeError: boom"):
        sweep.run_sweep(_grid_spec(), tmp_path / "s", train_fn=broken, curves=False)


def test_shipped_sweep_files_are_valid(tmp_path):
    for name in ("seed_debugging", "seed_debugging_offline"):
        spec = sweep.load_sweep_file(name)
        assert spec.baseline_name == "baseline"
        names = [v.name for v in spec.variants]
        assert {"baseline", "epochs_2", "batch_8", "wd_0.05"} <= set(names)
        plan = sweep.plan_sweep(spec, tmp_path / name)
        base = next(r.cfg for r in plan.runs if r.variant == "baseline")
        assert (base.train.epochs, base.train.batch_size, base.train.weight_decay) == (3, 16, 0.01)
        assert len(plan.seeds) == 3
    online = sweep.load_sweep_file("seed_debugging")
    assert online.base.model == "bert-base-uncased"
    assert dict((v.name, v.overrides) for v in online.variants)["distilbert"] == {
        "model": "distilbert-base-uncased"
    }
    offline = sweep.plan_sweep(sweep.load_sweep_file("seed_debugging_offline"), tmp_path / "o")
    assert {r.cfg.model for r in offline.runs} == {"minilm"}
    assert {(r.cfg.data.train_size, r.cfg.data.test_size) for r in offline.runs} == {(2000, 5000)}


def test_offline_sweep_with_uncached_hub_model_is_refused_before_any_run(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    spec = sweep.load_sweep_file("seed_debugging")  # bert-base-uncased: not cached here
    spec.variants = [sweep.Variant("baseline", {}), sweep.Variant("x", {"model": "org/nope"})]
    trainer = FakeTrainer()
    with pytest.raises(ConfigError, match="invalid value for 'model'.*offline"):
        sweep.run_sweep(spec, tmp_path / "s", train_fn=trainer)
    assert trainer.calls == [] and not (tmp_path / "s").exists()


def test_sweep_file_roundtrip_and_errors(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "preset": "offline",
                "set": {"train_size": 100},
                "seeds": [7, 9],
                "grid": {"weight_decay": [0.01, 0.05]},
            }
        )
    )
    spec = sweep.load_sweep_file(f)
    assert spec.name == "s" and spec.seeds == [7, 9] and len(spec.variants) == 2
    plan = sweep.plan_sweep(spec, tmp_path / "o")
    assert [r.cfg.train.seed for r in plan.runs] == [7, 7, 9, 9]
    f.write_text(yaml.safe_dump({"preset": "offline", "variants": {"a": {}}, "seed": 3}))
    with pytest.raises(ConfigError, match="unknown sweep key 'seed'"):
        sweep.load_sweep_file(f)
    f.write_text(yaml.safe_dump({"preset": "nope", "variants": {"a": {}}}))
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        sweep.load_sweep_file(f)
    with pytest.raises(ConfigError, match="'seeds'"):
        sweep.parse_seeds(0)
    with pytest.raises(ConfigError, match="'seeds'"):
        sweep.parse_seeds("1,1")


def test_report_only_from_partial_sweep(tmp_path):
    out = tmp_path / "s"
    trainer = FakeTrainer(interrupt_at="epochs_3-batch_size_16/seed-43")
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(_grid_spec(), out, train_fn=trainer, curves=False)
    summary = sweep.write_report(sweep.load_plan(out), curves=False)
    assert summary["complete_runs"] == 4
    e = summary["variants"]["epochs_2-batch_size_8"]
    assert e["n_seeds"] == 1 and "1 seed only" in e["verdict"]
    statuses = {(r["variant"], r["seed"]): r["status"] for r in summary["runs"]}
    assert statuses[("epochs_3-batch_size_16", 43)] == "partial"


# -- the real trainer on a tiny model ----------------------------------------------------------
POS = ["great", "wonderful", "loved", "excellent", "superb", "delightful"]
NEG = ["awful", "terrible", "hated", "boring", "dreadful", "worst"]


def make_tiny_model(folder: Path) -> Path:
    """Random 2-layer BERT, hidden 32, dropout 0 (ranks draw different dropout masks)."""
    return build_tiny_model(folder, dropout=0.0, max_position_embeddings=64)


def make_tiny_data(folder: Path, n_train: int = 48, n_test: int = 32) -> tuple[Path, Path]:
    """Balanced CSVs of short synthetic reviews (positive/negative word lists)."""
    rng = np.random.default_rng(0)

    def rows(n: int) -> pd.DataFrame:
        labels = np.arange(n) % 2
        texts = [
            f"the film was {' '.join(rng.choice(POS if y else NEG, 3))} and the cast "
            f"{rng.choice(['was', 'felt'])} {rng.choice(POS if y else NEG)}"
            for y in labels
        ]
        return pd.DataFrame({"text": texts, "label": labels})

    folder.mkdir(parents=True, exist_ok=True)
    train, test = folder / "train.csv", folder / "test.csv"
    rows(n_train).to_csv(train, index=False)
    rows(n_test).to_csv(test, index=False)
    return train, test


def tiny_config(model: Path, train: Path, test: Path) -> RunConfig:
    cfg = RunConfig(name="tiny", model=str(model))
    cfg.override(
        {
            "dataset": "files",
            "train_file": str(train),
            "test_file": str(test),
            "train_size": None,
            "val_size": 16,
            "test_size": None,
            "max_length": 64,
            "truncation": "head",
            "epochs": 2,
            "batch_size": 8,
            "eval_batch_size": 32,
            "lr": 1e-3,
            "precision": "fp32",
            "logging_steps": 1,
            "group_by_length": False,
            "num_threads": 1,
            "analyze": False,
        }
    )
    return cfg.validate()


@pytest.mark.slow
def test_tiny_model_sweep(tmp_path, caplog):
    pytest.importorskip("reviewsense.train", reason="train.py not in this checkout yet")
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
            assert 0 <= e["p_value"] <= 1 and e["mcnemar"]["n"] == 2 * 32
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


def test_presets_still_load():
    # The shipped sweep files build on these presets.
    assert config_mod.load_preset("offline").model == "minilm"
