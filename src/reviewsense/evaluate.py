"""Metrics of a trained model on any labelled data, with error analysis."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from reviewsense import config as config_mod
from reviewsense import rundir
from reviewsense.config import DataConfig
from reviewsense.metrics import binary_metrics, predicted_labels

log = logging.getLogger(__name__)

# review length buckets in words (IMDb median is ~174 words; 256 tokens is ~190 words)
LENGTH_BUCKETS = (0, 100, 200, 400, 800)
N_MISTAKES = 20


# The settings that say where reviews come from (as opposed to how they are read and cut).
SOURCE_KEYS = ("dataset", "data_dir", "train_file", "test_file")


def default_data_config(model_or_run: str | Path) -> DataConfig:
    """The run's own data config, else defaults (IMDb test).

    The run is found from a run directory, its ``model/`` folder or one of its checkpoints.
    """
    p = Path(model_or_run)
    run_dir = p if (p / rundir.CONFIG_YAML).is_file() else rundir.run_dir_of(p)
    if run_dir is not None:
        return config_mod.load_file(run_dir / rundir.CONFIG_YAML).data
    return DataConfig()


def eval_data_config(model_or_run: str | Path, overrides: dict) -> DataConfig:
    """The data ``evaluate`` scores: the run's data config (:func:`default_data_config`) with
    the command line's ``overrides`` (config keys; ``None`` = not given) applied on top.

    A source given on the command line (``data_dir`` or ``test_file``) replaces the run's
    source (its dataset, data_dir, train_file and test_file) rather than merging with it: a
    run trained on files would otherwise keep reading its own test file. The columns,
    ``test_size`` and ``skip_invalid`` stay the run's unless given.

    Raises:
        ConfigError: an invalid value, or ``split_seed`` (``--seed``) when no ``test_size``
            subset is drawn (the seed would change nothing).
    """
    from reviewsense.config import RunConfig
    from reviewsense.errors import ConfigError

    cfg = RunConfig(data=default_data_config(model_or_run))
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("test_file") or given.get("data_dir"):
        run_source = _describe_source(cfg.data)
        fresh = DataConfig()
        for key in SOURCE_KEYS:
            setattr(cfg.data, key, getattr(fresh, key))
        cfg.override(given)
        log.info(
            "evaluation data: %s from the command line (instead of %s)",
            _describe_source(cfg.data),
            run_source,
        )
    else:
        cfg.override(given)
    if "split_seed" in given and cfg.data.test_size is None:
        raise ConfigError(
            "--seed draws the --test-size subset, but no subset is drawn (the whole test data "
            "is scored): add --test-size N, or drop --seed"
        )
    return cfg.data


def _describe_source(d: DataConfig) -> str:
    if d.test_file:
        return f"test file {d.test_file}"
    if d.data_dir:
        return f"data dir {d.data_dir}"
    if d.train_file:
        return f"dataset 'files' ({d.train_file}, no test file)"
    return f"dataset '{d.dataset}'"


def length_buckets(texts: list[str], labels, preds) -> list[dict]:
    """Accuracy per review-length bucket (words)."""
    words = np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
    labels, preds = np.asarray(labels), np.asarray(preds)
    rows = []
    edges = [*LENGTH_BUCKETS, None]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = words >= lo if hi is None else (words >= lo) & (words < hi)
        n = int(mask.sum())
        rows.append(
            {
                "words": f"{lo}+" if hi is None else f"{lo}-{hi - 1}",
                "n": n,
                "accuracy": float((labels[mask] == preds[mask]).mean()) if n else None,
            }
        )
    return rows


def confident_mistakes(ids, texts, labels, prob_positive, k: int = N_MISTAKES) -> list[dict]:
    """The ``k`` wrong predictions the model was most sure of."""
    labels = np.asarray(labels)
    p = np.asarray(prob_positive)
    pred = predicted_labels(p)
    wrong = np.flatnonzero(pred != labels)
    confidence = np.where(pred == 1, p, 1 - p)
    top = wrong[np.argsort(-confidence[wrong], kind="stable")][:k]
    return [
        {
            "row_id": str(ids[i]),
            "label": int(labels[i]),
            "prob_positive": float(p[i]),
            "confidence": float(confidence[i]),
            "text": texts[i][:300] + ("…" if len(texts[i]) > 300 else ""),
        }
        for i in top
    ]


def evaluate_model(
    model_or_run: str | Path,
    data_cfg: DataConfig,
    backend: str = "auto",
    batch_size: int = 64,
    num_threads: int | None = None,
    truncation: str | None = None,
    precision: str = "auto",
    predictions_file: str | Path | None = None,
) -> dict:
    """Score a model folder (or run directory) on labelled data.

    Args:
        model_or_run: a model folder or a run directory.
        data_cfg: which data (``test_file`` if set, else the dataset's test split; the
            ``test_size`` subset is drawn with ``data_cfg.split_seed``).
        truncation: override the model's truncation (``head``, ``head_tail`` or ``chunks``).
        precision: torch precision, ``auto`` | ``fp32`` | ``bf16`` (as in ``predict``).
        predictions_file: also write the per-review predictions there, in a run's
            ``test_predictions.parquet`` layout (rundir.write_predictions), so two evaluations
            of the same reviews can be compared review by review.

    Returns:
        {"model", "model_settings", "inference", "data", "metrics", "truncated_share",
        "by_length", "confident_mistakes", "throughput"}
    """
    from reviewsense.data import load_eval_split
    from reviewsense.inference.predictor import Predictor
    from reviewsense.progress import LogProgress
    from reviewsense.runtime import tune_allocator

    tune_allocator()  # a batch job: keep freed activations for the next batch
    model_dir = rundir.resolve_model_dir(model_or_run)
    split, skipped = load_eval_split(data_cfg)
    predictor = Predictor.from_pretrained(
        model_dir,
        backend=backend,
        num_threads=num_threads,
        precision=precision,
        batch_size=batch_size,
        truncation=truncation,
    )
    progress = LogProgress("evaluate", len(split), logger=log)
    t0 = time.perf_counter()
    preds = predictor.predict_many(split.texts, on_progress=progress.update)
    seconds = time.perf_counter() - t0
    prob_pos = np.array([p.prob_positive for p in preds])
    m = binary_metrics(split.labels, prob_pos)
    if predictions_file is not None:
        Path(predictions_file).parent.mkdir(parents=True, exist_ok=True)
        rundir.write_predictions(Path(predictions_file), split, prob_pos)
    return {
        "model": str(model_dir),
        "model_settings": predictor.settings.to_dict(),
        "inference": {"backend": predictor.backend, "precision": predictor.precision},
        "data": {"source": split.source, "n": len(split), "skipped": len(skipped)},
        "metrics": m,
        "truncated_share": float(np.mean([p.truncated for p in preds])) if preds else 0.0,
        "by_length": length_buckets(split.texts, split.labels, predicted_labels(prob_pos)),
        "confident_mistakes": confident_mistakes(split.ids, split.texts, split.labels, prob_pos),
        "throughput": {
            "seconds": seconds,
            "reviews_per_s": len(split) / seconds if seconds else None,
        },
    }
