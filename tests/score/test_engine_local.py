"""The local engine: one Predictor, blocks in plan order, every block written."""

from __future__ import annotations

import os

import pandas as pd

from reviewsense.score.blocks import plan_blocks
from reviewsense.score.engine_local import run_local
from reviewsense.score.run import ScoreConfig


def test_blocks_scored_in_plan_order(score_model, parquet_input, tmp_path):
    plan = plan_blocks([parquet_input], parquet_input.parent, 16, keep_columns=("id",))
    out = tmp_path / "out"
    out.mkdir()
    cfg = ScoreConfig(
        model=str(score_model), input=str(parquet_input), output=out, keep_columns=("id",)
    )
    seen = []
    run_local(plan, cfg, seen.append)
    assert [r.name for r in seen] == [b.name for b in plan]
    assert [r.rows for r in seen] == [16, 16, 16, 2]
    df = pd.read_parquet(out)
    assert df["id"].tolist() == list(range(100, 150))
    assert df["error"].notna().sum() == 2


def test_threads_default_to_reviewsense_num_threads(score_model, parquet_input, tmp_path):
    import psutil
    import torch

    from reviewsense.settings import get_settings

    before = torch.get_num_threads()
    wanted = (psutil.cpu_count(logical=False) or 1) + 1  # not what the cores give
    plan = plan_blocks([parquet_input], parquet_input.parent, 64, keep_columns=())
    cfg = ScoreConfig(model=str(score_model), input=str(parquet_input), output=tmp_path / "out")
    (tmp_path / "out").mkdir()
    try:
        os.environ["REVIEWSENSE_NUM_THREADS"] = str(wanted)
        get_settings.cache_clear()
        run_local(plan, cfg, lambda _: None)
        assert torch.get_num_threads() == wanted
    finally:
        os.environ.pop("REVIEWSENSE_NUM_THREADS")
        get_settings.cache_clear()
        torch.set_num_threads(before)
