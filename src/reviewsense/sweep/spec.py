"""What a sweep is: a base config, common overrides, variants (named or a grid) and seeds.

A sweep file (``configs/sweeps/*.yaml``)::

    name: seed_debugging_offline
    preset: offline            # or `config: path/to/run-config.yaml` (relative to this file)
    set: {test_size: 5000}     # overrides for every variant (applied before the variant's)
    seeds: 3                   # N seeds: base seed + 0..N-1; or a list, e.g. [42, 7, 1234]
    baseline: baseline         # the variant the others are compared with (default: the first)
    variants:                  # name -> overrides; or `grid: {key: [v1, v2], ...}` (product)
      baseline: {}
      epochs_2: {epochs: 2}
      distilled_l3:            # per seed, a student of that seed's `baseline` run (distill.py)
        distill: {teacher: baseline, layers: 3, unlabeled_size: 10000}
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reviewsense import config as config_mod
from reviewsense.config import RunConfig
from reviewsense.errors import ConfigError, ReviewsenseError

SPEC_KEYS = ("name", "description", "preset", "config", "set", "seeds", "baseline")
SPEC_KEYS += ("variants", "grid")


class SweepError(ReviewsenseError):
    """A sweep that cannot start or did not finish (the message says what to do)."""


@dataclass
class Variant:
    """One named set of overrides applied on top of the base config, or a distillation.

    ``distill``: ``{teacher: VARIANT, <DistillConfig options>}`` — each seed's run is a student
    distilled from the same seed's run of the teacher variant (it has no overrides of its own).
    """

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    distill: dict[str, Any] | None = None


@dataclass
class SweepSpec:
    """What to run: base config + common overrides + variants × seeds.

    Attributes:
        name: sweep name (default output folder name).
        base: the base RunConfig (a preset or a config file, already loaded).
        base_source: where ``base`` came from (``preset:offline`` or a file path), for the record.
        set: overrides applied to every variant, before the variant's own.
        variants: the variants, in order; names are folder names.
        seeds: an int N (seeds base_seed + 0..N-1) or an explicit list of seeds.
        baseline: name of the variant the others are compared with.
        grid: the product grid the variants were expanded from (record only), if any.
    """

    name: str
    base: RunConfig
    base_source: str
    set: dict[str, Any] = field(default_factory=dict)
    variants: list[Variant] = field(default_factory=list)
    seeds: int | list[int] = 1
    baseline: str | None = None
    grid: dict[str, list[Any]] | None = None

    @property
    def baseline_name(self) -> str:
        return self.baseline or self.variants[0].name


def _format_value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def expand_grid(grid: dict[str, list[Any]]) -> list[Variant]:
    """Product of ``{key: [values]}`` → variants named ``key_value-key_value`` (last key part).

    Returns one Variant per combination, first values first (that one is the default baseline).
    """
    if not grid:
        raise ConfigError("grid: at least one 'key=v1,v2' entry is needed")
    keys = list(grid)
    for k in keys:
        if not isinstance(grid[k], list) or not grid[k]:
            raise ConfigError(f"grid: '{k}' needs a non-empty list of values")
    variants = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        name = "-".join(
            f"{k.rsplit('.', 1)[-1]}_{_format_value(v)}" for k, v in zip(keys, combo, strict=True)
        )
        name = re.sub(r"[^A-Za-z0-9._=+-]", "_", name)  # model paths etc.: keep a folder name
        variants.append(Variant(name=name, overrides=dict(zip(keys, combo, strict=True))))
    return variants


def parse_grid_args(items: list[str]) -> dict[str, list[str]]:
    """``["epochs=2,3", "batch_size=8,16"]`` → ``{"epochs": ["2", "3"], ...}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--grid expects key=v1,v2,... (got {item!r})")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not vals:
            raise ConfigError(f"--grid '{key}': no values given")
        if key in grid:
            raise ConfigError(f"--grid '{key}' is given twice")
        grid[key] = vals
    return grid


def parse_set_args(items: list[str]) -> dict[str, str]:
    """``["train_size=200", ...]`` → ``{"train_size": "200"}`` (values coerced later).

    The one parser of ``--set`` (train and sweep; ``cli._common.parse_set``).
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, e.g. --set train_size=500 (got {item!r})")
        out[key.strip()] = value.strip()
    return out


def _seed_list(value: list | tuple) -> list[int]:
    seeds = [int(str(v).strip()) for v in value]
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"invalid value for 'seeds': {value!r} repeats a seed")
    return seeds


def parse_seeds(value: Any) -> int | list[int]:
    """``3`` / ``"3"`` → 3 seeds; ``"42,43"`` / ``[42, 43]`` → that list.

    Raises:
        ConfigError: naming ``seeds`` for anything else.
    """
    if isinstance(value, bool):
        raise ConfigError(f"invalid value for 'seeds': {value!r} (a count or a list of ints)")
    if isinstance(value, str) and "," in value:
        value = [v for v in value.split(",") if v.strip()]
    try:
        if isinstance(value, list | tuple):
            return _seed_list(value)
        n = int(str(value).strip())
    except (TypeError, ValueError):
        raise ConfigError(
            f"invalid value for 'seeds': {value!r} (a count >= 1 or a list of seeds >= 0)"
        ) from None
    if n < 1:
        raise ConfigError(f"invalid value for 'seeds': {n} must be >= 1")
    return n


def load_base(preset: str | None, config: str | None, relative_to: Path | None) -> tuple:
    """The base RunConfig and where it came from: a preset name/file, or a config file."""
    if bool(preset) == bool(config):
        raise ConfigError("a sweep needs exactly one base: 'preset: NAME' or 'config: FILE'")
    if preset:
        p = Path(preset)
        if p.suffix in (".yaml", ".yml") and p.is_file():
            return config_mod.load_file(p), str(p.resolve())
        return config_mod.load_preset(preset), f"preset:{preset}"
    path = Path(config)
    if not path.is_absolute() and relative_to is not None and not path.is_file():
        path = relative_to / path
    return config_mod.load_file(path), str(path.resolve())


def _mapping(value: Any, what: str, source: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{what}' must be a mapping of key: value")
    return dict(value)


def make_variant(name: str, overrides: Any, source: str) -> Variant:
    """A Variant from its mapping; a ``distill:`` entry makes it a distillation variant."""
    ov = _mapping(overrides, f"variants.{name}", source)
    distill = ov.pop("distill", None)
    if distill is not None:
        distill = _mapping(distill, f"variants.{name}.distill", source)
    return Variant(name, ov, distill)


def _variants(raw: Any, source: str) -> list[Variant]:
    """``variants:`` as a mapping (name: overrides) or a list of ``{name: .., key: ..}``."""
    if isinstance(raw, dict):
        return [make_variant(str(n), ov, source) for n, ov in raw.items()]
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: 'variants' must map names to overrides")
    variants = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f"{source}: variants[{i}] needs a 'name'")
        ov = dict(item)
        variants.append(make_variant(str(ov.pop("name")), ov, source))
    return variants


def spec_from_dict(d: dict, source: str = "sweep", relative_to: Path | None = None) -> SweepSpec:
    """Build a SweepSpec from a parsed sweep file (layout in the module docstring).

    Raises:
        ConfigError: for unknown top-level keys, a missing base, or malformed variants/grid.
    """
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    unknown = sorted(set(d) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown sweep key '{unknown[0]}' (known: {', '.join(sorted(SPEC_KEYS))})"
        )
    base, base_source = load_base(d.get("preset"), d.get("config"), relative_to)
    if ("variants" in d) == ("grid" in d):
        raise ConfigError(f"{source}: give either 'variants' (name: overrides) or 'grid'")
    grid = None
    if "grid" in d:
        grid = _mapping(d["grid"], "grid", source)
        grid = {k: v if isinstance(v, list) else [v] for k, v in grid.items()}
        variants = expand_grid(grid)
    else:
        variants = _variants(d["variants"], source)
    return SweepSpec(
        name=str(d.get("name") or Path(source).stem),
        base=base,
        base_source=base_source,
        set=_mapping(d.get("set"), "set", source),
        variants=variants,
        seeds=parse_seeds(d.get("seeds", 1)),
        baseline=str(d["baseline"]) if d.get("baseline") is not None else None,
        grid=grid,
    )


def find_sweep_file(name_or_path: str | Path) -> Path:
    """A sweep file path, or the name of one in ``configs/sweeps/`` (``seed_debugging``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = config_mod.configs_dir() / "sweeps" / f"{p.stem if p.suffix else p.name}.yaml"
    if shipped.is_file() and not p.parent.name:
        return shipped
    avail = sorted(x.stem for x in (config_mod.configs_dir() / "sweeps").glob("*.yaml"))
    raise ConfigError(
        f"sweep file {name_or_path} does not exist (shipped sweeps: {', '.join(avail) or 'none'})"
    )


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read and parse a sweep file (see the module docstring for the layout)."""
    p = find_sweep_file(path)
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {e}") from None
    return spec_from_dict(d, source=str(p), relative_to=p.parent)
