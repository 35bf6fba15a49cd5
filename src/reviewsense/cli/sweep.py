"""`reviewsense sweep`: run variants × seeds into one folder and compare them with real statistics."""

from __future__ import annotations

import argparse
import logging
import sys

HELP = "run a grid of training variants over several seeds and compare them with statistics"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--config",
        metavar="FILE",
        help="sweep file (configs/sweeps/*.yaml), or the name of a shipped one (seed_debugging)",
    )
    src.add_argument(
        "--preset", metavar="P", help="base preset (or run-config YAML) for a --grid sweep"
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a grid axis (repeatable; the product is swept); needs --preset",
    )
    p.add_argument(
        "--seeds",
        metavar="N|S1,S2",
        help="N seeds (base seed + 0..N-1) or a list of seeds (default: the file's, else 1)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for every variant (repeatable), e.g. --set train_size=500",
    )
    p.add_argument("--baseline", metavar="NAME", help="variant to compare with (default: first)")
    p.add_argument("--name", help="sweep name (default: the file's name, or 'sweep')")
    p.add_argument(
        "--output",
        metavar="DIR",
        help="sweep folder (default: <runs dir>/sweeps/<name>); re-run to resume",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate every variant and list the runs; train none",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="only (re)write the report from the runs finished so far (safe while a sweep runs)",
    )
    p.add_argument(
        "--keep-going", action="store_true", help="continue with the next run when one fails"
    )
    p.add_argument("--no-curves", action="store_true", help="skip the overlay curves")


# flags that define or run a sweep: meaningless when --report-only reads the stored definition
_DEFINING_FLAGS = {
    "name": "--name",
    "set": "--set",
    "seeds": "--seeds",
    "baseline": "--baseline",
    "grid": "--grid",
    "dry_run": "--dry-run",
    "keep_going": "--keep-going",
}


def _check_report_only_flags(args: argparse.Namespace) -> None:
    """``--report-only --output DIR`` alone reports the sweep stored in DIR: refuse the flags
    it would ignore, naming them."""
    from reviewsense.errors import ConfigError
    from reviewsense.sweep import SWEEP_YAML

    given = [flag for dest, flag in _DEFINING_FLAGS.items() if getattr(args, dest)]
    if given:
        raise ConfigError(
            f"--report-only --output DIR reports the sweep stored in DIR and ignores "
            f"{', '.join(given)}: drop them (its stored {SWEEP_YAML} defines the sweep)"
        )


def _spec(args: argparse.Namespace):
    from reviewsense import config as config_mod
    from reviewsense import sweep
    from reviewsense.cli._common import parse_set
    from reviewsense.errors import ConfigError

    if args.config:
        if args.grid:
            raise ConfigError("--grid goes with --preset; a sweep file lists its own variants")
        spec = sweep.load_sweep_file(args.config)
    elif args.preset:
        base, source = sweep.load_base(args.preset, None, None)
        grid = sweep.parse_grid_args(args.grid) if args.grid else None
        spec = sweep.SweepSpec(
            name=args.name or "sweep",
            base=base,
            base_source=source,
            variants=sweep.expand_grid(grid) if grid else [sweep.Variant("baseline", {})],
            grid=grid,
        )
    else:
        raise ConfigError(
            "give --config FILE (a sweep file) or --preset P [--grid KEY=V1,V2 ...] "
            f"(presets: {', '.join(config_mod.list_presets())})"
        )
    if args.name:
        spec.name = args.name
    if args.set:
        spec.set = {**spec.set, **parse_set(args.set)}
    if args.seeds is not None:
        spec.seeds = sweep.parse_seeds(args.seeds)
    if args.baseline:
        spec.baseline = args.baseline
    return spec


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reviewsense import sweep
    from reviewsense.settings import get_settings

    if args.report_only and args.output and not (args.config or args.preset):
        _check_report_only_flags(args)
        plan = sweep.load_plan(args.output)
        summary = sweep.write_report(plan, curves=not args.no_curves)
        sys.stdout.write(
            f"{summary['complete_runs']}/{summary['total_runs']} runs complete; "
            f"report: {Path(args.output) / sweep.REPORT_MD}\n"
        )
        return 0
    spec = _spec(args)
    out = Path(args.output) if args.output else get_settings().runs_dir / "sweeps" / spec.name
    plan = sweep.plan_sweep(spec, out)  # every variant validated here, before anything runs
    sweep.check_models_available(plan)
    if args.dry_run:
        for r in plan.runs:
            done = "done" if sweep.is_complete_run(r.run_dir) else "todo"
            sys.stdout.write(f"{done}  {r.run_dir}\n")
        sys.stdout.write(f"{len(plan.runs)} runs, all variants valid\n")
        return 0
    if args.report_only:
        sweep.check_or_write_definition(plan)
        summary = sweep.write_report(plan, curves=not args.no_curves)
        sys.stdout.write(
            f"{summary['complete_runs']}/{summary['total_runs']} runs complete; "
            f"report: {out / sweep.REPORT_MD}\n"
        )
        return 0
    result = sweep.run_sweep(spec, out, keep_going=args.keep_going, curves=not args.no_curves)
    if result.summary:
        for e in result.summary["variants"].values():
            sys.stdout.write(e["verdict"] + "\n")
    sys.stdout.write(f"report: {out / sweep.REPORT_MD}\n")
    return 0
