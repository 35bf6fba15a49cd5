"""Sweeps: one base config, several variants (named overrides or a product grid), N seeds each.

A variant may also be a distillation (``distill: {teacher: VARIANT, ...}``): per seed, a student
of that seed's teacher run, compared like any variant (:mod:`reviewsense.distill_run`).

Modules, in import order: :mod:`.spec` (the definition and sweep files), :mod:`.plan`
(validated runs, the stored ``sweep.yaml``), :mod:`.stats` (paired tests, the review as the
unit), :mod:`.summary` (per-variant statistics, verdicts), :mod:`.report` (``summary.json``,
``report.md``, ``report.html``), :mod:`.run` (resumable execution).
"""

from reviewsense.modeling import check_model_name as check_model
from reviewsense.rundir import is_complete_run
from reviewsense.sweep.plan import (
    SWEEP_YAML,
    PlannedRun,
    SweepPlan,
    check_models_available,
    check_or_write_definition,
    definition,
    load_plan,
    plan_sweep,
)
from reviewsense.sweep.report import REPORT_HTML, REPORT_MD, SUMMARY_JSON, write_report
from reviewsense.sweep.run import LOCK_FILE, SWEEP_LOG, RunOutcome, SweepResult, run_sweep
from reviewsense.sweep.spec import (
    SweepError,
    SweepSpec,
    Variant,
    expand_grid,
    find_sweep_file,
    load_base,
    load_sweep_file,
    parse_grid_args,
    parse_seeds,
    parse_set_args,
    spec_from_dict,
)
from reviewsense.sweep.summary import run_metrics, summarize

__all__ = [
    "LOCK_FILE",
    "REPORT_HTML",
    "REPORT_MD",
    "SUMMARY_JSON",
    "SWEEP_LOG",
    "SWEEP_YAML",
    "PlannedRun",
    "RunOutcome",
    "SweepError",
    "SweepPlan",
    "SweepResult",
    "SweepSpec",
    "Variant",
    "check_model",
    "check_models_available",
    "check_or_write_definition",
    "definition",
    "expand_grid",
    "find_sweep_file",
    "is_complete_run",
    "load_base",
    "load_plan",
    "load_sweep_file",
    "parse_grid_args",
    "parse_seeds",
    "parse_set_args",
    "plan_sweep",
    "run_metrics",
    "run_sweep",
    "spec_from_dict",
    "summarize",
    "write_report",
]
