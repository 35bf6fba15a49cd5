"""The noise-aware selection rule on synthetic validation predictions."""

from __future__ import annotations

import numpy as np
import pytest

from reviewsense.errors import DataError
from reviewsense.selection import is_significantly_better, paired_difference, select_epoch

N = 1000


def _labels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, N)


def _probs(labels: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """P(positive) that is right on every review except the indices in ``wrong``."""
    correct = np.where(labels == 1, 0.9, 0.1)
    out = correct.copy()
    out[wrong] = 1.0 - correct[wrong]
    return out


def test_inside_band_keeps_last_epoch():
    y = _labels()
    # Last: wrong on 0..119 (88.0%); epoch 1: wrong on 40 of those plus 70 others (89.0%):
    # 1 pt better but 80 + 70 discordant reviews -> band about ±2.5 pt.
    last = _probs(y, np.arange(120))
    first = _probs(y, np.r_[np.arange(40), np.arange(500, 570)])
    out = select_epoch(y, [first, last])
    assert out["index"] == 1 and out["last_index"] == 1 and out["epoch_index"] == 2
    assert out["accuracy_by_eval"] == pytest.approx([0.89, 0.88])
    assert out["difference"] == pytest.approx(0.01)
    assert 0.02 < out["noise_band"] < 0.03
    assert out["reason"].startswith("last epoch kept: epoch 1 better by 1.0 pt, inside the ±2.")


def test_outside_band_picks_earlier_epoch_the_best_of_those_that_clear():
    y = _labels(1)
    last = _probs(y, np.arange(150))  # 85.0%
    e1 = _probs(y, np.arange(100))  # 90.0%: 50 discordant, all for e1
    e2 = _probs(y, np.arange(80))  # 92.0%: 70 discordant, all for e2
    out = select_epoch(y, [e1, e2, last])
    assert out["index"] == 1 and out["epoch_index"] == 2
    assert out["difference"] == pytest.approx(0.07)
    assert out["difference"] > out["noise_band"]
    assert out["reason"].startswith("epoch 2 chosen over the last (epoch 3): better by 7.0 pt")
    assert out["method"].startswith("paired difference")


def test_ties_keep_last_and_equal_earlier_ties_go_to_later():
    y = _labels(2)
    same = _probs(y, np.arange(100))
    out = select_epoch(y, [same, same.copy(), same.copy()])
    assert out["index"] == 2 and out["difference"] == 0.0
    assert "as accurate as" in out["reason"]
    # Two earlier evals, both clearly better and equally accurate: the later one wins.
    last = _probs(y, np.arange(200))
    out = select_epoch(y, [same, same.copy(), last])
    assert out["index"] == 1


def test_single_evaluation_is_kept():
    y = _labels(3)
    out = select_epoch(y, [_probs(y, np.arange(10))], epochs=[3])
    assert out["index"] == 0 and out["epoch_index"] == 3 and out["noise_band"] == 0.0
    assert out["reason"] == "last epoch kept: it is the only evaluation"


def test_few_discordant_reviews_are_not_enough():
    # 5 vs 0 discordant: exact McNemar p = 0.0625 -> not significant at 95% (continuity).
    y = _labels(4)
    last = _probs(y, np.arange(5))
    best = _probs(y, np.array([], dtype=int))
    assert not is_significantly_better(y, best, last)
    # 12 vs 0: exact McNemar p ~ 0.0005 -> significant.
    assert is_significantly_better(y, best, _probs(y, np.arange(12)))
    assert not is_significantly_better(y, _probs(y, np.arange(12)), best)


def test_band_matches_the_paired_normal_interval():
    y = _labels(5)
    # 40 discordant reviews split evenly on 500: sd = sqrt(40)/500, band = 1.96 sd + 1/500.
    y = y[:500]
    a = _probs(y, np.arange(20))
    b = _probs(y, np.arange(20, 40))
    out = paired_difference(y, a, b)
    assert out["discordant"] == (20, 20) and out["difference"] == 0.0
    assert out["noise_band"] == pytest.approx(1.959964 * np.sqrt(40) / 500 + 1 / 500, rel=1e-6)


def test_false_switch_rate_on_null_data_is_at_most_nominal():
    # Two evaluations that are equally good on every draw: the earlier one should replace
    # the last in at most ~2.5% (one-sided 95%) of simulated validation sets.
    rng = np.random.default_rng(7)
    switches = 0
    for _ in range(400):
        y = rng.integers(0, 2, 500)
        wrong_a = rng.random(500) < 0.12
        wrong_b = rng.random(500) < 0.12
        a = np.where(wrong_a, 1 - y, y) * 0.8 + 0.1
        b = np.where(wrong_b, 1 - y, y) * 0.8 + 0.1
        switches += select_epoch(y, [a, b])["index"] == 0
    assert switches / 400 < 0.05


@pytest.mark.parametrize(
    ("labels", "evals", "match"),
    [
        ([0, 1, 2], [[0.1, 0.9, 0.5]], "label at position 2"),
        ([], [[]], "non-empty"),
        ([0, 1], [], "no evaluations"),
        ([0, 1], [[0.1, 0.9], [0.1]], r"evaluation 1 has shape \(1,\)"),
        ([0, 1], [[0.1, float("nan")]], "outside"),
    ],
)
def test_invalid_inputs_raise_clear_errors(labels, evals, match):
    with pytest.raises(DataError, match=match):
        select_epoch(labels, evals)


def test_invalid_confidence_and_epochs():
    with pytest.raises(DataError, match="confidence"):
        select_epoch([0, 1], [[0.1, 0.9]], confidence=95)
    with pytest.raises(DataError, match="epoch numbers"):
        select_epoch([0, 1], [[0.1, 0.9]], epochs=[1, 2])
