"""From a SweepSpec to a validated plan of runs, and the definition stored in ``DIR/sweep.yaml``.

Each run is an ordinary run directory (what ``reviewsense train`` writes; for a distillation
variant, what :mod:`reviewsense.distill_run` writes) at ``DIR/<variant>/seed-<seed>/`` where
``<seed>`` is the run's actual training seed. Every
variant is resolved and validated before the first run starts. Re-running the same sweep into
DIR is allowed (it resumes), and so is adding or removing variants (finished runs are reused);
any other change of the definition is refused.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reviewsense.config import RunConfig
from reviewsense.errors import ConfigError
from reviewsense.modeling import ALIASES as MODEL_ALIASES
from reviewsense.modeling import check_model_name
from reviewsense.sweep.spec import SweepError, SweepSpec, Variant, make_variant

log = logging.getLogger(__name__)

SWEEP_YAML = "sweep.yaml"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")


@dataclass
class PlannedRun:
    """One (variant, seed) run: its resolved config and run directory."""

    variant: str
    seed: int
    cfg: RunConfig  # a distillation run: its teacher run's config (same data and test reviews)
    run_dir: Path
    distill: dict[str, Any] | None = None  # DistillConfig options of a distillation run
    teacher_dir: Path | None = None  # the same seed's run of the teacher variant

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


def _check_names(spec: SweepSpec) -> None:
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


def _resolve(common: RunConfig, v: Variant) -> RunConfig:
    """The variant's validated config: common config + its overrides (seed/name refused)."""
    for key in v.overrides:
        if key in ("seed", "train.seed"):
            raise ConfigError(
                f"variant '{v.name}': 'seed' cannot be a variant override — every variant "
                "runs the sweep's seeds (set 'seeds: [..]' instead)"
            )
        if key == "name":
            raise ConfigError(f"variant '{v.name}': 'name' is set by the sweep")
    cfg = copy.deepcopy(common)
    try:
        cfg.override(v.overrides)
        cfg.validate()
        check_model_name(cfg.model)
    except ConfigError as e:
        raise ConfigError(f"variant '{v.name}': {e}") from None
    return cfg


# DistillConfig options a sweep sets from the teacher run, so refused under `distill:`
SET_BY_SWEEP = (
    "teacher",
    "train_size",
    "eval_size",
    "seed",
    "data_dir",
    "threads",
    "precision",
    "attention_kernel",
    "dropout_kernel",
)


def _distill_options(v: Variant, earlier: list[Variant], cfg_of: dict) -> dict[str, Any]:
    """A distillation variant's validated options (without ``teacher``).

    Raises:
        ConfigError: naming the variant and the ``distill.`` key.
    """
    from dataclasses import fields

    from reviewsense.data.splits import resolve_dataset
    from reviewsense.distill import DistillConfig

    where = f"variant '{v.name}'"
    if v.overrides:
        raise ConfigError(
            f"{where}: a distillation variant has no overrides of its own "
            f"({', '.join(v.overrides)}); put its options under 'distill:'"
        )
    opts = dict(v.distill or {})
    teacher = opts.pop("teacher", None)
    trainers = [x.name for x in earlier if x.distill is None]
    if teacher not in trainers:
        raise ConfigError(
            f"{where}: invalid value for 'distill.teacher': {teacher!r} (the name of a training "
            f"variant listed before it: {', '.join(trainers) or 'none'})"
        )
    known = {f.name for f in fields(DistillConfig)} - set(SET_BY_SWEEP)
    for key in opts:
        if key not in known:
            why = "set from the teacher run" if key in SET_BY_SWEEP else "unknown"
            raise ConfigError(
                f"{where}: 'distill.{key}' is {why} (options: {', '.join(sorted(known))})"
            )
    dcfg = DistillConfig(teacher=teacher, **opts)
    try:
        dcfg.validate()
    except ConfigError as e:
        raise ConfigError(f"{where}: distill: {e}") from None
    if dcfg.unlabeled_size > 0 and resolve_dataset(cfg_of[teacher].data) != "imdb":
        raise ConfigError(
            f"{where}: 'distill.unlabeled_size' draws IMDb's unlabelled reviews, but the runs "
            "read other data; set it to 0"
        )
    return {"teacher": teacher, **opts}


def plan_sweep(spec: SweepSpec, output_dir: str | Path) -> SweepPlan:
    """Resolve and validate every variant × seed before anything runs (nothing is written).

    Runs are ordered seed-major (every variant's first seed, then the second…), so that an
    interrupted sweep already compares all variants.

    Raises:
        ConfigError: naming the variant and the key, for unknown keys or invalid values.
    """
    out = Path(output_dir)
    _check_names(spec)
    common = copy.deepcopy(spec.base)
    try:
        common.override(spec.set)
    except ConfigError as e:
        raise ConfigError(f"set: {e}") from None
    resolved: dict[str, RunConfig] = {}
    distill: dict[str, dict] = {}
    for i, v in enumerate(spec.variants):
        if v.distill is None:
            resolved[v.name] = _resolve(common, v)
        else:  # the teacher's data, splits and test reviews
            distill[v.name] = _distill_options(v, spec.variants[:i], resolved)
            resolved[v.name] = copy.deepcopy(resolved[distill[v.name]["teacher"]])
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
            run = PlannedRun(v.name, seed, cfg, out / v.name / f"seed-{seed}")
            if v.name in distill:
                run.distill = {k: x for k, x in distill[v.name].items() if k != "teacher"}
                run.teacher_dir = out / distill[v.name]["teacher"] / f"seed-{seed}"
            runs.append(run)
    flat = {k: _flatten(c) for k, c in resolved.items()}
    for name, opts in distill.items():
        flat[name] |= {f"distill.{k}": plain(x) for k, x in opts.items()}
    return SweepPlan(spec=spec, output_dir=out, seeds=seeds, runs=runs, resolved=flat)


def plain(v: Any) -> Any:
    """A YAML/JSON-friendly scalar: strings, numbers, bools and None as they are, else str."""
    return v if isinstance(v, str | int | float | bool | type(None)) else str(v)


def definition(plan: SweepPlan) -> dict:
    """What ``DIR/sweep.yaml`` holds: enough to re-run the sweep and to compare definitions."""
    s = plan.spec
    return {
        "name": s.name,
        "base": s.base_source,
        "set": {k: plain(v) for k, v in s.set.items()},
        "seeds": plan.seeds,
        "baseline": s.baseline_name,
        "grid": {k: [plain(x) for x in v] for k, v in s.grid.items()} if s.grid else None,
        "variants": {v.name: _variant_definition(v) for v in s.variants},
        "resolved": plan.resolved,
    }


def _variant_definition(v: Variant) -> dict:
    d = {k: plain(x) for k, x in v.overrides.items()}
    if v.distill is not None:
        d["distill"] = {k: plain(x) for k, x in v.distill.items()}
    return d


def _definition_diff(old: dict, new: dict) -> list[str]:
    """Human-readable differences that make two definitions different sweeps.

    Variants added or removed do not: the sweep is extended (or narrowed) and the finished runs
    of the variants both share are reused (:func:`check_or_write_definition`).
    """
    diffs = []
    for key in ("seeds", "baseline"):
        if old.get(key) != new.get(key):
            diffs.append(f"{key}: {old.get(key)!r} → {new.get(key)!r}")
    ov, nv = old.get("resolved", {}), new.get("resolved", {})
    for name in [n for n in nv if n in ov]:
        a, b = ov[name], nv[name]
        # Compare only keys both know: a field added to RunConfig later keeps old sweeps valid.
        for k in sorted(set(a) & set(b)):
            if a[k] != b[k]:
                diffs.append(f"variant '{name}' {k}: {a[k]!r} → {b[k]!r}")
    return diffs


def _read_definition(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise SweepError(f"{path} is not valid YAML ({e}); use another --output") from None


def _write_definition(path: Path, new: dict) -> None:
    tmp = path.with_suffix(".yaml.tmp")
    header = (
        "# Sweep definition written by `reviewsense sweep`. Re-running the same sweep into this\n"
        "# folder skips finished runs and resumes an unfinished one; variants may be added or\n"
        "# removed (shared variants' runs are reused); any other change is refused.\n"
    )
    tmp.write_text(header + yaml.safe_dump(new, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


def check_or_write_definition(plan: SweepPlan) -> None:
    """Write ``DIR/sweep.yaml``, or check that the one there describes the same sweep.

    Adding or removing variants extends or narrows the sweep: the definition is rewritten, the
    finished runs of the shared variants are reused, and a removed variant's runs stay on disk
    but leave the report. Any other change (seeds, baseline, a shared variant's settings)
    makes a different sweep.

    Raises:
        SweepError: when DIR holds a different sweep, or DIR is not a sweep folder.
    """
    out = plan.output_dir
    path = out / SWEEP_YAML
    new = definition(plan)
    if path.is_file():
        old = _read_definition(path)
        diffs = _definition_diff(old, new)
        if diffs:
            more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
            raise SweepError(
                f"{out} holds a different sweep ({'; '.join(diffs[:3])}{more}); "
                "use another --output, or delete the folder to start over"
            )
        ov, nv = list(old.get("resolved", {})), list(new.get("resolved", {}))
        if ov != nv:
            added, removed = [n for n in nv if n not in ov], [n for n in ov if n not in nv]
            log.info(
                "sweep %s changed its variants: added %s, removed %s (finished runs of the "
                "shared variants are reused; removed variants' runs stay on disk, out of the "
                "report)",
                out,
                added or "none",
                removed or "none",
            )
            _write_definition(path, new)
        return
    if out.exists() and any(out.iterdir()):
        raise SweepError(
            f"{out} exists and is not a sweep folder (no {SWEEP_YAML}); use another --output"
        )
    out.mkdir(parents=True, exist_ok=True)
    _write_definition(path, new)


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
        variants=[make_variant(k, v, str(path)) for k, v in (d.get("variants") or {}).items()],
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
