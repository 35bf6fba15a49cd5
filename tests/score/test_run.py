"""Planning, resume (finished blocks skipped, half-written ones redone) and flag checks."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from reviewsense.errors import ConfigError
from reviewsense.score.run import MANIFEST, ScoreConfig, score

from .conftest import reviews_frame


def _config(model, src, out, **kw) -> ScoreConfig:
    kw = {"block_rows": 20, "precision": "fp32", "threads_per_actor": 1} | kw
    return ScoreConfig(model=str(model), input=str(src), output=out, **kw)


def test_resume_skips_finished_blocks_and_redoes_partial_ones(score_model, parquet_input, tmp_path):
    out = tmp_path / "out"
    first = score(_config(score_model, parquet_input, out))
    assert (first.rows, first.blocks, first.skipped_blocks, first.n_errors) == (50, 3, 0, 2)
    before = pd.read_parquet(out)
    finished = out / "part-00000-0000000000.parquet"
    mtime = finished.stat().st_mtime_ns
    (out / "part-00000-0000000020.parquet").unlink()  # as if the run died while writing it
    (out / ".part-00000-0000000020.parquet.999.tmp").write_bytes(b"half a block")

    done = []
    second = score(_config(score_model, parquet_input, out), on_block=lambda r: done.append(r.name))
    assert done == ["part-00000-0000000020.parquet"]
    assert (second.rows, second.blocks, second.skipped_blocks) == (20, 1, 2)
    assert finished.stat().st_mtime_ns == mtime  # not rewritten
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    pd.testing.assert_frame_equal(pd.read_parquet(out), before)

    third = score(_config(score_model, parquet_input, out))
    assert (third.rows, third.blocks, third.skipped_blocks) == (0, 0, 3)


def test_output_of_another_job_is_refused(score_model, parquet_input, tmp_path):
    out = tmp_path / "out"
    score(_config(score_model, parquet_input, out, block_rows=25))
    assert (out / MANIFEST).is_file()
    with pytest.raises(ConfigError, match=r"different job \(block_rows differ\)"):
        score(_config(score_model, parquet_input, out, block_rows=20))


def test_block_rows_does_not_block_resuming_a_non_parquet_job(score_model, tmp_path):
    src = tmp_path / "in" / "reviews.csv"
    src.parent.mkdir()
    reviews_frame(30).to_csv(src, index=False)
    out = tmp_path / "out"
    first = score(_config(score_model, src, out, block_rows=20))
    assert (first.rows, first.blocks) == (30, 1)
    again = score(_config(score_model, src, out, block_rows=7))  # one block whatever N
    assert (again.rows, again.blocks, again.skipped_blocks) == (0, 0, 1)
    with pytest.raises(ConfigError, match=r"different job \(text_column differ\)"):
        score(_config(score_model, src, out, block_rows=7, text_column="stars"))


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"engine": "spark"}, "--engine must be one of local, ray"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"actors": 2}, "--actors is for --engine ray"),
        ({"address": "auto"}, "--address is for --engine ray"),
    ],
)
def test_flags_are_checked_before_work(parquet_input, tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        score(_config("unused", parquet_input, tmp_path / "out", **kw))
    assert not (tmp_path / "out").exists()
