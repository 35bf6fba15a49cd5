"""Plan, resume and run a scoring job on the chosen engine; count rows, errors and time."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reviewsense import rundir
from reviewsense.errors import ConfigError
from reviewsense.jsonio import write_json
from reviewsense.score.blocks import (
    BlockResult,
    BlockSpec,
    done_blocks,
    plan_blocks,
    remove_partial,
    resolve_inputs,
)

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
MANIFEST = "_manifest.json"  # what the output folder was planned for (checked on resume)
DEFAULT_BLOCK_ROWS = 4096  # rows per output file: resume and progress granularity


@dataclass(frozen=True)
class ScoreConfig:
    """Everything `reviewsense score` needs (validated by :meth:`check`)."""

    model: str
    input: str
    output: Path
    engine: str = "local"
    address: str | None = None  # Ray: None = start a local runtime; "auto" / "ray://host:port"
    text_column: str | None = None
    keep_columns: tuple[str, ...] = ()
    batch_size: int = 32  # texts per forward pass
    block_rows: int = DEFAULT_BLOCK_ROWS
    actors: int | None = None  # Ray: Predictor actors (None: CPUs / threads_per_actor)
    threads_per_actor: int | None = None  # intra-op threads of each Predictor
    backend: str = "auto"
    precision: str = "auto"

    def check(self) -> None:
        """Raises ConfigError naming the flag."""
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.address and self.engine != "ray":
            raise ConfigError("--address is for --engine ray")
        for flag, value in (
            ("--batch-size", self.batch_size),
            ("--block-rows", self.block_rows),
            ("--actors", self.actors),
            ("--threads-per-actor", self.threads_per_actor),
        ):
            if value is not None and value < 1:
                raise ConfigError(f"{flag} must be at least 1, got {value}")
        if self.actors is not None and self.engine != "ray":
            raise ConfigError("--actors is for --engine ray (the local engine has one Predictor)")

    def predictor_kwargs(self) -> dict:
        """Keyword arguments of ``Predictor.from_pretrained`` (one home for both engines)."""
        return {
            "backend": self.backend,
            "precision": self.precision,
            "batch_size": self.batch_size,
            "num_threads": self.threads_per_actor,
        }


@dataclass
class ScoreSummary:
    rows: int = 0  # rows written this run (scored + errors)
    errors: Counter = field(default_factory=Counter)  # reason -> rows not scored
    blocks: int = 0  # blocks written this run
    skipped_blocks: int = 0  # already written by an earlier run (resume)
    seconds: float = 0.0  # wall time of this run's scoring, model loading included

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def add(self, result: BlockResult) -> None:
        self.rows += result.rows
        self.errors.update(result.errors)
        self.blocks += 1


def _check_manifest(out: Path, manifest: dict, ignore: tuple[str, ...] = ()) -> None:
    """Refuse to mix blocks of a different plan into one output folder.

    ``ignore``: keys that do not change the plan this time (not compared).
    """
    path = out / MANIFEST
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [k for k in manifest if k not in ignore and old.get(k) != manifest[k]]
        if diff:
            raise ConfigError(
                f"{out} holds scores of a different job ({', '.join(diff)} differ); "
                "use another --output, or the same input and flags to resume"
            )
    else:
        write_json(path, manifest)


def prepare(config: ScoreConfig) -> tuple[list[BlockSpec], int]:
    """(blocks still to score, blocks already done); creates the output folder."""
    config.check()
    model_dir = rundir.resolve_model_dir(config.model)  # fail before any work, on this process
    files, root = resolve_inputs(config.input)
    blocks = plan_blocks(files, root, config.block_rows, config.text_column, config.keep_columns)
    out = Path(config.output)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output {out} is a file; give a folder for the Parquet blocks")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "inputs": [str(f.resolve()) for f in files],
        "block_rows": config.block_rows,
        "text_column": config.text_column,
        "keep_columns": list(config.keep_columns),
        "model": str(model_dir.resolve()),
    }
    # --block-rows cuts Parquet files only (plan_blocks): without one, any value gives this plan.
    cuts = any(b.fmt == "parquet" for b in blocks)
    _check_manifest(out, manifest, ignore=() if cuts else ("block_rows",))
    if n := remove_partial(out):
        log.info("removed %d half-written block(s) of an interrupted run", n)
    done = done_blocks(out)
    pending = [b for b in blocks if b.name not in done]
    return pending, len(blocks) - len(pending)


def score(
    config: ScoreConfig,
    on_block: Callable[[BlockResult], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> ScoreSummary:
    """Score ``config.input`` into ``config.output``, skipping blocks already written.

    Args:
        on_block: called on this process after each block is written (progress).
        on_start: called with (blocks to score, blocks already done) before scoring.

    Raises:
        DataError / ConfigError / ModelError: one line naming the file, flag or model.
    """
    pending, skipped = prepare(config)
    if on_start:
        on_start(len(pending), skipped)
    summary = ScoreSummary(skipped_blocks=skipped)

    def done(result: BlockResult) -> None:
        summary.add(result)
        if on_block:
            on_block(result)

    t0 = time.perf_counter()
    if pending:
        if config.engine == "ray":
            from reviewsense.score.engine_ray import run_ray

            run_ray(pending, config, done)
        else:
            from reviewsense.score.engine_local import run_local

            run_local(pending, config, done)
    summary.seconds = time.perf_counter() - t0
    return summary
