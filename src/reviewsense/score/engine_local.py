"""The local engine: one Predictor in this process scores the blocks one after another."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from reviewsense.score.blocks import BlockResult, BlockSpec, score_block

log = logging.getLogger(__name__)


def run_local(pending: list[BlockSpec], config, on_block: Callable[[BlockResult], None]) -> None:
    """Score ``pending`` blocks in order with one Predictor (``config``: a ScoreConfig)."""
    from reviewsense.inference.predictor import Predictor
    from reviewsense.runtime import resolve_threads, tune_allocator

    tune_allocator()  # a batch job: keep freed activations for the next batch
    kwargs = config.predictor_kwargs()
    kwargs["num_threads"] = resolve_threads(kwargs["num_threads"])
    predictor = Predictor.from_pretrained(config.model, **kwargs)
    for spec in pending:
        on_block(score_block(spec, predictor, Path(config.output), config.keep_columns))
