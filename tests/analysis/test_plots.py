"""Plots are written (valid PNGs) only for the data a log has."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewsense.analysis.diagnose import diagnose
from reviewsense.analysis.plots import plot_comparison, plot_run
from reviewsense.analysis.trainer_state import load_trainer_state

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "trainer_states"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared fixtures not present")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load(prefix: str):
    state = load_trainer_state(next(FIXTURES.glob(f"{prefix}_*.json")))
    return state, diagnose(state)


def test_full_run_gets_all_four_plots(tmp_path):
    state, summary = load("06")
    names = [p.name for p in plot_run(state, summary, tmp_path)]
    assert names == ["loss.png", "eval.png", "learning_rate.png", "grad_norm.png"]
    assert all((tmp_path / n).read_bytes().startswith(PNG_MAGIC) for n in names)


def test_no_eval_no_grad_norm_skips_those_plots(tmp_path):
    state, summary = load("12")
    assert [p.name for p in plot_run(state, summary, tmp_path)] == ["loss.png", "learning_rate.png"]


def test_nan_grad_norm_still_plots(tmp_path):
    state, summary = load("14")
    assert (tmp_path / "grad_norm.png") in plot_run(state, summary, tmp_path)


def test_comparison_overlays(tmp_path):
    runs = [(p, *load(p)) for p in ("02", "05", "12")]
    names = [p.name for p in plot_comparison(runs, tmp_path)]
    assert names == ["compare_loss.png", "compare_eval.png", "compare_lr.png"]
