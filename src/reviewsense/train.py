"""Fine-tuning with the Hugging Face Trainer: a short sequence of named steps.

``run_training(cfg, output_dir)`` runs one reproducible experiment end to end:

1. ``_open_run`` — run directory, log file, threads, precision, seed, ``config.yaml``;
2. ``_prepare_inputs`` — load and split the data, load the model, tokenize once (cached);
3. ``_build_trainer`` — Trainer arguments, collator, metrics, callbacks;
4. ``_fit`` — train (optionally resuming from the last complete checkpoint), evaluating on the
   *validation* split every epoch;
   then choose the model to keep with the noise-aware rule (:mod:`reviewsense.selection`:
   the last epoch unless an earlier one is better beyond the paired 95% band);
5. ``_save_model`` — the self-contained model folder (rank 0 only, like everything after);
6. ``train_scoring.score_splits`` — the saved folder on validation and, once, on test,
   through the code ``predict`` uses (:meth:`Predictor.predict_many`, torch, the run's
   precision; bf16 only after it passed its check against fp32), with ETA;
7. ``_write_outputs`` — predictions, ``metrics.json``, ``environment.json``, analysis, ``DONE``.

Works unchanged under ``torchrun`` (DDP, gloo on CPU / nccl on GPU): the Trainer shards the
batches, and only rank 0 writes files and scores the test set. Checkpoint safety lives in
:mod:`reviewsense.checkpoints`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reviewsense import config as config_mod
from reviewsense import rundir
from reviewsense.checkpoints import (  # noqa: F401 - re-exported: pretrain and tests use them
    checkpoint_problem,
    dir_size_mb,
    last_complete_checkpoint,
)
from reviewsense.config import RunConfig
from reviewsense.errors import ReviewsenseError
from reviewsense.jsonio import write_json
from reviewsense.logfile import log_to_file
from reviewsense.metrics import binary_metrics
from reviewsense.runtime import (
    environment_facts,
    peak_rss_mb,
    resolve_precision,
    set_threads,
    world_info,
)
from reviewsense.train_report import (
    print_summary,
    run_analysis,
    validation_history,
)
from reviewsense.train_scoring import Scores, score_splits

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict = field(default_factory=dict)


@dataclass
class _Run:
    """What the steps share: the config, where files go, and the runtime in effect."""

    cfg: RunConfig
    run_dir: Path
    rank: int
    world: int
    t_start: float
    threads: int = 0
    precision: str = "fp32"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / rundir.CHECKPOINTS_DIR


@dataclass
class _Inputs:
    """Data, model and tokenized datasets of a run."""

    bundle: Any  # data.DataBundle
    model: Any
    tokenizer: Any
    enc: dict  # split name -> encode_texts output
    train_ds: Any
    val_ds: Any


@dataclass
class _Fit:
    """What training produced."""

    train_loss: float
    train_time_s: float
    resumed_from: Path | None
    best: dict  # metrics.json -> best: the chosen evaluation, its reason and noise band


# -- helpers -------------------------------------------------------------------------------------
def default_output_dir(cfg: RunConfig) -> Path:
    from reviewsense.settings import get_settings

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return get_settings().runs_dir / f"{stamp}-{cfg.name}"


# -- the steps ------------------------------------------------------------------------------------
def run_training(
    cfg: RunConfig, output_dir: str | Path | None = None, resume: bool = False
) -> TrainResult:
    """Train, select on validation, test once, and write the run directory.

    Args:
        cfg: the run config (validated on creation: see :mod:`reviewsense.config`).
        output_dir: run directory; default ``runs/<timestamp>-<preset>``.
        resume: continue from the last complete checkpoint in ``output_dir/checkpoints``
            (a fresh start when there is none).

    Returns:
        TrainResult with the run directory and the metrics written to ``metrics.json``.
    """
    run = _open_run(cfg, output_dir, resume)
    with log_to_file(run.run_dir / rundir.TRAIN_LOG, enabled=run.main):
        _setup_runtime(run)
        inputs = _prepare_inputs(run)
        trainer, recorder = _build_trainer(run, inputs)
        fit = _fit(run, trainer, recorder, resume)
        result = TrainResult(run_dir=run.run_dir)
        if run.main:
            _save_model(run, trainer, inputs.tokenizer)
            pe = trainer.predictor_eval
            scores = score_splits(
                run.run_dir / rundir.MODEL_DIR,
                run.precision,
                run.threads,
                inputs.bundle,
                val_probs=pe.reused(fit.best.get("step")) if pe else None,
            )
            result.metrics = _write_outputs(run, trainer, inputs, fit, scores)
        return result


def _open_run(cfg: RunConfig, output_dir: str | Path | None, resume: bool) -> _Run:
    """Create the run directory (rank 0); refuse to mix a fresh start with old checkpoints."""
    rank, world = world_info()
    run = _Run(
        cfg, Path(output_dir) if output_dir else default_output_dir(cfg), rank, world, time.time()
    )
    if run.main:
        if not resume and run.ckpt_dir.exists() and any(run.ckpt_dir.iterdir()):
            raise ReviewsenseError(
                f"{run.run_dir} already holds checkpoints; pass --resume to continue it or "
                "choose another --output"
            )
        run.run_dir.mkdir(parents=True, exist_ok=True)
    return run


def _setup_runtime(run: _Run) -> None:
    """Threads, precision and seed; the resolved config is saved first thing."""
    import transformers

    if run.world > 1:
        log.info("distributed: rank %d of %d", run.rank, run.world)
    run.threads = set_threads(run.cfg.train.num_threads)
    run.precision = resolve_precision(run.cfg.train.precision)
    log.info("threads %d, precision %s", run.threads, run.precision)
    transformers.set_seed(run.cfg.train.seed)
    if run.main:
        config_mod.save(run.cfg, run.run_dir / rundir.CONFIG_YAML)


def _prepare_inputs(run: _Run) -> _Inputs:
    """Load and split the data, load the model, tokenize every split once (cached)."""
    from reviewsense.attention import apply_training_kernel
    from reviewsense.data import load_data
    from reviewsense.dropout import apply_dropout_kernel
    from reviewsense.features import build_dataset, tokenize_cached
    from reviewsense.modeling import load_for_training
    from reviewsense.truncation import check_fits_model

    d = run.cfg.data
    bundle = load_data(d, seed=run.cfg.train.seed)
    model, tokenizer = load_for_training(
        run.cfg.model, attention_dropout=run.cfg.train.attention_dropout
    )
    check_fits_model(d.max_length, model.config, run.cfg.model)
    apply_training_kernel(model, run.cfg.train.attention_kernel, run.precision)
    apply_dropout_kernel(model, run.cfg.train.dropout_kernel)
    # The test split is tokenized once, by the Predictor that scores it (_score_splits).
    splits = (("train", bundle.train), ("val", bundle.val))
    enc = {
        name: tokenize_cached(
            tokenizer,
            split.texts,
            d.max_length,
            d.truncation,
            d.head_tokens,  # the spec the model is saved with (model_settings)
            desc=f"tokenizing {name}",
        )
        for name, split in splits
    }
    for name, e in enc.items():
        share = 100 * float(np.mean(e["truncated"])) if e["truncated"] else 0.0
        log.info(
            "%s: %d reviews, %.1f%% truncated at %d tokens (%s)",
            name,
            len(e["input_ids"]),
            share,
            d.max_length,
            d.truncation,
        )
    return _Inputs(
        bundle=bundle,
        model=model,
        tokenizer=tokenizer,
        enc=enc,
        train_ds=build_dataset(enc["train"], bundle.train.labels),
        val_ds=build_dataset(enc["val"], bundle.val.labels, sort_by_length=True),
    )


def _training_arguments(run: _Run):
    """The Trainer's arguments for this run (evaluate + save every epoch)."""
    from transformers import TrainingArguments

    from reviewsense.trainer_utils import runtime_arguments

    t = run.cfg.train
    return TrainingArguments(
        output_dir=str(run.ckpt_dir),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        learning_rate=t.lr,
        weight_decay=t.weight_decay,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        seed=t.seed,
        data_seed=t.seed,
        logging_steps=t.logging_steps,
        eval_strategy="epoch",
        # A checkpoint at every evaluation; which ones are kept, and which model is the run's,
        # is decided by train_selection (the noise-aware rule), not by the Trainer.
        save_strategy="epoch",
        save_total_limit=None,
        load_best_model_at_end=False,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        remove_unused_columns=True,
        **runtime_arguments(run.precision, run.world),
    )


def _collator(run: _Run, tokenizer):
    from transformers import DataCollatorWithPadding

    if run.cfg.train.dynamic_padding:
        # Multiples of 16 tokens: tensor-core/AMX friendly shapes, and few distinct shapes
        # keep oneDNN's per-shape kernel cache (and so peak memory) small on CPU.
        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=16)
    # the user's original way: every review padded to max_length
    return DataCollatorWithPadding(
        tokenizer, padding="max_length", max_length=run.cfg.data.max_length
    )


def _build_trainer(run: _Run, inputs: _Inputs):
    """The Trainer and its evaluation recorder: metrics, checkpoint keeping, early stopping."""
    from reviewsense.train_selection import (
        CheckpointKeeper,
        EvalRecorder,
        NoiseAwareEarlyStopping,
    )
    from reviewsense.trainer_utils import progress_callback

    t = run.cfg.train
    if t.group_by_length:
        log.info(
            "length-bucketed batches in random order (less padding); dynamic padding=%s",
            t.dynamic_padding,
        )
    recorder = EvalRecorder(run.ckpt_dir, write=run.main)
    keeper = CheckpointKeeper(recorder, model_settings(run.cfg), keep=t.save_total_limit - 1)
    callbacks = [recorder, keeper, progress_callback("train")]  # step/total + ETA in the log
    if t.early_stopping:
        callbacks.append(NoiseAwareEarlyStopping(recorder, t.early_stopping))
        log.info(
            "early stopping after %d evaluations without an improvement beyond the paired "
            "noise band",
            t.early_stopping,
        )
    trainer = _sorted_eval_trainer_class()(
        model=inputs.model,
        args=_training_arguments(run),
        train_dataset=inputs.train_ds,
        eval_dataset=inputs.val_ds,
        processing_class=inputs.tokenizer,
        data_collator=_collator(run, inputs.tokenizer),
        compute_metrics=recorder.compute_metrics,
        callbacks=callbacks,
    )
    trainer.predictor_eval = _predictor_eval(run, inputs)
    return trainer, recorder


def _predictor_eval(run: _Run, inputs: _Inputs):
    """Evaluations by the predict path (``train_eval``): one process, fp32 or bf16."""
    from reviewsense.features import length_order
    from reviewsense.train_eval import PredictorEval

    if run.world > 1 or run.precision not in ("fp32", "bf16"):
        return None
    order = length_order(inputs.enc["val"])
    val = inputs.bundle.val
    return PredictorEval(
        texts=[val.texts[i] for i in order],
        labels=[val.labels[i] for i in order],
        order=order,
        tokenizer=inputs.tokenizer,
        settings=model_settings(run.cfg),
        precision=run.precision,
    )


def _fit(run: _Run, trainer, recorder, resume: bool) -> _Fit:
    """Train (from the last complete checkpoint when resuming), then choose the model to keep."""
    from reviewsense.checkpoints import checkpoint_step
    from reviewsense.train_selection import choose_and_load

    resume_from = last_complete_checkpoint(run.ckpt_dir) if resume else None
    if resume:
        log.info("resuming from %s", resume_from or "scratch (no complete checkpoint)")
    if resume_from is not None:
        recorder.restore(up_to_step=checkpoint_step(resume_from))
    t0 = time.time()
    out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_time = time.time() - t0
    best = choose_and_load(trainer, recorder, run.ckpt_dir)
    return _Fit(out.training_loss, train_time, resume_from, best)


def _save_model(run: _Run, trainer, tokenizer) -> None:
    """The self-contained model folder, with the settings it was trained with."""
    model_dir = run.run_dir / rundir.MODEL_DIR
    trainer.save_model(str(model_dir))  # safetensors + config (label map) + tokenizer
    tokenizer.save_pretrained(str(model_dir))
    # a pickle: the model folder holds safetensors and JSON only
    (model_dir / "training_args.bin").unlink(missing_ok=True)
    rundir.write_model_settings(model_dir, model_settings(run.cfg))


def model_settings(cfg: RunConfig) -> rundir.ModelSettings:
    """The inference settings a model trained with ``cfg`` carries (model and checkpoints)."""
    d = cfg.data
    return rundir.ModelSettings(
        max_length=d.max_length,
        truncation=d.truncation,
        head_tokens=d.head_tokens,
        base_model=cfg.model,
    )


def _train_facts(run: _Run, state, fit: _Fit) -> dict:
    """``metrics.json`` -> ``train``: time, speed, memory, disk."""
    import torch

    from reviewsense.checkpoints import checkpoint_step
    from reviewsense.trainer_utils import trained_here

    t = run.cfg.train
    global_batch = t.batch_size * run.world * t.gradient_accumulation_steps
    start = checkpoint_step(fit.resumed_from) if fit.resumed_from else None
    here = trained_here(state.global_step, start, global_batch, fit.train_time_s, fit.train_loss)
    use_cuda = torch.cuda.is_available()
    return {
        "wall_time_s": time.time() - run.t_start,
        "train_time_s": fit.train_time_s,  # this process (a resumed run: the steps after it)
        **here,
        "steps": state.global_step,
        "epochs": state.epoch,
        "global_batch_size": global_batch,
        "world_size": run.world,
        "precision": run.precision,
        "threads": run.threads,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if use_cuda else None,
        "checkpoint_disk_mb": dir_size_mb(run.ckpt_dir),
        "resumed_from": str(fit.resumed_from) if fit.resumed_from else None,
    }


def _run_metrics(run: _Run, trainer, inputs: _Inputs, fit: _Fit, scores: Scores) -> dict:
    """The ``metrics.json`` document (layout: docs/CONTRACTS.md)."""
    b, state = inputs.bundle, trainer.state
    history = validation_history(state.log_history)
    truncated = {k: float(np.mean(e["truncated"])) for k, e in inputs.enc.items()}
    if scores.test_truncated is not None:
        truncated["test"] = scores.test_truncated
    return {
        "validation": history,
        "best": fit.best,
        "best_validation": binary_metrics(b.val.labels, scores.val),
        "test": binary_metrics(b.test.labels, scores.test) if scores.test is not None else None,
        "data": {
            "train": len(b.train),
            "val": len(b.val),
            "test": len(b.test) if b.test is not None else 0,
            "skipped": len(b.skipped),
            "train_test_overlap": b.overlap,
            "truncated_share": truncated,
        },
        "train": _train_facts(run, state, fit),
    }


def _write_outputs(run: _Run, trainer, inputs: _Inputs, fit: _Fit, scores: Scores) -> dict:
    """Everything rank 0 writes after training; returns the metrics."""
    b = inputs.bundle
    trainer.state.save_to_json(str(run.run_dir / rundir.TRAINER_STATE))
    rundir.write_predictions(run.run_dir / rundir.VAL_PREDICTIONS, b.val, scores.val)
    if scores.test is not None:
        rundir.write_predictions(run.run_dir / rundir.TEST_PREDICTIONS, b.test, scores.test)
    metrics = _run_metrics(run, trainer, inputs, fit, scores)
    write_json(run.run_dir / rundir.METRICS_JSON, metrics)
    keys = ("wall_time_s", "train_time_s", "examples_per_s", "peak_rss_mb", "peak_gpu_mb")
    env = environment_facts(run.precision, run.threads) | {k: metrics["train"][k] for k in keys}
    write_json(run.run_dir / rundir.ENVIRONMENT_JSON, env)
    if run.cfg.train.analyze:
        run_analysis(run.run_dir)
    (run.run_dir / rundir.DONE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    print_summary(metrics, run.run_dir)
    return metrics


def _sorted_eval_trainer_class():
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    from reviewsense.train_eval import with_predictor_eval
    from reviewsense.trainer_utils import with_length_buckets

    class SortedEvalTrainer(Trainer):
        """Evaluates in dataset order.

        With ``group_by_length`` the stock Trainer also shuffles evaluation batches by length,
        which permutes predictions relative to the dataset. Our evaluation datasets are
        already sorted by length, so sequential order is both cheap and order-preserving.
        """

        def _get_eval_sampler(self, eval_dataset):
            if self.args.world_size > 1:
                return None  # the distributed sampler keeps order; gather restores it
            return SequentialSampler(eval_dataset)

    return with_predictor_eval(with_length_buckets(SortedEvalTrainer))
