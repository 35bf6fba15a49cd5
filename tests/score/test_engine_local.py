"""The local engine: one Predictor, blocks in plan order, every block written."""

from __future__ import annotations

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
