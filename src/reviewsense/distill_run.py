"""A distillation as a sweep run: one seed's teacher run distilled into a run directory.

A sweep variant ``distill: {teacher: baseline, layers: 3, ...}`` (:mod:`reviewsense.sweep`)
runs this once per seed. The student learns from the same labelled reviews as that seed's
teacher run (its training split: hard labels + the teacher's soft labels) plus unlabelled IMDb
reviews (soft labels only), and is scored on the run's test reviews — the ones every run of
the sweep is tested on — with the code ``predict`` uses, so the sweep report compares it like
any variant. The run directory holds what the report reads (``rundir``'s contract):
``config.yaml`` (the teacher run's data and splits), ``metrics.json`` (one validation row:
the student at the end of training; ``distill``: agreement with the teacher, speed),
``test_predictions.parquet``, ``val_predictions.parquet``, ``trainer_state.json`` (the
student's loss curve), ``environment.json``, ``train.log``, ``model/`` (with
``distill.json``) and ``DONE``.

``train.train_time_s`` is the student's training (the Trainer); ``wall_time_s`` adds the
teacher-logit pass and the scoring. The teacher's own training is in neither — a student needs
its teacher first.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from reviewsense import config as config_mod
from reviewsense import rundir
from reviewsense.config import RunConfig
from reviewsense.distill import DistillConfig, load_reviews, run_distillation
from reviewsense.errors import ReviewsenseError
from reviewsense.jsonio import write_json
from reviewsense.logfile import log_to_file
from reviewsense.metrics import binary_metrics
from reviewsense.train_scoring import score_splits

log = logging.getLogger(__name__)


def distill_config(cfg: RunConfig, options: dict, teacher_run: Path, n_train: int, n_val: int):
    """The DistillConfig of a sweep's distillation run: the run's seed, data, threads and
    precision, its labelled/held-out sizes, and the variant's ``distill:`` options."""
    t = cfg.train
    dcfg = DistillConfig(
        teacher=str(teacher_run),
        train_size=n_train,
        eval_size=n_val,
        seed=t.seed,
        data_dir=cfg.data.data_dir,
        threads=t.num_threads,
        precision=t.precision,
        attention_kernel=t.attention_kernel,
        dropout_kernel=t.dropout_kernel,
        **options,
    )
    dcfg.validate()
    return dcfg


def _metrics(report: dict, bundle, scores, precision: str, wall_time_s: float) -> dict:
    """``metrics.json`` of a distillation run (the layout of ``train``'s, docs/CONTRACTS.md).

    ``wall_time_s``: the whole run (teacher logits, training, scoring), seconds.
    """
    tr = report["train"]
    batch = report["config"]["batch_size"]
    val = binary_metrics(bundle.val.labels, scores.val)
    row = {"epoch": tr["epochs"], "step": tr["steps"]} | {
        k: val[k] for k in ("accuracy", "f1", "log_loss") if k in val
    }
    held = report["held_out"]
    return {
        "validation": [row],
        "best": {
            "epoch": tr["epochs"],
            "step": tr["steps"],
            "reason": "distilled student: the model at the end of training",
        },
        "best_validation": val,
        "test": binary_metrics(bundle.test.labels, scores.test),
        "data": {
            "train": len(bundle.train),
            "unlabelled": report["data"]["unlabelled"],
            "val": len(bundle.val),
            "test": len(bundle.test),
            "skipped": len(bundle.skipped),
            "train_test_overlap": bundle.overlap,
            "truncated_share": {"test": scores.test_truncated},
        },
        "train": {
            "wall_time_s": wall_time_s,
            "train_time_s": tr["train_time_s"],
            "examples_per_s": tr["examples_per_s"],
            "train_loss": tr["train_loss"],
            "steps": tr["steps"],
            "epochs": tr["epochs"],
            "global_batch_size": batch,
            "world_size": 1,
            "precision": precision,
            "threads": report["environment"].get("threads"),
            "peak_rss_mb": tr["peak_rss_mb"],
            "checkpoint_disk_mb": 0.0,
        },
        "distill": {
            "teacher": report["teacher"],
            "layers_kept": report["layers_kept"],
            "agreement_with_teacher": held["agreement"],
            "accuracy_difference_vs_teacher": held["accuracy_difference"],
            "held_out": f"{held['n']} validation reviews",
            "speed": report["speed"],
        },
    }


def distill_run(cfg: RunConfig, options: dict, teacher_run: Path, run_dir: Path) -> dict:
    """Distil ``teacher_run`` (a complete run of the same seed) into the run ``run_dir``.

    An unfinished earlier attempt in ``run_dir`` (no ``DONE``) continues from the student's last
    checkpoint when it has one, and is started over otherwise.

    Returns:
        the ``metrics.json`` document.
    """
    from reviewsense.data import load_data
    from reviewsense.runtime import environment_facts, resolve_precision

    teacher_run, run_dir = Path(teacher_run), Path(run_dir)
    if not rundir.is_complete_run(teacher_run):
        raise ReviewsenseError(
            f"the teacher run {teacher_run} is not complete (no {rundir.DONE_MARKER}); "
            "finish it first (re-run the sweep)"
        )
    model_dir = run_dir / rundir.MODEL_DIR
    resume = (model_dir / rundir.CHECKPOINTS_DIR).is_dir() and not (
        model_dir / rundir.MODEL_CONFIG
    ).exists()
    if resume:
        log.info("%s: an unfinished distillation, continued from its checkpoints", run_dir)
    elif run_dir.exists():
        log.info("%s: an unfinished distillation, started over", run_dir)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with log_to_file(run_dir / rundir.TRAIN_LOG):
        config_mod.save(cfg, run_dir / rundir.CONFIG_YAML)
        bundle = load_data(cfg.data, seed=cfg.train.seed)  # the teacher run's splits
        if bundle.test is None:
            raise ReviewsenseError(f"{run_dir}: the sweep's runs have no test split to score")
        dcfg = distill_config(cfg, options, teacher_run, len(bundle.train), len(bundle.val))
        data = load_reviews(dcfg, labelled=bundle.train, held_out=bundle.val)
        state_file = run_dir / rundir.TRAINER_STATE
        report = run_distillation(dcfg, model_dir, data, state_file, resume=resume)
        precision = resolve_precision(dcfg.precision)
        scores = score_splits(model_dir, precision, dcfg.threads, bundle)
        rundir.write_predictions(run_dir / rundir.VAL_PREDICTIONS, bundle.val, scores.val)
        rundir.write_predictions(run_dir / rundir.TEST_PREDICTIONS, bundle.test, scores.test)
        metrics = _metrics(report, bundle, scores, precision, time.time() - t0)
        write_json(run_dir / rundir.METRICS_JSON, metrics)
        keys = ("wall_time_s", "train_time_s", "examples_per_s", "peak_rss_mb")
        env = environment_facts(precision, dcfg.threads) | {k: metrics["train"][k] for k in keys}
        write_json(run_dir / rundir.ENVIRONMENT_JSON, env)
        (run_dir / rundir.DONE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        log.info(
            "distilled student %s: test accuracy %.4f on %d reviews",
            run_dir,
            metrics["test"]["accuracy"],
            len(bundle.test),
        )
    return metrics
