"""Sweeps: one base config, several variants (named overrides or a product grid), N seeds each.

A sweep file (``configs/sweeps/*.yaml``)::

    name: seed_debugging_offline
    preset: offline            # or `config: path/to/run-config.yaml` (relative to this file)
    set: {test_size: 5000}     # overrides for every variant (applied before the variant's)
    seeds: 3                   # N seeds: base seed + 0..N-1; or a list, e.g. [42, 7, 1234]
    baseline: baseline         # the variant the others are compared with (default: the first)
    variants:                  # name -> overrides; or `grid: {key: [v1, v2], ...}` (product)
      baseline: {}
      epochs_2: {epochs: 2}

Each run is an ordinary run directory (what ``reviewsense train`` writes) at
``DIR/<variant>/seed-<seed>/`` where ``<seed>`` is the run's actual training seed. Every
variant is resolved and validated before the first run starts. The definition is stored in
``DIR/sweep.yaml``; re-running the same sweep into DIR skips complete runs (``DONE`` marker)
and resumes an unfinished one from its last checkpoint; a different definition is refused.

When runs finish, :func:`write_report` compares each variant with the baseline
(``report.md``, ``report.html``, ``summary.json``; statistics in :mod:`reviewsense.sweep_stats`).
"""

from __future__ import annotations

import copy
import html
import itertools
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reviewsense import config as config_mod
from reviewsense.config import RunConfig
from reviewsense.errors import ConfigError, ReviewsenseError
from reviewsense.modeling import ALIASES as MODEL_ALIASES
from reviewsense.modeling import check_model_name as check_model
from reviewsense.rundir import METRICS_JSON, TEST_PREDICTIONS, is_complete_run

log = logging.getLogger(__name__)

SWEEP_YAML = "sweep.yaml"
SUMMARY_JSON = "summary.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
CURVES_DIR = "curves"
SWEEP_LOG = "sweep.log"
LOCK_FILE = ".sweep.lock"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")

TrainFn = Callable[[RunConfig, Path, bool], Any]


class SweepError(ReviewsenseError):
    """A sweep that cannot start or did not finish (the message says what to do)."""


# -- definition -------------------------------------------------------------------------------
@dataclass
class Variant:
    """One named set of overrides applied on top of the base config."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


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


@dataclass
class PlannedRun:
    """One (variant, seed) run: its resolved config and run directory."""

    variant: str
    seed: int
    cfg: RunConfig
    run_dir: Path

    @property
    def label(self) -> str:
        return f"{self.variant}/seed-{self.seed}"


@dataclass
class SweepPlan:
    """A validated sweep: every run's config, ready to start."""

    spec: SweepSpec
    output_dir: Path
    seeds: list[int]
    runs: list[PlannedRun]
    resolved: dict[str, dict]  # variant -> flattened config (without seed/name)


def _format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def expand_grid(grid: dict[str, list[Any]]) -> list[Variant]:
    """Product of ``{key: [values]}`` → variants named ``key_value-key_value`` (last key part).

    Args:
        grid: keys in the order given; each with a non-empty list of values.

    Returns:
        One Variant per combination, first values first (that one is the default baseline).
    """
    if not grid:
        raise ConfigError("grid: at least one 'key=v1,v2' entry is needed")
    keys = list(grid)
    for k in keys:
        vals = grid[k]
        if not isinstance(vals, list) or not vals:
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
    """``["train_size=200", ...]`` → ``{"train_size": "200"}`` (values coerced later)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value (got {item!r})")
        out[key.strip()] = value.strip()
    return out


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
            seeds = [int(str(v).strip()) for v in value]
            if not seeds:
                raise ValueError
            if len(set(seeds)) != len(seeds):
                raise ConfigError(f"invalid value for 'seeds': {value!r} repeats a seed")
            if any(s < 0 for s in seeds):
                raise ValueError
            return seeds
        n = int(str(value).strip())
    except (TypeError, ValueError):
        raise ConfigError(
            f"invalid value for 'seeds': {value!r} (a count >= 1 or a list of seeds >= 0)"
        ) from None
    if n < 1:
        raise ConfigError(f"invalid value for 'seeds': {n} must be >= 1")
    return n


def _load_base(preset: str | None, config: str | None, relative_to: Path | None) -> tuple:
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


def spec_from_dict(d: dict, source: str = "sweep", relative_to: Path | None = None) -> SweepSpec:
    """Build a SweepSpec from a parsed sweep file (layout in the module docstring).

    Raises:
        ConfigError: for unknown top-level keys, a missing base, or malformed variants/grid.
    """
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    known = {
        "name",
        "description",
        "preset",
        "config",
        "set",
        "seeds",
        "baseline",
        "variants",
        "grid",
    }
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown sweep key '{unknown[0]}' (known: {', '.join(sorted(known))})"
        )
    base, base_source = _load_base(d.get("preset"), d.get("config"), relative_to)
    if ("variants" in d) == ("grid" in d):
        raise ConfigError(f"{source}: give either 'variants' (name: overrides) or 'grid'")
    grid = None
    if "grid" in d:
        grid = _mapping(d["grid"], "grid", source)
        grid = {k: v if isinstance(v, list) else [v] for k, v in grid.items()}
        variants = expand_grid(grid)
    else:
        raw = d["variants"]
        variants = []
        if isinstance(raw, dict):
            for name, ov in raw.items():
                variants.append(Variant(str(name), _mapping(ov, f"variants.{name}", source)))
        elif isinstance(raw, list):
            # list form: [{name: baseline, epochs: 3}, ...]
            for i, item in enumerate(raw):
                if not isinstance(item, dict) or "name" not in item:
                    raise ConfigError(f"{source}: variants[{i}] needs a 'name'")
                ov = dict(item)
                variants.append(Variant(str(ov.pop("name")), ov))
        else:
            raise ConfigError(f"{source}: 'variants' must map names to overrides")
    name = str(d.get("name") or Path(source).stem)
    return SweepSpec(
        name=name,
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


# -- validation -------------------------------------------------------------------------------
def check_models_available(plan: SweepPlan) -> None:
    """Offline (``HF_HUB_OFFLINE=1``): every Hub model must already be in the local cache.

    Otherwise the sweep would train for hours and then fail at the first run of that variant.

    Raises:
        ConfigError: naming the variant and the key ``model``.
    """
    try:
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:
        return
    if not constants.HF_HUB_OFFLINE:
        return
    for name, flat in plan.resolved.items():
        model = str(flat["model"])
        if model in MODEL_ALIASES or Path(model).is_dir():
            continue
        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            raise ConfigError(
                f"variant '{name}': invalid value for 'model': {model!r} is not in the local "
                "Hugging Face cache and the Hub is offline (HF_HUB_OFFLINE=1); use a local "
                "model folder or 'minilm' (e.g. configs/sweeps/seed_debugging_offline.yaml)"
            )


def _flatten(cfg: RunConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    out = {"model": d["model"]}
    for section in ("data", "train"):
        for k, v in d[section].items():
            out[f"{section}.{k}"] = v
    out.pop("train.seed", None)  # seeds are part of the definition, not of a variant
    return out


def plan_sweep(spec: SweepSpec, output_dir: str | Path) -> SweepPlan:
    """Resolve and validate every variant × seed before anything runs.

    Args:
        spec: the sweep definition.
        output_dir: the sweep folder (nothing is written here).

    Returns:
        SweepPlan with runs ordered seed-major (every variant's first seed, then the second…),
        so that an interrupted sweep already compares all variants.

    Raises:
        ConfigError: naming the variant and the key, for unknown keys or invalid values.
    """
    out = Path(output_dir)
    if not spec.variants:
        raise ConfigError("a sweep needs at least one variant")
    names = [v.name for v in spec.variants]
    for n in names:
        if not _NAME_RE.match(n):
            raise ConfigError(
                f"invalid variant name {n!r}: use letters, digits and . _ = + - (it is a folder)"
            )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"variant name '{dup[0]}' is used twice")
    if spec.baseline is not None and spec.baseline not in names:
        raise ConfigError(
            f"invalid value for 'baseline': {spec.baseline!r} is not a variant ({', '.join(names)})"
        )

    common = copy.deepcopy(spec.base)
    try:
        common.override(spec.set)
    except ConfigError as e:
        raise ConfigError(f"set: {e}") from None

    resolved: dict[str, RunConfig] = {}
    for v in spec.variants:
        cfg = copy.deepcopy(common)
        for key in v.overrides:
            if key in ("seed", "train.seed"):
                raise ConfigError(
                    f"variant '{v.name}': 'seed' cannot be a variant override — every variant "
                    "runs the sweep's seeds (set 'seeds: [..]' instead)"
                )
            if key == "name":
                raise ConfigError(f"variant '{v.name}': 'name' is set by the sweep")
        try:
            cfg.override(v.overrides)
            cfg.validate()
            check_model(cfg.model)
        except ConfigError as e:
            raise ConfigError(f"variant '{v.name}': {e}") from None
        resolved[v.name] = cfg

    if isinstance(spec.seeds, int):
        seeds = [common.train.seed + k for k in range(spec.seeds)]
    else:
        seeds = list(spec.seeds)

    runs = []
    for seed in seeds:
        for v in spec.variants:
            cfg = copy.deepcopy(resolved[v.name])
            cfg.train.seed = seed
            cfg.name = f"{spec.name}/{v.name}/seed-{seed}"
            runs.append(PlannedRun(v.name, seed, cfg, out / v.name / f"seed-{seed}"))
    return SweepPlan(
        spec=spec,
        output_dir=out,
        seeds=seeds,
        runs=runs,
        resolved={k: _flatten(c) for k, c in resolved.items()},
    )


# -- the stored definition --------------------------------------------------------------------
def definition(plan: SweepPlan) -> dict:
    """What ``DIR/sweep.yaml`` holds: enough to re-run the sweep and to compare definitions."""
    s = plan.spec
    return {
        "name": s.name,
        "base": s.base_source,
        "set": {k: _plain(v) for k, v in s.set.items()},
        "seeds": plan.seeds,
        "baseline": s.baseline_name,
        "grid": {k: [_plain(x) for x in v] for k, v in s.grid.items()} if s.grid else None,
        "variants": {v.name: {k: _plain(x) for k, x in v.overrides.items()} for v in s.variants},
        "resolved": plan.resolved,
    }


def _plain(v: Any) -> Any:
    return v if isinstance(v, str | int | float | bool | type(None)) else str(v)


def _definition_diff(old: dict, new: dict) -> list[str]:
    """Human-readable differences that make two definitions different sweeps."""
    diffs = []
    for key in ("seeds", "baseline"):
        if old.get(key) != new.get(key):
            diffs.append(f"{key}: {old.get(key)!r} → {new.get(key)!r}")
    ov, nv = list(old.get("resolved", {})), list(new.get("resolved", {}))
    if ov != nv:
        diffs.append(f"variants: {ov} → {nv}")
    for name in set(ov) & set(nv):
        a, b = old["resolved"][name], new["resolved"][name]
        # Compare only keys both know: a field added to RunConfig later keeps old sweeps valid.
        for k in sorted(set(a) & set(b)):
            if a[k] != b[k]:
                diffs.append(f"variant '{name}' {k}: {a[k]!r} → {b[k]!r}")
    return diffs


def check_or_write_definition(plan: SweepPlan) -> None:
    """Write ``DIR/sweep.yaml``, or check that the one there describes the same sweep.

    Raises:
        SweepError: when DIR holds a different sweep, or DIR is not a sweep folder.
    """
    out = plan.output_dir
    path = out / SWEEP_YAML
    new = definition(plan)
    if path.is_file():
        try:
            old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise SweepError(f"{path} is not valid YAML ({e}); use another --output") from None
        diffs = _definition_diff(old, new)
        if diffs:
            more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
            raise SweepError(
                f"{out} holds a different sweep ({'; '.join(diffs[:3])}{more}); "
                "use another --output, or delete the folder to start over"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise SweepError(
            f"{out} exists and is not a sweep folder (no {SWEEP_YAML}); use another --output"
        )
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    header = (
        "# Sweep definition written by `reviewsense sweep`. Re-running the same sweep into this\n"
        "# folder skips finished runs and resumes an unfinished one; a different one is refused.\n"
    )
    tmp.write_text(header + yaml.safe_dump(new, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


# -- running ----------------------------------------------------------------------------------
@dataclass
class RunOutcome:
    """What happened to one planned run in this invocation."""

    label: str
    status: str  # skipped | trained | resumed | failed | pending
    seconds: float = 0.0
    error: str | None = None


@dataclass
class SweepResult:
    """Outcome of :func:`run_sweep`."""

    output_dir: Path
    outcomes: list[RunOutcome]
    summary: dict | None

    @property
    def n_trained(self) -> int:
        return sum(o.status in ("trained", "resumed") for o in self.outcomes)

    @property
    def n_skipped(self) -> int:
        return sum(o.status == "skipped" for o in self.outcomes)

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


class _SweepLock:
    """A pid file: two sweeps writing into one folder would train the same runs twice."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK_FILE

    def __enter__(self) -> _SweepLock:
        if self.path.is_file():
            try:
                pid = int(self.path.read_text().strip())
            except ValueError:
                pid = -1
            if pid > 0 and pid != os.getpid() and _pid_alive(pid):
                raise SweepError(
                    f"another sweep (pid {pid}) is running in {self.path.parent}; wait for it "
                    f"or stop it (a stale lock: delete {self.path})"
                )
        self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _default_train_fn() -> TrainFn:
    from reviewsense.train import run_training

    def train(cfg: RunConfig, run_dir: Path, resume: bool) -> Any:
        return run_training(cfg, run_dir, resume=resume)

    return train


def run_sweep(
    spec: SweepSpec,
    output_dir: str | Path,
    *,
    train_fn: TrainFn | None = None,
    keep_going: bool = False,
    curves: bool = True,
) -> SweepResult:
    """Run every (variant, seed) not finished yet, then write the comparison report.

    Args:
        spec: the sweep.
        output_dir: the sweep folder ``DIR``.
        train_fn: ``(cfg, run_dir, resume) -> Any``; default
            :func:`reviewsense.train.run_training`. Injected by tests.
        keep_going: continue with the next run when one fails (default: stop at the first
            failure — it is usually systematic, e.g. missing data).
        curves: overlay training curves into ``DIR/curves`` at the end.

    Returns:
        SweepResult with one outcome per planned run and the summary (None if nothing finished).

    Raises:
        ConfigError: an invalid variant (before any run starts).
        SweepError: DIR holds another sweep, or a run failed (after the report is written).
    """
    plan = plan_sweep(spec, output_dir)  # validates every variant before touching the disk
    check_models_available(plan)
    check_or_write_definition(plan)
    out = plan.output_dir
    handler = logging.FileHandler(out / SWEEP_LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    outcomes: list[RunOutcome] = []
    try:
        with _SweepLock(out):
            train = train_fn or _default_train_fn()
            todo = [r for r in plan.runs if not is_complete_run(r.run_dir)]
            log.info(
                "sweep %s: %d runs (%d variants × %d seeds), %d finished, %d to run → %s",
                spec.name,
                len(plan.runs),
                len(spec.variants),
                len(plan.seeds),
                len(plan.runs) - len(todo),
                len(todo),
                out,
            )
            durations: list[float] = []
            stop = False
            for i, r in enumerate(plan.runs, 1):
                if stop:
                    outcomes.append(RunOutcome(r.label, "pending"))
                    continue
                if is_complete_run(r.run_dir):
                    log.info("sweep [%d/%d] %s: complete, skipped", i, len(plan.runs), r.label)
                    outcomes.append(RunOutcome(r.label, "skipped"))
                    continue
                resume = r.run_dir.exists()
                eta = ""
                if durations:
                    left = sum(not is_complete_run(x.run_dir) for x in plan.runs[i - 1 :])
                    eta = f", about {left * sum(durations) / len(durations) / 60:.0f} min left"
                log.info(
                    "sweep [%d/%d] %s: %s%s",
                    i,
                    len(plan.runs),
                    r.label,
                    "resuming an unfinished run" if resume else "training",
                    eta,
                )
                t0 = time.perf_counter()
                try:
                    train(r.cfg, r.run_dir, resume)
                except KeyboardInterrupt:
                    log.warning(
                        "sweep interrupted in %s; re-run the same command to resume", r.label
                    )
                    raise
                except Exception as e:  # recorded, reported, re-raised below
                    msg = f"{type(e).__name__}: {e}".splitlines()[0]
                    log.error(
                        "sweep %s failed: %s",
                        r.label,
                        msg,
                        exc_info=not isinstance(e, ReviewsenseError),
                    )
                    outcomes.append(RunOutcome(r.label, "failed", time.perf_counter() - t0, msg))
                    stop = not keep_going
                    continue
                dt = time.perf_counter() - t0
                durations.append(dt)
                if not is_complete_run(r.run_dir):
                    # The trainer returned without the DONE marker: treat as failed, not done.
                    msg = f"returned without writing {r.run_dir}/DONE"
                    log.error("sweep %s: %s", r.label, msg)
                    outcomes.append(RunOutcome(r.label, "failed", dt, msg))
                    stop = not keep_going
                    continue
                outcomes.append(RunOutcome(r.label, "resumed" if resume else "trained", dt))
                log.info("sweep %s: done in %.0f s", r.label, dt)
                _safe_report(plan, curves=False)  # a partial report after every run
        summary = _safe_report(plan, curves=curves)
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            first = failed[0]
            raise SweepError(
                f"{len(failed)} of {len(plan.runs)} runs failed, first {first.label}: {first.error} "
                f"(see {out / first.label / 'train.log'}; re-run the same command to resume)"
            )
        log.info(
            "sweep %s: %d trained, %d skipped; report: %s",
            spec.name,
            sum(o.status in ("trained", "resumed") for o in outcomes),
            sum(o.status == "skipped" for o in outcomes),
            out / REPORT_MD,
        )
        return SweepResult(out, outcomes, summary)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _safe_report(plan: SweepPlan, curves: bool) -> dict | None:
    """Write the report; a reporting bug must not lose hours of finished training."""
    try:
        return write_report(plan, curves=curves)
    except Exception as e:
        log.warning(
            "sweep report failed (%s: %s); the runs are intact", type(e).__name__, e, exc_info=True
        )
        return None


def load_plan(output_dir: str | Path) -> SweepPlan:
    """Rebuild the plan of an existing sweep folder from its ``sweep.yaml`` (report-only use)."""
    out = Path(output_dir)
    path = out / SWEEP_YAML
    if not path.is_file():
        raise SweepError(f"{out} is not a sweep folder (no {SWEEP_YAML})")
    d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    base = RunConfig()
    spec = SweepSpec(
        name=d.get("name", out.name),
        base=base,
        base_source=str(d.get("base")),
        set=d.get("set") or {},
        variants=[Variant(k, v or {}) for k, v in (d.get("variants") or {}).items()],
        seeds=list(d.get("seeds") or []),
        baseline=d.get("baseline"),
        grid=d.get("grid"),
    )
    runs = [
        PlannedRun(v.name, s, base, out / v.name / f"seed-{s}")
        for s in spec.seeds
        for v in spec.variants
    ]
    return SweepPlan(spec, out, list(spec.seeds), runs, d.get("resolved") or {})


# -- report -----------------------------------------------------------------------------------
# (key in the report, label, unit): what is averaged per variant.
REPORT_METRICS: list[tuple[str, str, str]] = [
    ("val_accuracy", "val accuracy", "pct"),
    ("val_f1", "val F1", "pct"),
    ("val_loss", "val loss", "num"),
    ("test_accuracy", "test accuracy", "pct"),
    ("test_f1", "test F1", "pct"),
    ("test_loss", "test loss", "num"),
    ("best_epoch", "best epoch", "num"),
    ("train_time_s", "train time (s)", "int"),
    ("examples_per_s", "examples/s", "num"),
    ("peak_rss_mb", "peak RSS (MB)", "int"),
    ("checkpoint_disk_mb", "checkpoints (MB)", "int"),
]
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def run_metrics(metrics: dict) -> dict[str, float | None]:
    """The per-run numbers the report averages, from a run's ``metrics.json``."""
    val = metrics.get("validation") or []
    best = metrics.get("best") or {}
    row: dict = {}
    if val:
        row = (
            next(
                (
                    v
                    for v in val
                    if best.get("step") is not None and v.get("step") == best.get("step")
                ),
                None,
            )
            or next(
                (
                    v
                    for v in val
                    if best.get("epoch") is not None and v.get("epoch") == best.get("epoch")
                ),
                None,
            )
            or val[-1]
        )
    test = metrics.get("test") or {}
    train = metrics.get("train") or {}
    test_loss = test.get("loss", test.get("log_loss"))
    return {
        "val_accuracy": _num(row.get("accuracy")),
        "val_f1": _num(row.get("f1")),
        "val_loss": _num(row.get("loss", row.get("log_loss"))),
        "test_accuracy": _num(test.get("accuracy")),
        "test_f1": _num(test.get("f1")),
        "test_loss": _num(test_loss),
        "best_epoch": _num(best.get("epoch", row.get("epoch"))),
        "train_time_s": _num(train.get("train_time_s")),
        "wall_time_s": _num(train.get("wall_time_s")),
        "examples_per_s": _num(train.get("examples_per_s")),
        "peak_rss_mb": _num(train.get("peak_rss_mb")),
        "checkpoint_disk_mb": _num(train.get("checkpoint_disk_mb")),
        "global_batch_size": _num(train.get("global_batch_size")),
        "world_size": _num(train.get("world_size")),
    }


def _load_predictions(run_dir: Path):
    import pandas as pd

    df = pd.read_parquet(run_dir / TEST_PREDICTIONS, columns=["row_id", "label", "prediction"])
    df["row_id"] = df["row_id"].astype(str)
    return df.drop_duplicates("row_id").set_index("row_id")


def _paired(base: dict[int, Path], var: dict[int, Path]):
    """Align baseline and variant test predictions by seed and row_id."""
    import numpy as np

    from reviewsense.sweep_stats import PairedData

    seeds = sorted(set(base) & set(var))
    frames = []
    for s in seeds:
        b, v = _load_predictions(base[s]), _load_predictions(var[s])
        j = b.merge(v, how="inner", left_index=True, right_index=True, suffixes=("_b", "_v"))
        if (j["label_b"] != j["label_v"]).any():
            raise SweepError(
                f"seed {s}: test labels differ between {base[s]} and {var[s]} for the same row_id"
            )
        frames.append((s, j))
    row_ids = sorted(set().union(*(set(j.index) for _, j in frames))) if frames else []
    if not row_ids:
        return None, seeds
    pos = {r: i for i, r in enumerate(row_ids)}
    n, k = len(row_ids), len(frames)
    labels = np.zeros((n, k), dtype=np.int64)
    bp = np.zeros((n, k), dtype=np.int64)
    vp = np.zeros((n, k), dtype=np.int64)
    present = np.zeros((n, k), dtype=bool)
    for c, (_, j) in enumerate(frames):
        idx = np.fromiter((pos[r] for r in j.index), dtype=np.int64, count=len(j))
        labels[idx, c] = j["label_b"].to_numpy()
        bp[idx, c] = j["prediction_b"].to_numpy()
        vp[idx, c] = j["prediction_v"].to_numpy()
        present[idx, c] = True
    # A review's label is the same in every seed; fill absent cells from any present one.
    return PairedData(
        labels=labels.max(axis=1, keepdims=True).repeat(k, 1),
        base_pred=bp,
        var_pred=vp,
        present=present,
    ), seeds


def summarize(plan: SweepPlan) -> dict:
    """Statistics per variant over its complete runs, and the comparison with the baseline.

    Returns:
        The ``summary.json`` content: ``{"sweep", "baseline", "seeds", "runs", "method",
        "variants": {name: {"mean", "std", "delta", "ci", "ci_seeds", "p_value", "verdict",
        ...}}}``.
    """
    import numpy as np

    from reviewsense.sweep_stats import mcnemar, mean_std, paired_bootstrap, t_interval

    spec = plan.spec
    baseline = spec.baseline_name
    runs_info = []
    per_variant: dict[str, dict[int, dict]] = {v.name: {} for v in spec.variants}
    dirs: dict[str, dict[int, Path]] = {v.name: {} for v in spec.variants}
    for r in plan.runs:
        status = (
            "complete"
            if is_complete_run(r.run_dir)
            else ("partial" if r.run_dir.exists() else "missing")
        )
        entry = {"variant": r.variant, "seed": r.seed, "status": status, "run_dir": str(r.run_dir)}
        if status == "complete":
            try:
                m = json.loads((r.run_dir / METRICS_JSON).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                entry["status"] = "unreadable"
                entry["error"] = str(e)
            else:
                per_variant[r.variant][r.seed] = run_metrics(m)
                if (r.run_dir / TEST_PREDICTIONS).is_file():
                    dirs[r.variant][r.seed] = r.run_dir
        runs_info.append(entry)

    keys = [k for k, _, _ in REPORT_METRICS] + ["wall_time_s"]
    variants: dict[str, dict] = {}
    base_runs = per_variant.get(baseline, {})
    base_mean = {k: mean_std([m[k] for m in base_runs.values()])[0] for k in keys}
    for v in spec.variants:
        runs = per_variant[v.name]
        mean, std = {}, {}
        for k in keys:
            mean[k], std[k] = mean_std([m[k] for m in runs.values()])
        entry: dict[str, Any] = {
            "overrides": {k: _plain(x) for k, x in v.overrides.items()},
            "seeds": sorted(runs),
            "n_seeds": len(runs),
            "mean": mean,
            "std": std,
            "per_seed": {str(s): runs[s] for s in sorted(runs)},
            "delta": {},
            "ci": {},
            "ci_seeds": {},
            "p_value": None,
        }
        if v.name == baseline:
            entry["is_baseline"] = True
            entry["verdict"] = (
                f"{v.name}: baseline ({_fmt_mean(mean, std, 'test_accuracy')} test accuracy, {len(runs)} seed(s))"
            )
            variants[v.name] = entry
            continue
        entry["is_baseline"] = False
        for k in keys:
            if mean[k] is not None and base_mean[k] is not None:
                entry["delta"][k] = mean[k] - base_mean[k]
                if (
                    k
                    in (
                        "train_time_s",
                        "wall_time_s",
                        "peak_rss_mb",
                        "checkpoint_disk_mb",
                        "examples_per_s",
                    )
                    and base_mean[k]
                ):
                    entry["delta"][f"{k}_rel"] = mean[k] / base_mean[k] - 1
        shared = sorted(set(runs) & set(base_runs))
        for k in ("test_accuracy", "test_f1", "val_accuracy", "val_f1"):
            d = [
                runs[s][k] - base_runs[s][k]
                for s in shared
                if runs[s][k] is not None and base_runs[s][k] is not None
            ]
            ti = t_interval(np.asarray(d))
            entry["ci_seeds"][k] = [ti.lo, ti.hi] if ti.lo is not None else None
            if k == "test_accuracy":
                entry["t_test_p_value"] = ti.p_value
        paired, pseeds = _paired(dirs[baseline], dirs[v.name])
        if paired is not None:
            mask = paired.present
            mc = mcnemar(
                (paired.base_pred == paired.labels)[mask], (paired.var_pred == paired.labels)[mask]
            )
            entry["mcnemar"] = mc.to_dict()
            entry["p_value"] = mc.p_mid
            entry["paired_seeds"] = pseeds
            entry["n_paired_predictions"] = paired.n_pairs
            for metric in ("accuracy", "f1"):
                bs = paired_bootstrap(
                    paired, metric=metric, n_resamples=BOOTSTRAP_RESAMPLES, seed=0
                )
                entry["ci"][f"test_{metric}"] = [bs.lo, bs.hi]
                entry["delta"][f"test_{metric}_paired"] = bs.estimate
                if metric == "accuracy":
                    entry["p_value_bootstrap"] = bs.p_value
        entry["verdict"] = _verdict(v.name, entry)
        variants[v.name] = entry

    n_complete = sum(r["status"] == "complete" for r in runs_info)
    return {
        "sweep": spec.name,
        "output_dir": str(plan.output_dir),
        "base": spec.base_source,
        "baseline": baseline,
        "seeds": plan.seeds,
        "complete_runs": n_complete,
        "total_runs": len(plan.runs),
        "alpha": ALPHA,
        "method": {
            "mean_std": "mean and sample standard deviation (ddof=1) over the variant's complete seeds",
            "delta": "variant mean minus baseline mean; *_rel: relative change",
            "ci": (
                f"95% paired cluster bootstrap ({BOOTSTRAP_RESAMPLES} resamples) over test reviews, "
                "predictions of the same seed paired by row_id, averaged over seeds"
            ),
            "ci_seeds": "95% Student-t interval over per-seed differences (training variability)",
            "p_value": "two-sided McNemar mid-p on paired test predictions pooled over seeds",
        },
        "variants": variants,
        "runs": runs_info,
    }


def _pt(x: float | None, signed: bool = True) -> str:
    if x is None:
        return "n/a"
    s = f"{x * 100:+.1f}" if signed else f"{x * 100:.1f}"
    return s.replace("-", "−")


def _fmt_mean(mean: dict, std: dict, k: str) -> str:
    if mean.get(k) is None:
        return "n/a"
    return f"{mean[k] * 100:.1f}% ± {(std.get(k) or 0) * 100:.1f}"


def _verdict(name: str, e: dict) -> str:
    """One plain sentence: effect on test accuracy with its interval, significance, time."""
    d = e["delta"]
    acc = d.get("test_accuracy_paired", d.get("test_accuracy"))
    if acc is None:
        return f"{name}: no finished runs paired with the baseline yet"
    parts = [f"{name}: accuracy {_pt(acc)} pt"]
    ci = e["ci"].get("test_accuracy") or e["ci_seeds"].get("test_accuracy")
    p = e.get("p_value")
    sig = p is not None and p < ALPHA
    inner = []
    if ci and ci[0] is not None:
        inner.append(f"95% CI {_pt(ci[0])}..{_pt(ci[1])}")
    if p is None:
        inner.append("no paired test predictions")
    else:
        better = "better" if acc > 0 else "worse"
        inner.append(f"significantly {better}, p={p:.3g}" if sig else f"not significant, p={p:.2g}")
    parts[0] += f" ({', '.join(inner)})"
    f1 = d.get("test_f1_paired", d.get("test_f1"))
    if f1 is not None:
        parts.append(f"F1 {_pt(f1)} pt")
    rel = d.get("train_time_s_rel")
    if rel is not None:
        parts.append(f"{abs(rel) * 100:.0f}% {'less' if rel < 0 else 'more'} training time")
    sentence = ", ".join(parts)
    cs = e["ci_seeds"].get("test_accuracy")
    if e["n_seeds"] < 2:
        sentence += "; 1 seed only: seed-to-seed variation not measured"
    elif sig and cs and cs[0] is not None and cs[0] <= 0 <= cs[1]:
        sentence += f"; but not consistent across seeds (seed 95% CI {_pt(cs[0])}..{_pt(cs[1])} pt)"
    return sentence


def _cell(v: float | None, sd: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "pct":
        return f"{v * 100:.2f} ± {(sd or 0) * 100:.2f}"
    if unit == "int":
        return f"{v:.0f} ± {(sd or 0):.0f}"
    return f"{v:.3f} ± {(sd or 0):.3f}"


def _ci(ci: list | None) -> str:
    if not ci or ci[0] is None:
        return "n/a"
    return f"{_pt(ci[0])}..{_pt(ci[1])}"


def _tables(summary: dict) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    head1 = ["variant", "seeds"] + [label for _, label, _ in REPORT_METRICS]
    rows1 = []
    for name, e in summary["variants"].items():
        rows1.append(
            [name + (" (baseline)" if e.get("is_baseline") else ""), str(e["n_seeds"])]
            + [_cell(e["mean"].get(k), e["std"].get(k), u) for k, _, u in REPORT_METRICS]
        )
    head2 = [
        "variant",
        "Δ test acc (pt)",
        "95% CI (bootstrap)",
        "95% CI (seeds)",
        "Δ test F1 (pt)",
        "95% CI (bootstrap)",
        "McNemar b/c",
        "p-value",
        "Δ train time",
    ]
    rows2 = []
    for name, e in summary["variants"].items():
        if e.get("is_baseline"):
            continue
        d = e["delta"]
        mc = e.get("mcnemar")
        rel = d.get("train_time_s_rel")
        rows2.append(
            [
                name,
                _pt(d.get("test_accuracy_paired", d.get("test_accuracy"))),
                _ci(e["ci"].get("test_accuracy")),
                _ci(e["ci_seeds"].get("test_accuracy")),
                _pt(d.get("test_f1_paired", d.get("test_f1"))),
                _ci(e["ci"].get("test_f1")),
                f"{mc['b']}/{mc['c']}" if mc else "n/a",
                f"{e['p_value']:.3g}" if e.get("p_value") is not None else "n/a",
                f"{rel * 100:+.0f}%".replace("-", "−") if rel is not None else "n/a",
            ]
        )
    return head1, rows1, head2, rows2


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def render_markdown(summary: dict, curve_files: list[str]) -> str:
    """``report.md``: verdicts first, then the tables and how the numbers were computed."""
    head1, rows1, head2, rows2 = _tables(summary)
    m = summary["method"]
    parts = [
        f"# Sweep `{summary['sweep']}`",
        "",
        f"Base: `{summary['base']}` · baseline variant: `{summary['baseline']}` · seeds: "
        f"{', '.join(map(str, summary['seeds']))} · complete runs: "
        f"{summary['complete_runs']}/{summary['total_runs']}",
        "",
        "## Verdicts",
        "",
        *[f"- {e['verdict']}" for e in summary["variants"].values()],
        "",
        "## Per variant (mean ± std over seeds)",
        "",
        _md_table(head1, rows1),
        "",
        "## Difference from the baseline",
        "",
        _md_table(head2, rows2) if rows2 else "_(no other variant)_",
        "",
        "## Method",
        "",
        *[f"- **{k}**: {v}" for k, v in m.items()],
        f"- significant: p < {summary['alpha']}. The McNemar test and the bootstrap measure "
        "test-set noise for these trained models; the seed interval measures how much the "
        "difference moves between seeds. A recipe change is convincing when both agree.",
        "",
    ]
    if curve_files:
        parts += ["## Curves", "", *[f"![{f}]({f})" for f in curve_files], ""]
    parts += [
        "## Runs",
        "",
        _md_table(
            ["variant", "seed", "status", "run dir"],
            [[r["variant"], str(r["seed"]), r["status"], r["run_dir"]] for r in summary["runs"]],
        ),
        "",
    ]
    return "\n".join(parts)


def render_html(summary: dict, curve_files: list[str]) -> str:
    """``report.html``: the same content as ``report.md``, self-contained (images linked)."""
    head1, rows1, head2, rows2 = _tables(summary)
    esc = html.escape
    imgs = "".join(
        f'<figure><img src="{esc(f)}" alt="{esc(f)}"><figcaption>{esc(f)}</figcaption></figure>'
        for f in curve_files
    )
    verdicts = "".join(f"<li>{esc(e['verdict'])}</li>" for e in summary["variants"].values())
    method = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in summary["method"].items())
    runs = _html_table(
        ["variant", "seed", "status", "run dir"],
        [[r["variant"], str(r["seed"]), r["status"], r["run_dir"]] for r in summary["runs"]],
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sweep {esc(summary["sweep"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 80rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Sweep <code>{esc(summary["sweep"])}</code></h1>
<p>Base: <code>{esc(summary["base"])}</code> · baseline: <code>{esc(summary["baseline"])}</code> ·
seeds: {esc(", ".join(map(str, summary["seeds"])))} · complete runs:
{summary["complete_runs"]}/{summary["total_runs"]}</p>
<h2>Verdicts</h2><ul>{verdicts}</ul>
<h2>Per variant (mean ± std over seeds)</h2>{_html_table(head1, rows1)}
<h2>Difference from the baseline</h2>{_html_table(head2, rows2)}
<h2>Method</h2><ul>{method}<li>significant: p &lt; {summary["alpha"]}</li></ul>
{"<h2>Curves</h2>" + imgs if imgs else ""}
<h2>Runs</h2>{runs}
</body></html>
"""


def _write_curves(plan: SweepPlan) -> list[str]:
    """Overlay curves via ``analyze``'s comparison (one run per variant: its first seed)."""
    out = plan.output_dir / CURVES_DIR
    chosen, labels = [], []
    for v in plan.spec.variants:
        run = next(
            (r for r in plan.runs if r.variant == v.name and is_complete_run(r.run_dir)), None
        )
        if run is not None:
            chosen.append(str(run.run_dir))
            labels.append(f"{v.name}/seed-{run.seed}")
    if not chosen:
        return []
    try:
        from reviewsense.analysis.compare import compare_runs

        compare_runs(chosen, out, plots=True, labels=labels)
    except Exception as e:  # curves are a nice-to-have; the statistics stand alone
        log.warning(
            "sweep curves skipped: analyze's compare_runs failed (%s: %s)", type(e).__name__, e
        )
    return _curve_files(plan)


def _curve_files(plan: SweepPlan) -> list[str]:
    """The overlay plots (top level of ``curves/``; per-run plots live in its subfolders)."""
    out = plan.output_dir / CURVES_DIR
    if not out.is_dir():
        return []
    return sorted(str(p.relative_to(plan.output_dir)) for p in out.glob("*.png"))


def write_report(plan: SweepPlan, curves: bool = True) -> dict:
    """Write ``summary.json``, ``report.md`` and ``report.html`` into the sweep folder.

    Args:
        plan: the sweep (from :func:`plan_sweep` or :func:`load_plan`).
        curves: also overlay training curves into ``DIR/curves`` (via ``analyze``).

    Returns:
        The summary dict written to ``summary.json``.
    """
    summary = summarize(plan)
    curve_files = _write_curves(plan) if curves else _curve_files(plan)
    out = plan.output_dir
    summary = _clean(summary)
    _atomic_write(
        out / SUMMARY_JSON, json.dumps(summary, indent=2, allow_nan=False, default=str) + "\n"
    )
    _atomic_write(out / REPORT_MD, render_markdown(summary, curve_files))
    _atomic_write(out / REPORT_HTML, render_html(summary, curve_files))
    for e in summary["variants"].values():
        log.info("%s", e["verdict"])
    return summary


def _clean(x: Any) -> Any:
    """NaN/inf → None and numpy scalars → Python: summary.json stays strict JSON."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, str):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
