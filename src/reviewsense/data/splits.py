"""Cutting the data for a run: the one dataset rule, stratified subsets, the validation split.

The training subset (``train_size``, stratified) is drawn from the training pool with the
training seed; the validation subset is drawn from the *remaining* rows (``val_size``: a count,
or a fraction below 1: the validation share of the reviews used, :func:`validation_count`); the
test subset (``test_size``) is drawn with the fixed data seed (``split_seed``) so every run of a sweep is
tested on the same reviews whatever its training seed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reviewsense.data.rows import SkippedRow, Split, read_labelled_file
from reviewsense.data.sources import imdb_split, read_aclimdb
from reviewsense.errors import ConfigError, DataError

if TYPE_CHECKING:
    from reviewsense.config import DataConfig

logger = logging.getLogger(__name__)


@dataclass
class DataBundle:
    """Everything a training run reads: the subsets actually used plus what was left out."""

    train: Split
    val: Split
    test: Split | None
    skipped: list[SkippedRow] = field(default_factory=list)
    overlap: int = 0  # distinct texts present in both train(+val) and test

    def summary(self) -> dict[str, Any]:
        """Sizes, label counts and sources, for logs and the run directory."""
        out: dict[str, Any] = {}
        for name in ("train", "val", "test"):
            s: Split | None = getattr(self, name)
            if s is not None:
                c = s.label_counts()
                out[name] = {"n": len(s), "negative": c[0], "positive": c[1], "source": s.source}
        out["skipped"] = len(self.skipped)
        out["overlap"] = self.overlap
        return out


def stratified_indices(labels: Sequence[int] | np.ndarray, n: int, seed: int) -> list[int]:
    """Choose ``n`` positions keeping the class proportions of ``labels``.

    Quotas are proportional (largest remainder), every class present gets at least one row when
    ``n`` allows it (a small subset must not silently lose a class), and the rows within each
    class are drawn with ``numpy.random.default_rng(seed)`` — the same inputs always give the
    same subset.

    Args:
        labels: class label per row.
        n: how many rows to choose; ``n >= len(labels)`` returns every position.
        seed: random seed.

    Returns:
        Sorted positions into ``labels``.
    """
    y = np.asarray(labels)
    total = len(y)
    if n >= total:
        return list(range(total))
    if n <= 0:
        return []
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / total
    quota = np.floor(exact).astype(int)
    if n >= len(classes):
        quota = np.maximum(quota, 1)
    # Hand out (or take back) the rounding difference: largest fractional part first when
    # adding, largest quota first when removing; stable sorts keep ties in class order.
    diff = n - int(quota.sum())
    frac = exact - np.floor(exact)
    while diff > 0:
        for k in np.argsort(-frac, kind="stable"):
            if diff == 0:
                break
            if quota[k] < counts[k]:
                quota[k] += 1
                diff -= 1
    while diff < 0:
        for k in np.argsort(-quota, kind="stable"):
            if diff == 0:
                break
            if quota[k] > 1:
                quota[k] -= 1
                diff += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(y == c), size=int(q), replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return sorted(int(i) for i in np.concatenate(chosen))


def resolve_dataset(cfg: DataConfig, *, for_eval: bool = False) -> str:
    """THE dataset rule: which source a run (or ``evaluate``) reads, from the data config.

    Explicit files beat the preset's dataset (``--test-file`` for evaluation, ``--train-file``
    otherwise); a ``--data-dir`` with the raw aclImdb layout means ``aclimdb``; else the
    configured ``dataset``.
    """
    if for_eval and cfg.test_file:
        return "files"
    if cfg.train_file:
        if cfg.dataset != "files":
            logger.info("train_file given: reading it instead of dataset '%s'", cfg.dataset)
        return "files"
    if cfg.dataset == "imdb" and cfg.data_dir and _aclimdb_layout(Path(cfg.data_dir), for_eval):
        logger.info("data_dir %s has the aclImdb layout: reading the raw text files", cfg.data_dir)
        return "aclimdb"
    return cfg.dataset


def _aclimdb_layout(folder: Path, for_eval: bool) -> bool:
    """``folder`` (or its ``aclImdb/``) holds the raw layout of the split that will be read."""
    splits = ("train", "test") if for_eval else ("train",)
    return any((f / s / "pos").is_dir() for f in (folder, folder / "aclImdb") for s in splits)


def _load_train_pool(cfg: DataConfig, dataset: str) -> tuple[Split, list[SkippedRow]]:
    if dataset == "files":
        if not cfg.train_file:
            raise ConfigError(
                "dataset 'files' needs a training file: pass --train-file PATH "
                "(CSV, JSONL or Parquet)"
            )
        return read_labelled_file(
            cfg.train_file, cfg.text_column, cfg.label_column, cfg.skip_invalid
        )
    if dataset == "aclimdb":
        return read_aclimdb(_aclimdb_dir(cfg), "train", cfg.skip_invalid)
    if dataset == "imdb":
        return imdb_split("train", cfg.data_dir, cfg.skip_invalid)
    raise ConfigError(f"invalid value for 'dataset': {dataset!r} (use imdb, files or aclimdb)")


def _load_test_pool(cfg: DataConfig, dataset: str) -> tuple[Split | None, list[SkippedRow]]:
    if cfg.test_file:
        return read_labelled_file(
            cfg.test_file, cfg.text_column, cfg.label_column, cfg.skip_invalid
        )
    if dataset == "files":
        logger.info("no test_file given: there is no test split (test metrics are skipped)")
        return None, []
    if dataset == "aclimdb":
        folder = _aclimdb_dir(cfg)
        if not (folder / "test").is_dir() and not (folder / "aclImdb" / "test").is_dir():
            logger.info("%s has no test/ folder: there is no test split", folder)
            return None, []
        return read_aclimdb(folder, "test", cfg.skip_invalid)
    return imdb_split("test", cfg.data_dir, cfg.skip_invalid)


def _aclimdb_dir(cfg: DataConfig) -> Path:
    if not cfg.data_dir:
        raise ConfigError("dataset 'aclimdb' needs --data-dir pointing at the aclImdb folder")
    return Path(cfg.data_dir)


def _count_text(split: Split) -> str:
    c = split.label_counts()
    return f"{len(split)} ({c[0]} neg / {c[1]} pos)"


def validation_count(val_size: float, pool_n: int, train_n: int | None) -> int:
    """How many validation reviews ``val_size`` asks for (before fitting them into the pool).

    A count (>= 1) is taken as is. A fraction ``f`` below 1 is the validation share of the
    reviews used, train + validation, so 0.2 is an 80/20 split whatever ``train_size`` is: of
    the whole pool of ``pool_n`` when every review is used (``train_n`` None), else of
    ``train_n`` training reviews plus the validation ones (``f * train_n / (1 - f)``).
    """
    if val_size >= 1:
        return int(val_size)
    if train_n is None:
        return max(1, round(val_size * pool_n))
    return max(1, round(val_size * train_n / (1 - val_size)))


def _plan_sizes(cfg: DataConfig, pool_n: int) -> tuple[int, int]:
    """How many training and validation reviews to take from a pool of ``pool_n``."""
    if pool_n < 3:
        raise DataError(
            f"only {pool_n} valid training review(s): need at least 3 "
            "(both classes for training, and one for validation)"
        )
    if cfg.train_size is None:
        val_n = validation_count(cfg.val_size, pool_n, None)
        if val_n > pool_n - 2:
            val_n = max(1, pool_n // 5)
            logger.warning(
                "val_size %s leaves too few training reviews from %d: using %d for validation",
                cfg.val_size,
                pool_n,
                val_n,
            )
        return pool_n - val_n, val_n
    train_req = cfg.train_size
    val_n = validation_count(cfg.val_size, pool_n, train_req)
    train_n = train_req
    if train_req + val_n > pool_n:
        # Keep the requested train:val ratio rather than leaving validation empty.
        val_req_n = val_n
        val_n = max(1, round(pool_n * val_req_n / (train_req + val_req_n)))
        train_n = pool_n - val_n
        logger.warning(
            "train_size %d + val_size %d = %d exceeds the %d valid training reviews: "
            "using %d for training and %d for validation (same ratio)",
            train_req,
            val_req_n,
            train_req + val_req_n,
            pool_n,
            train_n,
            val_n,
        )
    return train_n, val_n


def _subset_test(test: Split, cfg: DataConfig) -> Split:
    if cfg.test_size is None:
        return test
    if cfg.test_size >= len(test):
        logger.info(
            "test_size %d >= the %d available test reviews: using all", cfg.test_size, len(test)
        )
        return test
    # The data seed, not the training seed: every run of a sweep is tested on the same reviews.
    return test.subset(stratified_indices(test.labels, cfg.test_size, cfg.split_seed))


def load_data(cfg: DataConfig, seed: int) -> DataBundle:
    """Load, validate and cut the data for a training run.

    The training subset (``train_size``, stratified) is drawn from the training pool first; the
    validation subset (``val_size``: a count, or a fraction < 1, :func:`validation_count`) is
    drawn from the *remaining* rows, so the two are disjoint and the training subset does not depend
    on ``val_size``. ``test_size`` draws a stratified subset of the test split (``None`` = all)
    with ``cfg.split_seed``. Everything is deterministic given ``seed`` and ``split_seed``.

    Args:
        cfg: the ``data`` section of the run config.
        seed: the training seed (training and validation subsets).

    Returns:
        The :class:`DataBundle` (``test`` is ``None`` for ``files`` without a test file).

    Raises:
        DataError: bad input (see :func:`read_labelled_file`), or a single class in the
            training data.
        ConfigError: a dataset that lacks its required file/folder setting.
    """
    t0 = time.perf_counter()
    dataset = resolve_dataset(cfg)
    pool, skipped = _load_train_pool(cfg, dataset)
    pool_counts = pool.label_counts()
    if len(pool) and min(pool_counts.values()) == 0:
        only = "negative (0)" if pool_counts[1] == 0 else "positive (1)"
        raise DataError(
            f"{pool.source}: the training data has a single class — all {len(pool)} valid "
            f"reviews are {only}; a classifier needs both negative and positive examples"
        )
    train_n, val_n = _plan_sizes(cfg, len(pool))
    y = np.asarray(pool.labels)
    train_idx = stratified_indices(y, train_n, seed)
    rest = np.setdiff1d(np.arange(len(pool)), np.asarray(train_idx, dtype=int))
    val_local = stratified_indices(y[rest], val_n, seed + 1)
    train = pool.subset(train_idx)
    val = pool.subset(rest[val_local].tolist())
    if min(train.label_counts().values()) == 0:
        raise DataError(
            f"{pool.source}: the training subset of {len(train)} reviews has a single class; "
            "increase --train-size"
        )

    test_pool, test_skipped = _load_test_pool(cfg, dataset)
    skipped = skipped + test_skipped
    test = _subset_test(test_pool, cfg) if test_pool is not None else None

    overlap = 0
    if test is not None:
        seen = set(train.texts)
        seen.update(val.texts)
        overlap = len(seen.intersection(test.texts))
        if overlap:
            logger.warning(
                "train/test overlap: %d review texts appear in both the training/validation "
                "data and the test data (identical text); test metrics may be optimistic",
                overlap,
            )

    logger.info(
        "data (seed %d): train %s from %s; validation %s carved from the rest of the "
        "training pool; test %s%s",
        seed,
        _count_text(train),
        pool.source,
        _count_text(val),
        _count_text(test) if test is not None else "none",
        f" from {test.source}" if test is not None else "",
    )
    if skipped:
        logger.warning("skipped %d invalid rows in total (--skip-invalid)", len(skipped))
    logger.debug("data loaded in %.2f s", time.perf_counter() - t0)
    return DataBundle(train=train, val=val, test=test, skipped=skipped, overlap=overlap)


def load_eval_split(cfg: DataConfig) -> tuple[Split, list[SkippedRow]]:
    """The labelled data ``evaluate`` scores: ``cfg.test_file`` if given, else the test split.

    Args:
        cfg: the ``data`` section (``test_file``, ``dataset``, ``data_dir``, ``test_size``...); the
            ``test_size`` subset is drawn with ``split_seed``, as in :func:`load_data`.

    Returns:
        ``(split, skipped)``.

    Raises:
        DataError: bad input, or no evaluation data for dataset ``files`` without a test file.
    """
    dataset = resolve_dataset(cfg, for_eval=True)
    test, skipped = _load_test_pool(cfg, dataset)
    if test is None:
        raise DataError(
            f"no evaluation data: dataset '{dataset}' has no test split; pass --test-file "
            "PATH (CSV, JSONL or Parquet) or --data-dir DIR (IMDb parquet files, or an aclImdb "
            "folder with test/)"
        )
    if len(test) == 0:
        raise DataError(f"{test.source}: no valid rows to evaluate")
    test = _subset_test(test, cfg)
    logger.info("evaluation data: %s from %s", _count_text(test), test.source)
    return test, skipped
