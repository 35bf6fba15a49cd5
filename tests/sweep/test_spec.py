"""`reviewsense.sweep.spec`: grids, seeds, sweep files (shipped and user-written)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from reviewsense import config as config_mod
from reviewsense import sweep
from reviewsense.errors import ConfigError

from .fakes import (
    grid_spec,
)


def test_grid_expansion_names_and_seed_major_plan(tmp_path):
    plan = sweep.plan_sweep(grid_spec(), tmp_path / "s")
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


def test_shipped_truncation_sweep_compares_head_with_head_tail_at_256(tmp_path):
    plan = sweep.plan_sweep(sweep.load_sweep_file("truncation_offline"), tmp_path / "t")
    by = {r.variant: r.cfg.data for r in plan.runs}
    assert (by["head_tail_256"].truncation, by["head_256"].truncation) == ("head_tail", "head")
    assert {d.max_length for d in by.values()} == {256}
    assert plan.spec.baseline_name == "head_tail_256" and len(plan.seeds) == 3


def test_shipped_pretrain_sweep_changes_only_the_model(tmp_path, monkeypatch):
    spec = sweep.load_sweep_file("pretrain_offline")
    monkeypatch.chdir(tmp_path)  # the variant's model folder is relative to where it runs
    with pytest.raises(ConfigError, match="minilm-imdb"):
        sweep.plan_sweep(spec, tmp_path / "p")  # before `pretrain` wrote it: a clear error
    for name in ("minilm-imdb", "minilm-imdb-stage2"):
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    plan = sweep.plan_sweep(spec, tmp_path / "p")
    by = {r.variant: r.cfg for r in plan.runs}
    assert (by["minilm"].model, by["minilm_imdb_mlm"].model) == ("minilm", "./runs/minilm-imdb")
    assert by["minilm_imdb_mlm3ep"].model == "./runs/minilm-imdb-stage2"
    for variant in ("minilm_imdb_mlm", "minilm_imdb_mlm3ep"):
        assert by["minilm"].data == by[variant].data
        assert by["minilm"].train == by[variant].train
    assert plan.spec.baseline_name == "minilm" and len(plan.seeds) == 3


def test_shipped_6_epoch_pretrain_sweep_shares_the_baseline_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "minilm-imdb-6ep"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    plan = sweep.plan_sweep(sweep.load_sweep_file("pretrain_offline_6ep"), tmp_path / "p6")
    by = {r.variant: r.cfg for r in plan.runs}
    assert by["minilm_imdb_mlm6ep"].model == "./runs/minilm-imdb-6ep"
    assert by["minilm"].data == by["minilm_imdb_mlm6ep"].data
    assert by["minilm"].train == by["minilm_imdb_mlm6ep"].train
    # The same baseline recipe as pretrain_offline: its `minilm` runs can be copied in.
    for name in ("minilm-imdb", "minilm-imdb-stage2"):
        (tmp_path / "runs" / name).mkdir()
        (tmp_path / "runs" / name / "config.json").write_text("{}")
    first = sweep.plan_sweep(sweep.load_sweep_file("pretrain_offline"), tmp_path / "p")

    def recipe(p):  # what a run trains and tests (its name is the sweep's)
        return {
            r.seed: (r.cfg.model, r.cfg.data, r.cfg.train) for r in p.runs if r.variant == "minilm"
        }

    assert recipe(plan) == recipe(first)


def test_shipped_length_sweep_reuses_the_6_epoch_runs_and_changes_only_the_length(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "minilm-imdb-6ep"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    length = sweep.plan_sweep(sweep.load_sweep_file("length_offline_6ep"), tmp_path / "l")
    pretrain = sweep.plan_sweep(sweep.load_sweep_file("pretrain_offline_6ep"), tmp_path / "p6")
    by = {(r.variant, r.seed): r.cfg for r in length.runs}
    # chain.sh copies pretrain_offline_6ep's minilm_imdb_mlm6ep runs in as mlm6ep_256.
    for r in pretrain.runs:
        if r.variant == "minilm_imdb_mlm6ep":
            copied = by[("mlm6ep_256", r.seed)]
            assert (copied.model, copied.data, copied.train) == (
                r.cfg.model,
                r.cfg.data,
                r.cfg.train,
            )
    for seed in length.seeds:
        short, long = by[("mlm6ep_256", seed)], by[("mlm6ep_512", seed)]
        assert (short.data.max_length, long.data.max_length) == (256, 512)
        assert short.train == long.train and short.model == long.model == "./runs/minilm-imdb-6ep"
        assert dataclasses.replace(long.data, max_length=256) == short.data
    assert length.spec.baseline_name == "mlm6ep_256"


def test_presets_still_load():
    # The shipped sweep files build on these presets.
    assert config_mod.load_preset("offline").model == "minilm"


def test_distill_entry_makes_a_distillation_variant():
    spec = sweep.spec_from_dict(
        {
            "preset": "offline",
            "variants": {
                "baseline": {},
                "student": {"distill": {"teacher": "baseline", "layers": 3}},
            },
        }
    )
    student = spec.variants[1]
    assert student.overrides == {} and student.distill == {"teacher": "baseline", "layers": 3}
    assert spec.variants[0].distill is None
    with pytest.raises(ConfigError, match="'variants.s.distill' must be a mapping"):
        sweep.spec_from_dict({"preset": "offline", "variants": {"s": {"distill": 3}}})
