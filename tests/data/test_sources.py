"""IMDb parquet/Hub and aclImdb sources, on real folders in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reviewsense.config import DataConfig
from reviewsense.data import (
    load_data,
    load_imdb_split,
    read_aclimdb,
    resolve_imdb_dir,
)
from reviewsense.errors import ConfigError, DataError
from reviewsense.settings import get_settings

from .conftest import IMDB_DIR, reviews


def test_aclimdb_tree(tmp_path):
    root = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for sub, word in (("pos", "great"), ("neg", "awful")):
            d = root / split / sub
            d.mkdir(parents=True)
            for i in (10, 2, 1):
                (d / f"{i}_{8 if sub == 'pos' else 2}.txt").write_text(
                    f"{word} movie {split} {i}", encoding="utf-8"
                )
    split, skipped = read_aclimdb(root, "train")
    assert split.ids[:3] == ["train/neg/1_2.txt", "train/neg/2_2.txt", "train/neg/10_2.txt"]
    assert split.labels == [0, 0, 0, 1, 1, 1]
    assert split.texts[3] == "great movie train 1" and skipped == []
    # The parent of aclImdb/ (as unpacked from the tarball) works too.
    assert read_aclimdb(tmp_path, "test")[0].ids[-1] == "test/pos/10_8.txt"

    cfg = DataConfig(dataset="aclimdb", data_dir=str(root), train_size=4, val_size=2)
    bundle = load_data(cfg, seed=0)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (4, 2, 6)

    (root / "train" / "pos" / "3_9.txt").write_bytes(b"caf\xe9 review")
    (root / "train" / "neg" / "4_1.txt").write_text("   \n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_aclimdb(root, "train")
    assert "4_1.txt" in str(e.value) and "empty" in str(e.value)
    (root / "train" / "neg" / "4_1.txt").unlink()
    with pytest.raises(DataError) as e:
        read_aclimdb(root, "train")
    assert "3_9.txt" in str(e.value) and "UTF-8" in str(e.value) and "offset 3" in str(e.value)
    split, skipped = read_aclimdb(root, "train", skip_invalid=True)
    assert len(split) == 6 and [s.row for s in skipped] == ["train/pos/3_9.txt"]

    with pytest.raises(DataError, match=r"none: aclImdb folder not found"):
        read_aclimdb(tmp_path / "none", "train")
    with pytest.raises(ConfigError, match="--data-dir"):
        load_data(DataConfig(dataset="aclimdb"), seed=0)
    with pytest.raises(DataError, match=r"missing: neg/"):
        (tmp_path / "x" / "train" / "pos").mkdir(parents=True)
        read_aclimdb(tmp_path / "x", "train")


# -- bad input --------------------------------------------------------------------------------


def test_resolve_imdb_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEWSENSE_IMDB_DIR", str(tmp_path / "from-env"))
    get_settings.cache_clear()
    try:
        assert resolve_imdb_dir(tmp_path / "arg") == tmp_path / "arg"
        assert resolve_imdb_dir() == tmp_path / "from-env"
        monkeypatch.delenv("REVIEWSENSE_IMDB_DIR")
        get_settings.cache_clear()
        expected = IMDB_DIR if (IMDB_DIR / "train.parquet").is_file() else None
        assert resolve_imdb_dir() == expected
    finally:
        get_settings.cache_clear()


def test_imdb_dir_errors(tmp_path):
    with pytest.raises(DataError, match=r"train\.parquet: file not found"):
        load_imdb_split("train", tmp_path)
    (tmp_path / "train" / "pos").mkdir(parents=True)
    with pytest.raises(DataError, match="raw aclImdb folder") as e:
        load_imdb_split("train", tmp_path)
    # the advice names flags that exist: --data-dir (train, evaluate) and --set dataset=...
    assert "--dataset" not in str(e.value) and "--set dataset=aclimdb" in str(e.value)
    assert "--data-dir" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DataError, match="'unsupervised' has no labels"):
        load_imdb_split("unsupervised", tmp_path)


def test_imdb_local_parquet_in_tmp(tmp_path):
    df = reviews(30)
    df.to_parquet(tmp_path / "train.parquet")
    df.assign(text="test " + df["text"]).to_parquet(tmp_path / "test.parquet")
    s = load_imdb_split("test", tmp_path)
    assert s.ids[:2] == ["test-00000", "test-00001"] and "test.parquet" in s.source
    bad = df.copy()
    bad.loc[17, "label"] = -1  # an unsupervised-style row has no usable label
    bad.to_parquet(tmp_path / "train.parquet")
    with pytest.raises(DataError, match=r"train\.parquet: row train-00017: unknown label -1"):
        load_imdb_split("train", tmp_path)
    b = load_data(
        DataConfig(data_dir=str(tmp_path), train_size=10, val_size=5, skip_invalid=True), seed=0
    )
    assert [s.row for s in b.skipped] == ["train-00017"] and len(b.test) == 30


def test_hub_fallback_offline_is_one_clear_sentence(tmp_path):
    # A real subprocess with the Hub forced offline and no local copy anywhere.
    code = (
        "import sys, pathlib, reviewsense.data.sources as d\n"
        "d.PROJECT_ROOT = pathlib.Path(sys.argv[1])\n"
        "try:\n"
        "    d.load_imdb_split('test')\n"
        "except d.DataError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVIEWSENSE_")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "project")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 3, r.stderr
    msg = r.stdout.strip()
    assert "\n" not in msg and "--data-dir" in msg and "REVIEWSENSE_IMDB_DIR" in msg
