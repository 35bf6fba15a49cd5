"""RunConfig: presets, overrides with coercion, validation, save/load and error messages."""

from __future__ import annotations

import pytest

from reviewsense import config
from reviewsense.config import DataConfig, RunConfig, TrainConfig
from reviewsense.errors import ConfigError


# -- presets ---------------------------------------------------------------------------------
def test_presets_available():
    assert {"seed", "offline"} <= set(config.list_presets())
    assert config.configs_dir().name == "configs"


def test_seed_preset_is_the_users_recipe():
    cfg = config.load_preset("seed").validate()
    assert cfg.name == "seed"
    assert cfg.model == "bert-base-uncased"
    t, d = cfg.train, cfg.data
    assert t.batch_size == 16
    assert t.lr == pytest.approx(2e-5)
    assert t.epochs == 3
    assert t.lr_scheduler == "linear"
    assert t.weight_decay == pytest.approx(0.01)
    assert t.logging_steps == 10
    assert d.train_size == 2000
    assert d.dataset == "imdb"
    assert d.max_length == 128 and d.truncation == "head"  # "first 128 tokens"
    assert d.val_size == 1000
    assert d.test_size is None


def test_offline_preset_same_recipe_on_minilm():
    seed, off = config.load_preset("seed"), config.load_preset("offline").validate()
    assert off.name == "offline"
    assert off.model == "minilm"
    assert off.data.max_length == 256 and off.data.truncation == "head_tail"
    assert off.data.train_size == 2000
    # the optimisation recipe is the seed's except the learning rate (documented in the preset)
    assert off.train.lr == 1e-4 and seed.train.lr == 2e-5
    off.train.lr = seed.train.lr
    assert off.train == seed.train


def test_preset_types_are_coerced():
    cfg = config.load_preset("seed")
    assert isinstance(cfg.train.epochs, float)
    assert isinstance(cfg.train.batch_size, int)
    assert isinstance(cfg.train.lr, float)
    assert isinstance(cfg.data.train_size, int)


def test_unknown_preset_lists_available():
    with pytest.raises(ConfigError) as e:
        config.load_preset("nope")
    msg = str(e.value)
    assert "'nope'" in msg
    for name in config.list_presets():
        assert name in msg
    assert "available" in msg


# -- overrides -------------------------------------------------------------------------------
def test_plain_and_dotted_keys_set_the_same_field():
    cfg = RunConfig()
    cfg.set("epochs", "5")
    assert cfg.train.epochs == 5.0 and isinstance(cfg.train.epochs, float)
    cfg.set("train.epochs", "1.5")
    assert cfg.train.epochs == 1.5
    cfg.set("max_length", "128")
    assert cfg.data.max_length == 128 and isinstance(cfg.data.max_length, int)
    cfg.set("data.max_length", 64)
    assert cfg.data.max_length == 64
    assert cfg.get("data.max_length") == cfg.get("max_length") == 64
    cfg.set("model", "some/model")
    cfg.set("name", "x")
    assert (cfg.model, cfg.name) == ("some/model", "x")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("batch_size", "32", 32),
        ("batch_size", "8.0", 8),
        ("batch_size", 4, 4),
        ("lr", "3e-4", 3e-4),
        ("lr", 1, 1.0),
        ("train_size", "none", None),
        ("train_size", "NULL", None),
        ("train_size", "100", 100),
        ("test_size", None, None),
        ("early_stopping", "2", 2),
        ("skip_invalid", "true", True),
        ("skip_invalid", "yes", True),
        ("skip_invalid", "1", True),
        ("skip_invalid", "off", False),
        ("skip_invalid", "False", False),
        ("analyze", False, False),
        ("val_size", "0.1", 0.1),
        ("truncation", "head", "head"),
        ("model", 5, "5"),
    ],
)
def test_coercion(key, value, expected):
    cfg = RunConfig()
    cfg.set(key, value)
    got = cfg.get(key)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batch_size", "2.5"),
        ("batch_size", "abc"),
        ("lr", "fast"),
        ("skip_invalid", "maybe"),
        ("epochs", "none"),  # not optional
        ("max_length", None),
    ],
)
def test_bad_value_type_names_the_key(key, value):
    cfg = RunConfig()
    before = cfg.to_dict()
    with pytest.raises(ConfigError) as e:
        cfg.set(key, value)
    assert f"'{key}'" in str(e.value)
    assert cfg.to_dict() == before  # nothing changed


def test_infinite_int_is_a_config_error():
    with pytest.raises(ConfigError, match="'batch_size'"):
        RunConfig().set("batch_size", "inf")


@pytest.mark.parametrize("key", ["foo", "train.foo", "nosuch.epochs", "data.lr", "train.data"])
def test_unknown_key_names_it_and_lists_known_keys(key):
    with pytest.raises(ConfigError) as e:
        RunConfig().set(key, "1")
    msg = str(e.value)
    assert f"unknown config key '{key}'" in msg
    for known in ("epochs", "batch_size", "lr", "max_length", "truncation", "model"):
        assert known in msg
    with pytest.raises(ConfigError):
        RunConfig().get(key)


def test_known_keys_cover_every_field():
    keys = config.known_keys()
    assert keys[:2] == ["name", "model"]
    fields = set(DataConfig.__dataclass_fields__) | set(TrainConfig.__dataclass_fields__)
    assert set(keys[2:]) == fields
    assert len(keys) == len(set(keys))  # no field name is shared between sections


def test_override_applies_in_order_and_ignores_none():
    cfg = RunConfig()
    out = cfg.override({"epochs": "2", "lr": None, "train.epochs": "4", "seed": 7})
    assert out is cfg
    assert cfg.train.epochs == 4.0
    assert cfg.train.lr == pytest.approx(2e-5)  # None = flag not given
    assert cfg.train.seed == 7


def test_override_unknown_key_raises():
    with pytest.raises(ConfigError, match="'bogus'"):
        RunConfig().override({"bogus": 1})


# -- validation ------------------------------------------------------------------------------
def test_defaults_are_valid():
    RunConfig().validate()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lr", -1),
        ("lr", 0),
        ("batch_size", 0),
        ("eval_batch_size", 0),
        ("epochs", 0),
        ("precision", "fp8"),
        ("lr_scheduler", "step"),
        ("dataset", "yelp"),
        ("truncation", "middle"),
        ("max_length", 4),
        ("max_length", 10_000),
        ("train_size", 1),
        ("test_size", 0),
        ("val_size", 0),
        ("weight_decay", -0.1),
        ("warmup_ratio", 1.0),
        ("logging_steps", 0),
        ("save_total_limit", 0),
        ("early_stopping", 0),
        ("num_threads", 0),
        ("gradient_accumulation_steps", 0),
        ("max_steps", 0),
        ("max_steps", -2),
        ("model", "  "),
    ],
)
def test_invalid_value_names_the_key(key, value):
    cfg = RunConfig()
    cfg.set("truncation", "head")  # so that small max_length values hit their own check
    cfg.set(key, value)
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert f"'{key}'" in str(e.value)
    assert repr(cfg.get(key)) in str(e.value)


@pytest.mark.parametrize("max_length", [64, 129, 130])
def test_head_tail_needs_more_than_130_tokens(max_length):
    with pytest.raises(ConfigError) as e:  # validated on creation: override() checks
        RunConfig().override({"truncation": "head_tail", "max_length": max_length})
    msg = str(e.value)
    assert "'max_length'" in msg and "head_tail" in msg and str(max_length) in msg


def test_head_tail_with_131_and_head_with_64_are_valid():
    RunConfig().override({"truncation": "head_tail", "max_length": 131}).validate()
    RunConfig().override({"truncation": "head", "max_length": 64}).validate()


@pytest.mark.parametrize("bad", [0, -2])
def test_one_max_steps_rule_for_train_pretrain_and_distill(bad):
    from reviewsense.distill import DistillConfig
    from reviewsense.pretrain import PretrainConfig

    configs = {
        "train": lambda n: RunConfig().override({"max_steps": n}),
        "pretrain": lambda n: PretrainConfig(max_steps=n).validate(),
        "distill": lambda n: DistillConfig(teacher="x", max_steps=n).validate(),
    }
    for name, check in configs.items():
        for good in (-1, 1, 500):
            check(good)
        with pytest.raises(ConfigError, match=f"'max_steps': {bad}") as e:
            check(bad)
        assert config.MAX_STEPS_RULE in str(e.value), name


def test_one_precision_list():
    from reviewsense import runtime

    assert config.PRECISIONS is runtime.PRECISIONS


def test_definition_changes_ignore_equal_values_and_execution_keys():
    cfg = RunConfig().override({"lr": 1e-4, "train_size": 2000})
    same = {"lr": "1.0e-4", "train.epochs": 3, "train_size": "2000", "model": "minilm"}
    assert cfg.definition_changes(same | {"seed": None}) == []
    assert cfg.definition_changes({"num_threads": 3, "analyze": "false"}) == []
    changed = {"lr": 0.5, "train_size": "none", "data.max_length": 128, "epochs": 3}
    assert cfg.definition_changes(changed) == ["lr", "train_size", "data.max_length"]
    assert cfg.get("lr") == 1e-4  # a question, not an override
    with pytest.raises(ConfigError, match="unknown config key 'nope'"):
        cfg.definition_changes({"nope": 1})


# -- files -----------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    cfg = config.load_preset("offline").override(
        {"lr": "1e-4", "train_size": "none", "early_stopping": 3, "skip_invalid": "true"}
    )
    path = tmp_path / "config.yaml"
    config.save(cfg, path)
    back = config.load_file(path)
    assert back == cfg
    assert back.to_dict() == cfg.to_dict()
    assert back.data.train_size is None and back.train.early_stopping == 3
    assert back.data.skip_invalid is True


def test_from_dict_nested_layout():
    cfg = config.from_dict(
        {"model": "m", "data": {"max_length": "64", "truncation": "head"}, "train": {"epochs": 1}}
    )
    assert (cfg.model, cfg.data.max_length, cfg.train.epochs) == ("m", 64, 1.0)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        ([1, 2], "expected a mapping"),
        ({"data": [1]}, "'data' must be a mapping"),
        ({"train": {"nope": 1}}, "unknown config key 'train.nope'"),
        ({"data": {"max_length": "long"}}, "'data.max_length'"),
    ],
)
def test_from_dict_errors(d, expected):
    with pytest.raises(ConfigError) as e:
        config.from_dict(d, source="my.yaml")
    assert expected in str(e.value)


def test_invalid_yaml_message(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train: {epochs: [1, 2\n")
    with pytest.raises(ConfigError) as e:
        config.load_file(p)
    msg = str(e.value)
    assert str(p) in msg and "is not valid YAML" in msg


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load_file(tmp_path / "nope.yaml")


def test_empty_yaml_gives_defaults(tmp_path):
    p = tmp_path / "empty.yaml"
    p.write_text("")
    assert config.load_file(p) == RunConfig()


def test_configs_are_validated_on_creation(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {truncation: middle}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'truncation'"):
        config.load_file(bad)
    with pytest.raises(ConfigError, match="'head_tokens'"):
        RunConfig().override({"head_tokens": 0})


def test_data_config_embeds_the_truncation_spec():
    from reviewsense.truncation import TruncationSpec

    assert DataConfig().spec == TruncationSpec()  # one set of defaults
    assert DataConfig(max_length=128, truncation="head").spec.mode == "head"


def test_attention_dropout_default_override_and_validation():
    cfg = RunConfig()
    assert cfg.train.attention_dropout == 0.0  # fused attention kernel by default
    cfg.set("attention_dropout", "null")  # the checkpoint's value: the user's recipe
    assert cfg.train.attention_dropout is None
    cfg.validate()
    cfg.set("attention_dropout", "0.1")
    assert cfg.validate().train.attention_dropout == 0.1
    cfg.set("attention_dropout", "1.5")
    with pytest.raises(ConfigError, match="'attention_dropout'"):
        cfg.validate()
