"""The Ray engine on a real local Ray runtime (started once for this module, 2 CPUs)."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from reviewsense.errors import ConfigError, DataError
from reviewsense.score.engine_ray import INSTALL_HINT
from reviewsense.score.run import ScoreConfig, score

from .conftest import reviews_frame


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip(
        "ray", reason="Ray is the 'scale' extra: pip install -e '.[dev,scale]'"
    )
    ray.init(num_cpus=2, object_store_memory=200 << 20, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture
def mixed_input(tmp_path):
    """A Parquet file (50 rows) and a JSONL file with a bad line, matched by one glob."""
    d = tmp_path / "in"
    d.mkdir()
    reviews_frame(50).to_parquet(d / "a.parquet", row_group_size=16)
    frame = reviews_frame(12)
    frame["text"] = frame["text"].astype(object).where(frame["text"].notna(), None)
    lines = [r.to_json() for _, r in frame.iterrows()]
    lines[5] = "{broken"
    (d / "b.jsonl").write_text("\n".join(lines) + "\n")
    return str(d / "*")


def _config(model, src, out, engine, **kw) -> ScoreConfig:
    return ScoreConfig(
        model=str(model),
        input=src,
        output=out,
        engine=engine,
        keep_columns=("id", "stars"),
        block_rows=20,
        precision="fp32",
        threads_per_actor=1,
        **kw,
    )


def test_ray_and_local_write_identical_outputs(ray_runtime, score_model, mixed_input, tmp_path):
    local = score(_config(score_model, mixed_input, tmp_path / "local", "local"))
    remote = score(_config(score_model, mixed_input, tmp_path / "ray", "ray", actors=2))
    assert (remote.rows, remote.blocks) == (local.rows, local.blocks) == (62, 4)
    assert (
        remote.errors
        == local.errors
        == {
            "empty text": 2,
            "missing text": 2,
            "invalid json": 1,
        }
    )
    names = sorted(p.name for p in (tmp_path / "local").glob("part-*.parquet"))
    assert names == sorted(p.name for p in (tmp_path / "ray").glob("part-*.parquet"))
    a, b = pd.read_parquet(tmp_path / "local"), pd.read_parquet(tmp_path / "ray")
    pd.testing.assert_frame_equal(a, b)
    assert a["row_id"].iloc[-1] == "b.jsonl:11" and a["error"].iloc[50 + 5] == "invalid json"

    again = score(_config(score_model, mixed_input, tmp_path / "ray", "ray", actors=2))
    assert (again.rows, again.skipped_blocks) == (0, 4)  # resume on Ray too


def test_actor_errors_come_back_as_one_line(ray_runtime, score_model, tmp_path):
    src = tmp_path / "r.csv"
    pd.DataFrame({"text": ["fine film", "dull"]}).to_csv(src, index=False)
    with pytest.raises(DataError) as info:
        score(_config(score_model, str(src), tmp_path / "out", "ray"))
    message = str(info.value)
    assert message == f"{src}: no column 'id' for --keep-columns (columns found: text)"


def test_without_ray_the_error_says_how_to_install(
    score_model, parquet_input, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError) as info:
        score(_config(score_model, str(parquet_input), tmp_path / "out", "ray"))
    assert str(info.value) == INSTALL_HINT and "pip install 'reviewsense[scale]'" in INSTALL_HINT
