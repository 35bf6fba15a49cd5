"""Run a planned sweep, resumably: skip complete runs, resume an unfinished one, report at the end.

Re-running the same sweep into DIR skips complete runs (``DONE`` marker) and resumes an
unfinished one from its last checkpoint. A partial report is written after every run, so an
interrupted sweep already compares what finished.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewsense.config import RunConfig
from reviewsense.errors import ReviewsenseError
from reviewsense.logfile import log_to_file
from reviewsense.rundir import is_complete_run
from reviewsense.sweep.plan import (
    PlannedRun,
    SweepPlan,
    check_models_available,
    check_or_write_definition,
    plan_sweep,
)
from reviewsense.sweep.report import REPORT_MD, write_report
from reviewsense.sweep.spec import SweepError, SweepSpec

log = logging.getLogger(__name__)

SWEEP_LOG = "sweep.log"
LOCK_FILE = ".sweep.lock"

TrainFn = Callable[[RunConfig, Path, bool], Any]
DistillFn = Callable[[PlannedRun], Any]  # a distillation variant's run (started over if unfinished)


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _sweep_lock(out: Path) -> Iterator[None]:
    """A pid file: two sweeps writing into one folder would train the same runs twice."""
    path = out / LOCK_FILE
    if path.is_file():
        try:
            pid = int(path.read_text().strip())
        except ValueError:
            pid = -1
        if pid > 0 and pid != os.getpid() and _pid_alive(pid):
            raise SweepError(
                f"another sweep (pid {pid}) is running in {out}; wait for it "
                f"or stop it (a stale lock: delete {path})"
            )
    path.write_text(str(os.getpid()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _default_train_fn() -> TrainFn:
    from reviewsense.train import run_training

    def train(cfg: RunConfig, run_dir: Path, resume: bool) -> Any:
        return run_training(cfg, run_dir, resume=resume)

    return train


def _default_distill_fn() -> DistillFn:
    from reviewsense.distill_run import distill_run

    def distill(r: PlannedRun) -> Any:
        return distill_run(r.cfg, r.distill or {}, r.teacher_dir, r.run_dir)

    return distill


def _safe_report(plan: SweepPlan, curves: bool) -> dict | None:
    """Write the report; a reporting bug must not lose hours of finished training."""
    try:
        return write_report(plan, curves=curves)
    except Exception as e:
        log.warning(
            "sweep report failed (%s: %s); the runs are intact", type(e).__name__, e, exc_info=True
        )
        return None


def _train_one(train: TrainFn, r: PlannedRun, resume: bool) -> RunOutcome:
    """Train one run; a failure becomes a ``failed`` outcome (Ctrl-C propagates)."""
    t0 = time.perf_counter()
    try:
        train(r.cfg, r.run_dir, resume)
    except KeyboardInterrupt:
        log.warning("sweep interrupted in %s; re-run the same command to resume", r.label)
        raise
    except Exception as e:  # recorded, reported, re-raised by run_sweep
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        log.error("sweep %s failed: %s", r.label, msg, exc_info=not isinstance(e, ReviewsenseError))
        return RunOutcome(r.label, "failed", time.perf_counter() - t0, msg)
    dt = time.perf_counter() - t0
    if not is_complete_run(r.run_dir):
        # The trainer returned without the DONE marker: treat as failed, not done.
        msg = f"returned without writing {r.run_dir}/DONE"
        log.error("sweep %s: %s", r.label, msg)
        return RunOutcome(r.label, "failed", dt, msg)
    log.info("sweep %s: done in %.0f s", r.label, dt)
    return RunOutcome(r.label, "resumed" if resume else "trained", dt)


def _eta(plan: SweepPlan, i: int, durations: list[float]) -> str:
    if not durations:
        return ""
    left = sum(not is_complete_run(x.run_dir) for x in plan.runs[i - 1 :])
    return f", about {left * sum(durations) / len(durations) / 60:.0f} min left"


def _run_all(
    plan: SweepPlan, train: TrainFn, distill: DistillFn, keep_going: bool
) -> list[RunOutcome]:
    """Every planned run in order: skip complete ones, stop at the first failure unless asked."""
    n = len(plan.runs)
    outcomes: list[RunOutcome] = []
    durations: list[float] = []
    stop = False
    for i, r in enumerate(plan.runs, 1):
        if stop:
            outcomes.append(RunOutcome(r.label, "pending"))
            continue
        if is_complete_run(r.run_dir):
            log.info("sweep [%d/%d] %s: complete, skipped", i, n, r.label)
            outcomes.append(RunOutcome(r.label, "skipped"))
            continue
        resume = r.run_dir.exists()
        what = "resuming an unfinished run" if resume else "training"
        if r.distill is not None:
            what = f"distilling from {r.teacher_dir}"
        log.info("sweep [%d/%d] %s: %s%s", i, n, r.label, what, _eta(plan, i, durations))
        fn = train if r.distill is None else (lambda *_, r=r: distill(r))
        outcome = _train_one(fn, r, resume)
        outcomes.append(outcome)
        if outcome.status == "failed":
            stop = not keep_going
            continue
        durations.append(outcome.seconds)
        _safe_report(plan, curves=False)  # a partial report after every run
    return outcomes


def run_sweep(
    spec: SweepSpec,
    output_dir: str | Path,
    *,
    train_fn: TrainFn | None = None,
    distill_fn: DistillFn | None = None,
    keep_going: bool = False,
    curves: bool = True,
) -> SweepResult:
    """Run every (variant, seed) not finished yet, then write the comparison report.

    Args:
        spec: the sweep.
        output_dir: the sweep folder ``DIR``.
        train_fn: ``(cfg, run_dir, resume) -> Any``; default
            :func:`reviewsense.train.run_training`. Injected by tests.
        distill_fn: ``(planned run) -> Any`` for distillation variants; default
            :func:`reviewsense.distill_run.distill_run`.
        keep_going: continue with the next run when one fails (default: stop at the first
            failure — it is usually systematic, e.g. missing data).
        curves: overlay training curves into ``DIR/curves`` at the end.

    Raises:
        ConfigError: an invalid variant (before any run starts).
        SweepError: DIR holds another sweep, or a run failed (after the report is written).
    """
    plan = plan_sweep(spec, output_dir)  # validates every variant before touching the disk
    check_models_available(plan)
    check_or_write_definition(plan)
    out = plan.output_dir
    with log_to_file(out / SWEEP_LOG):
        with _sweep_lock(out):
            done = sum(is_complete_run(r.run_dir) for r in plan.runs)
            log.info(
                "sweep %s: %d runs (%d variants × %d seeds), %d finished, %d to run → %s",
                spec.name, len(plan.runs), len(spec.variants), len(plan.seeds), done,
                len(plan.runs) - done, out,
            )  # fmt: skip
            train = train_fn or _default_train_fn()
            outcomes = _run_all(plan, train, distill_fn or _default_distill_fn(), keep_going)
        summary = _safe_report(plan, curves=curves)
        result = SweepResult(out, outcomes, summary)
        if result.failed:
            first = result.failed[0]
            raise SweepError(
                f"{len(result.failed)} of {len(plan.runs)} runs failed, first {first.label}: "
                f"{first.error} (see {out / first.label / 'train.log'}; re-run the same command "
                "to resume)"
            )
        log.info(
            "sweep %s: %d trained, %d skipped; report: %s",
            spec.name, result.n_trained, result.n_skipped, out / REPORT_MD,
        )  # fmt: skip
        return result
