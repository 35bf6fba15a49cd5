"""evaluate_model on a tiny model folder; length buckets and confident mistakes by hand."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from reviewsense import config, rundir
from reviewsense.config import DataConfig, RunConfig
from reviewsense.evaluate import (
    N_MISTAKES,
    confident_mistakes,
    default_data_config,
    eval_data_config,
    evaluate_model,
    length_buckets,
)
from reviewsense.metrics import METRIC_KEYS, predicted_labels


# -- length_buckets --------------------------------------------------------------------------
def words(n: int) -> str:
    return " ".join(["w"] * n)


def test_length_buckets_by_hand():
    texts = [words(n) for n in (5, 99, 100, 150, 199, 200, 450, 799, 800, 2000)]
    labels = [1, 0, 1, 1, 0, 0, 1, 1, 0, 1]
    preds = [1, 1, 1, 0, 0, 0, 0, 1, 0, 0]
    rows = length_buckets(texts, labels, preds)
    assert [r["words"] for r in rows] == ["0-99", "100-199", "200-399", "400-799", "800+"]
    assert [r["n"] for r in rows] == [2, 3, 1, 2, 2]
    assert [r["accuracy"] for r in rows] == [0.5, pytest.approx(2 / 3), 1.0, 0.5, 0.5]
    assert sum(r["n"] for r in rows) == len(texts)


def test_length_buckets_empty_bucket_is_none():
    rows = length_buckets([words(3), "  padded   text  "], [0, 1], np.array([0, 0]))
    assert rows[0] == {"words": "0-99", "n": 2, "accuracy": 0.5}
    assert all(r["n"] == 0 and r["accuracy"] is None for r in rows[1:])
    assert all(r["accuracy"] is None for r in length_buckets([], [], []))


# -- confident_mistakes ----------------------------------------------------------------------
IDS = ["a", "b", "c", "d", "e", "f"]
TEXTS = ["ta", "tb", "tc", "td", "x" * 301, "tf"]
LABELS = [1, 0, 1, 0, 1, 0]
PROBS = [0.1, 0.95, 0.6, 0.2, 0.45, 0.5]
# wrong: a (conf 0.9), b (0.95), e (0.55); f (0.5) is right: P(negative) = 0.5 reaches the
# flag rule's threshold (metrics.is_flagged), so it is predicted negative


def test_confident_mistakes_sorted_and_wrong():
    out = confident_mistakes(IDS, TEXTS, LABELS, PROBS)
    assert [r["row_id"] for r in out] == ["b", "a", "e"]
    assert [r["confidence"] for r in out] == pytest.approx([0.95, 0.9, 0.55])
    for r in out:
        i = IDS.index(r["row_id"])
        assert r["label"] == LABELS[i] and r["prob_positive"] == pytest.approx(PROBS[i])
        assert predicted_labels([r["prob_positive"]])[0] != r["label"]
    assert out[0]["text"] == "tb"
    assert out[-1]["text"] == "x" * 300 + "…"


def test_confident_mistakes_k_and_types():
    out = confident_mistakes(np.arange(6), TEXTS, np.array(LABELS), np.array(PROBS), k=2)
    assert [r["row_id"] for r in out] == ["1", "0"]
    assert type(out[0]["label"]) is int and type(out[0]["prob_positive"]) is float


def test_confident_mistakes_none_when_all_right():
    assert confident_mistakes(["a", "b"], ["x", "y"], [0, 1], [0.2, 0.8]) == []


def test_confident_mistakes_ties_keep_input_order():
    out = confident_mistakes(list("abcd"), list("abcd"), [0, 0, 0, 0], [0.7, 0.9, 0.7, 0.9])
    assert [r["row_id"] for r in out] == ["b", "d", "a", "c"]


# -- default_data_config ---------------------------------------------------------------------
def test_default_data_config(tmp_path):
    assert default_data_config(tmp_path) == DataConfig()
    cfg = RunConfig().override(
        {"dataset": "files", "test_file": "t.csv", "max_length": 64, "truncation": "head"}
    )
    config.save(cfg, tmp_path / rundir.CONFIG_YAML)
    d = default_data_config(tmp_path)
    assert (d.dataset, d.test_file, d.max_length) == ("files", "t.csv", 64)


# -- eval_data_config: the command line over the run's data ---------------------------------
@pytest.fixture
def files_run(tmp_path):
    """A run directory whose config.yaml trained on files (train + test file, 2 columns)."""
    cfg = RunConfig().override(
        {
            "dataset": "files",
            "train_file": "train.csv",
            "test_file": "own_test.csv",
            "text_column": "review",
            "test_size": 50,
        }
    )
    config.save(cfg, tmp_path / rundir.CONFIG_YAML)
    return tmp_path


def test_a_given_data_dir_replaces_the_runs_files(files_run, tmp_path, caplog):
    from reviewsense.data import resolve_dataset

    with caplog.at_level(logging.INFO, logger="reviewsense.evaluate"):
        d = eval_data_config(files_run, {"data_dir": "/data/imdb", "test_file": None})
    assert (d.dataset, d.data_dir, d.train_file, d.test_file) == ("imdb", "/data/imdb", None, None)
    assert resolve_dataset(d, for_eval=True) == "imdb"  # not the run's files any more
    assert (d.text_column, d.test_size) == ("review", 50)  # how data is read: still the run's
    assert "data dir /data/imdb from the command line (instead of test file own_test.csv)" in (
        caplog.text
    )


def test_a_given_test_file_replaces_the_runs_files(files_run):
    d = eval_data_config(files_run, {"test_file": "other.csv", "text_column": "body"})
    assert (d.dataset, d.train_file, d.test_file) == ("imdb", None, "other.csv")
    assert d.text_column == "body"
    # no source given: the run's own data
    own = eval_data_config(files_run, {"test_file": None, "data_dir": None})
    assert (own.dataset, own.train_file, own.test_file) == ("files", "train.csv", "own_test.csv")


def test_seed_without_a_test_subset_is_refused(files_run, tmp_path):
    from reviewsense.errors import ConfigError

    # the run's test_size (50) is a subset: --seed picks it
    assert eval_data_config(files_run, {"split_seed": 3}).split_seed == 3
    assert eval_data_config(files_run, {"split_seed": 3, "test_size": "10"}).test_size == 10
    with pytest.raises(ConfigError, match="--seed draws the --test-size subset") as e:
        eval_data_config(files_run, {"split_seed": 3, "test_size": "none"})
    assert "add --test-size N, or drop --seed" in str(e.value)
    with pytest.raises(ConfigError, match="--seed"):
        eval_data_config(tmp_path / "no-run", {"split_seed": 3})  # defaults: the whole split


# -- evaluate_model on a tiny model ----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tiny_bert, tmp_path_factory):
    """A copy of the tiny BERT with reviewsense settings (the session fixture stays as is)."""
    d = tmp_path_factory.mktemp("eval") / "run" / rundir.MODEL_DIR
    shutil.copytree(tiny_bert, d)
    rundir.write_model_settings(
        d, rundir.ModelSettings(max_length=32, truncation="head", base_model="tiny")
    )
    return d


@pytest.fixture(scope="module")
def report(tiny_model, review_files):
    data = DataConfig(dataset="files", test_file=str(review_files["test"]))
    return evaluate_model(tiny_model, data, batch_size=16)


def test_report_structure(report, tiny_model, review_files):
    assert set(report) >= {
        "model",
        "model_settings",
        "data",
        "metrics",
        "by_length",
        "confident_mistakes",
        "truncated_share",
        "throughput",
    }
    assert report["model"] == str(tiny_model)
    assert report["data"]["n"] == 64 and report["data"]["skipped"] == 0
    assert str(review_files["test"]) in report["data"]["source"]
    m = report["metrics"]
    assert set(METRIC_KEYS) <= set(m)
    assert m["n"] == 64
    assert sum(map(sum, m["confusion_matrix"])) == 64
    # 32 positive, 32 negative in the test file
    assert sum(m["confusion_matrix"][1]) == 32
    assert 0.0 <= m["accuracy"] <= 1.0
    lo, hi = m["accuracy_ci95"]
    assert lo <= m["accuracy"] <= hi
    assert report["model_settings"]["max_length"] == 32
    assert report["model_settings"]["truncation"] == "head"
    assert report["throughput"]["seconds"] > 0
    json.dumps(report)  # JSON-serialisable as is


def test_report_by_length(report):
    rows = report["by_length"]
    assert sum(r["n"] for r in rows) == report["data"]["n"]
    # make_reviews writes 10-45 words: all in the first bucket
    assert rows[0]["n"] == 64
    assert rows[0]["accuracy"] == pytest.approx(report["metrics"]["accuracy"])


def test_report_confident_mistakes(report, review_files):
    mk = report["confident_mistakes"]
    tn, fp = report["metrics"]["confusion_matrix"][0]
    fn, tp = report["metrics"]["confusion_matrix"][1]
    assert fp + fn > 0  # a random model makes mistakes: the checks below are not vacuous
    assert len(mk) == min(N_MISTAKES, fp + fn)
    conf = [r["confidence"] for r in mk]
    assert conf == sorted(conf, reverse=True)
    rows = [json.loads(line) for line in review_files["test"].read_text().splitlines()]
    for r in mk:
        assert (r["prob_positive"] >= 0.5) != bool(r["label"])  # actually wrong
        assert r["confidence"] == pytest.approx(max(r["prob_positive"], 1 - r["prob_positive"]))
        # row ids point at the right row of the file (1-based)
        name, _, num = r["row_id"].rpartition(":")
        assert name == "test.jsonl"
        src = rows[int(num) - 1]
        assert src["text"] == r["text"]
        assert ["neg", "pos"][r["label"]] == src["label"]


def test_truncation_override_and_run_dir(report, tiny_model, review_files):
    data = DataConfig(dataset="files", test_file=str(review_files["test"]))
    # the run directory resolves to its model/ folder; max_length 32 truncates some reviews
    r = evaluate_model(tiny_model.parent, data, batch_size=64, truncation="head")
    assert r["model"] == str(tiny_model)
    assert r["metrics"]["n"] == 64
    assert 0.0 < r["truncated_share"] < 1.0
    assert r["truncated_share"] == report["truncated_share"]
    assert r["metrics"]["confusion_matrix"] == report["metrics"]["confusion_matrix"]


def test_missing_model_is_a_model_error(tmp_path, review_files):
    from reviewsense.errors import ModelError

    with pytest.raises(ModelError, match="does not exist"):
        evaluate_model(tmp_path / "nope", DataConfig(test_file=str(review_files["test"])))


def test_predictions_file_matches_the_report(tiny_model, review_files, tmp_path):
    import pandas as pd

    data = DataConfig(dataset="files", test_file=str(review_files["test"]))
    path = tmp_path / "out" / "preds.parquet"
    rep = evaluate_model(tiny_model, data, batch_size=16, predictions_file=path)
    df = pd.read_parquet(path)
    assert list(df.columns) == ["row_id", "label", "prob_positive", "prediction"]
    assert len(df) == rep["metrics"]["n"] == 64 and df["row_id"].is_unique
    assert (df["prediction"] == df["label"]).mean() == pytest.approx(rep["metrics"]["accuracy"])
