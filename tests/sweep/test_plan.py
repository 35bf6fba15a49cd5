"""`reviewsense.sweep.plan`: every variant validated before any run, the stored definition."""

from __future__ import annotations

import pytest

from reviewsense import sweep
from reviewsense.errors import ConfigError

from .fakes import (
    FakeTrainer,
    base_config,
    grid_spec,
)


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
        base=base_config(),
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
        base=base_config(),
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


def test_different_definition_is_refused(tmp_path):
    out = tmp_path / "s"
    sweep.run_sweep(grid_spec(seeds=1), out, train_fn=FakeTrainer(), curves=False)
    with pytest.raises(sweep.SweepError, match="different sweep.*seeds"):
        sweep.run_sweep(grid_spec(seeds=2), out, train_fn=FakeTrainer(), curves=False)
    changed = grid_spec(seeds=1)
    changed.set = {"lr": 1e-4}
    with pytest.raises(sweep.SweepError, match="different sweep.*train.lr"):
        sweep.run_sweep(changed, out, train_fn=FakeTrainer(), curves=False)
    # An existing folder that is not a sweep is refused too.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    with pytest.raises(sweep.SweepError, match="not a sweep folder"):
        sweep.run_sweep(grid_spec(), tmp_path / "other", train_fn=FakeTrainer(), curves=False)


def test_adding_a_variant_extends_the_sweep_and_reuses_finished_runs(tmp_path):
    out = tmp_path / "s"
    spec = sweep.SweepSpec(
        name="t",
        base=base_config(),
        base_source="test",
        variants=[sweep.Variant("baseline", {}), sweep.Variant("epochs_2", {"epochs": 2})],
        seeds=2,
    )
    first = FakeTrainer()
    sweep.run_sweep(spec, out, train_fn=first, curves=False)
    assert len(first.calls) == 4
    spec.variants.append(sweep.Variant("batch_8", {"batch_size": 8}))
    second = FakeTrainer()
    result = sweep.run_sweep(spec, out, train_fn=second, curves=False)
    assert sorted(label for label, _ in second.calls) == ["batch_8/seed-42", "batch_8/seed-43"]
    assert "batch_8" in (out / "sweep.yaml").read_text()
    assert set(result.summary["variants"]) == {"baseline", "epochs_2", "batch_8"}
    # narrowing: the removed variant's runs stay on disk but leave the report
    spec.variants = spec.variants[:1] + spec.variants[2:]
    third = FakeTrainer()
    result = sweep.run_sweep(spec, out, train_fn=third, curves=False)
    assert third.calls == [] and (out / "epochs_2" / "seed-42").is_dir()
    assert set(result.summary["variants"]) == {"baseline", "batch_8"}
    # a shared variant whose settings change is still a different sweep
    spec.variants[1] = sweep.Variant("batch_8", {"batch_size": 4})
    with pytest.raises(sweep.SweepError, match="different sweep.*batch_8"):
        sweep.run_sweep(spec, out, train_fn=FakeTrainer(), curves=False)


def test_offline_sweep_with_uncached_hub_model_is_refused_before_any_run(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    spec = sweep.load_sweep_file("seed_debugging")  # bert-base-uncased: not cached here
    spec.variants = [sweep.Variant("baseline", {}), sweep.Variant("x", {"model": "org/nope"})]
    trainer = FakeTrainer()
    with pytest.raises(ConfigError, match="invalid value for 'model'.*offline"):
        sweep.run_sweep(spec, tmp_path / "s", train_fn=trainer)
    assert trainer.calls == [] and not (tmp_path / "s").exists()


# -- distillation variants ---------------------------------------------------------------------
def _distill_spec(distill: dict, overrides: dict | None = None, first: str = "baseline"):
    variants = [sweep.Variant(first, {}), sweep.Variant("student", overrides or {}, distill)]
    return sweep.SweepSpec(name="d", base=base_config(), base_source="test", variants=variants)


def test_distill_variant_runs_after_its_teacher_with_the_teachers_config(tmp_path):
    spec = _distill_spec({"teacher": "baseline", "layers": 3, "unlabeled_size": 0})
    spec.seeds = 2
    plan = sweep.plan_sweep(spec, tmp_path / "s")
    runs = {r.label: r for r in plan.runs}
    assert [r.label for r in plan.runs] == [
        "baseline/seed-42", "student/seed-42", "baseline/seed-43", "student/seed-43",
    ]  # fmt: skip
    s43 = runs["student/seed-43"]
    assert s43.distill == {"layers": 3, "unlabeled_size": 0}
    assert s43.teacher_dir == tmp_path / "s" / "baseline" / "seed-43"
    assert s43.cfg.train.seed == 43 and runs["baseline/seed-43"].distill is None
    # the same data and test reviews as its teacher
    assert s43.cfg.data == runs["baseline/seed-43"].cfg.data
    assert plan.resolved["student"]["distill.layers"] == 3
    # the definition round-trips (report-only reads it back)
    sweep.check_or_write_definition(plan)
    again = sweep.load_plan(tmp_path / "s")
    assert again.spec.variants[1].distill == {
        "teacher": "baseline", "layers": 3, "unlabeled_size": 0,
    }  # fmt: skip
    sweep.check_or_write_definition(sweep.plan_sweep(spec, tmp_path / "s"))  # same sweep


@pytest.mark.parametrize(
    "distill, overrides, match",
    [
        ({"teacher": "nope"}, {}, "'distill.teacher'"),
        ({"teacher": "student"}, {}, "'distill.teacher'"),  # itself / not listed before
        ({"layers": 3}, {}, "'distill.teacher'"),
        ({"teacher": "baseline", "seed": 1}, {}, "'distill.seed' is set from the teacher run"),
        ({"teacher": "baseline", "layerz": 3}, {}, "'distill.layerz' is unknown"),
        ({"teacher": "baseline", "layers": 0}, {}, "'layers'"),
        ({"teacher": "baseline"}, {"epochs": 2}, "no overrides of its own"),
    ],
)
def test_bad_distill_variant_rejected_before_any_run(tmp_path, distill, overrides, match):
    trainer = FakeTrainer()
    with pytest.raises(ConfigError, match=match) as ei:
        sweep.run_sweep(_distill_spec(distill, overrides), tmp_path / "s", train_fn=trainer)
    assert "variant 'student'" in str(ei.value)
    assert trainer.calls == [] and not (tmp_path / "s").exists()


def test_unlabelled_imdb_reviews_refused_for_other_data(tmp_path):
    spec = _distill_spec({"teacher": "baseline", "unlabeled_size": 100})
    spec.base.override({"dataset": "files", "train_file": "x.csv", "test_file": "y.csv"})
    with pytest.raises(ConfigError, match="'distill.unlabeled_size'.*set it to 0"):
        sweep.plan_sweep(spec, tmp_path / "s")
