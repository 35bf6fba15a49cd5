"""Fine-tuning with the Hugging Face Trainer: setup, checkpoint safety, run-directory writing.

``run_training(cfg, output_dir)`` runs one reproducible experiment end to end: load and split
the data, tokenize once (cached), train with per-epoch evaluation on the *validation* split,
keep the best checkpoint by validation F1, evaluate the best model once on the test split, and
write the run directory described in :mod:`reviewsense.rundir`.

Works unchanged under ``torchrun`` (DDP, gloo on CPU / nccl on GPU): the Trainer shards the
batches, and only rank 0 writes files.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reviewsense import config as config_mod
from reviewsense import rundir
from reviewsense.config import RunConfig
from reviewsense.errors import ReviewsenseError
from reviewsense.jsonio import write_json
from reviewsense.metrics import binary_metrics, predicted_labels, softmax_positive
from reviewsense.runtime import (
    environment_facts,
    is_main_process,
    peak_rss_mb,
    resolve_precision,
    set_threads,
    world_info,
)

log = logging.getLogger(__name__)

_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")
# A checkpoint is loadable only if the Trainer finished writing all of these.
_CKPT_REQUIRED = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict = field(default_factory=dict)


# -- environment ----------------------------------------------------------------------------------
def dir_size_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


# -- checkpoints -----------------------------------------------------------------------------
def checkpoint_problem(ckpt: Path) -> str | None:
    """Why ``ckpt`` cannot be resumed from, or None when it is complete.

    A process killed while saving leaves a folder with missing files or a truncated
    safetensors file; both are detected here, so they are skipped rather than loaded.
    """
    for name in _CKPT_REQUIRED:
        if not (ckpt / name).is_file():
            return f"missing {name}"
    try:
        json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"unreadable trainer_state.json ({e})"
    weights = ckpt / "model.safetensors"
    if not weights.is_file():
        return "missing model.safetensors"
    try:
        # Header = 8-byte little-endian length + JSON with byte offsets; a truncated file
        # ends before the last tensor's end offset.
        with weights.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        end = max(
            (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0
        )
        if weights.stat().st_size < 8 + n + end:
            return "truncated model.safetensors"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable model.safetensors ({e})"
    return None


def last_complete_checkpoint(ckpt_dir: Path) -> Path | None:
    """Newest complete ``checkpoint-N``; incomplete ones are renamed aside and logged."""
    if not ckpt_dir.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p)
        for p in ckpt_dir.iterdir()
        if p.is_dir() and (m := _CKPT_RE.match(p.name))
    )
    for _, p in reversed(found):
        problem = checkpoint_problem(p)
        if problem is None:
            return p
        aside = p.with_name(f"incomplete-{p.name}")
        log.warning("skipping incomplete checkpoint %s (%s); moved to %s", p, problem, aside.name)
        if is_main_process():
            shutil.rmtree(aside, ignore_errors=True)
            p.rename(aside)
    return None


# -- helpers -------------------------------------------------------------------------------------
def default_output_dir(cfg: RunConfig) -> Path:
    from reviewsense.settings import get_settings

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return get_settings().runs_dir / f"{stamp}-{cfg.name}"


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    return handler


def _predict(trainer, dataset) -> np.ndarray:
    """P(positive) for every row of ``dataset``, in the dataset's original order."""
    out = trainer.predict(dataset, metric_key_prefix="predict")
    logits = out.predictions[0] if isinstance(out.predictions, tuple) else out.predictions
    probs_sorted = softmax_positive(logits)
    order = np.asarray(dataset["order"])
    probs = np.empty_like(probs_sorted)
    probs[order] = probs_sorted
    return probs


def _write_predictions(path: Path, split, probs: np.ndarray) -> None:
    import pandas as pd

    pd.DataFrame(
        {
            "row_id": [str(i) for i in split.ids],
            "label": np.asarray(split.labels, dtype=np.int64),
            "prob_positive": probs.astype(np.float64),
            "prediction": predicted_labels(probs),
        }
    ).to_parquet(path, index=False)


def _validation_history(log_history: list[dict]) -> list[dict]:
    """Per-evaluation validation metrics from the Trainer's log (``eval_*`` keys)."""
    rows = []
    for entry in log_history:
        if "eval_loss" not in entry:
            continue
        row = {"epoch": entry.get("epoch"), "step": entry.get("step")}
        for k, v in entry.items():
            if k.startswith("eval_") and not k.endswith(("_runtime", "_per_second")):
                row[k[len("eval_") :]] = v
        rows.append(row)
    return rows


def _summary_table(metrics: dict, run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"reviewsense run: {run_dir}", show_lines=False)
    t.add_column("split")
    for k in ("accuracy", "f1", "f1_macro", "roc_auc", "log_loss", "n"):
        t.add_column(k, justify="right")
    for name, m in [
        ("validation (best)", metrics.get("best_validation")),
        ("test", metrics.get("test")),
    ]:
        if not m:
            continue
        t.add_row(
            name,
            *(
                f"{m[k]:.4f}" if isinstance(m.get(k), float) else str(m.get(k, ""))
                for k in ("accuracy", "f1", "f1_macro", "roc_auc", "log_loss", "n")
            ),
        )
    console = Console(stderr=True)
    console.print(t)
    test = metrics.get("test")
    tr = metrics["train"]
    if test:
        lo, hi = test["accuracy_ci95"]
        console.print(
            f"test accuracy {test['accuracy']:.4f} (95% CI {lo:.4f}..{hi:.4f}, n={test['n']}), "
            f"F1 {test['f1']:.4f}"
        )
    console.print(
        f"train {tr['train_time_s']:.0f} s, {tr['examples_per_s']:.1f} examples/s, "
        f"peak RSS {tr['peak_rss_mb']:.0f} MiB, checkpoints {tr['checkpoint_disk_mb']:.0f} MiB, "
        f"precision {tr['precision']}"
    )


# -- main entry ----------------------------------------------------------------------------------
def run_training(
    cfg: RunConfig, output_dir: str | Path | None = None, resume: bool = False
) -> TrainResult:
    """Train, select on validation, test once, and write the run directory.

    Args:
        cfg: the resolved run config (validated here).
        output_dir: run directory; default ``runs/<timestamp>-<preset>``.
        resume: continue from the last complete checkpoint in ``output_dir/checkpoints``
            (a fresh start when there is none).

    Returns:
        TrainResult with the run directory and the metrics written to ``metrics.json``.
    """
    import torch
    import transformers
    from transformers import DataCollatorWithPadding, TrainingArguments

    from reviewsense.data import load_data
    from reviewsense.features import build_dataset, tokenize_cached
    from reviewsense.modeling import load_for_training

    cfg.validate()
    t_start = time.time()
    rank, world = world_info()
    main = rank == 0
    run_dir = Path(output_dir) if output_dir else default_output_dir(cfg)
    ckpt_dir = run_dir / rundir.CHECKPOINTS_DIR
    if main:
        if not resume and ckpt_dir.exists() and any(ckpt_dir.iterdir()):
            raise ReviewsenseError(
                f"{run_dir} already holds checkpoints; pass --resume to continue it or choose "
                "another --output"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
    handler = _attach_log_file(run_dir / rundir.TRAIN_LOG) if main else None
    try:
        if world > 1:
            log.info("distributed: rank %d of %d", rank, world)
        threads = set_threads(cfg.train.num_threads)
        precision = resolve_precision(cfg.train.precision)
        log.info("threads %d, precision %s", threads, precision)
        transformers.set_seed(cfg.train.seed)
        if main:
            config_mod.save(cfg, run_dir / rundir.CONFIG_YAML)

        # data --------------------------------------------------------------------------------
        bundle = load_data(cfg.data, seed=cfg.train.seed)
        model, tokenizer = load_for_training(cfg.model)
        d = cfg.data
        enc = {
            name: tokenize_cached(
                tokenizer, split.texts, d.max_length, d.truncation, desc=f"tokenizing {name}"
            )
            for name, split in (("train", bundle.train), ("val", bundle.val), ("test", bundle.test))
            if split is not None
        }
        for name, e in enc.items():
            log.info(
                "%s: %d reviews, %.1f%% truncated at %d tokens (%s)",
                name,
                len(e["input_ids"]),
                100 * float(np.mean(e["truncated"])) if e["truncated"] else 0.0,
                d.max_length,
                d.truncation,
            )
        train_ds = build_dataset(enc["train"], bundle.train.labels)
        val_ds = build_dataset(enc["val"], bundle.val.labels, sort_by_length=True)
        test_ds = (
            build_dataset(enc["test"], bundle.test.labels, sort_by_length=True)
            if bundle.test is not None
            else None
        )

        # trainer -----------------------------------------------------------------------------
        t = cfg.train
        use_cuda = torch.cuda.is_available()
        if t.dynamic_padding:
            # Multiples of 16 tokens: tensor-core/AMX friendly shapes, and few distinct shapes
            # keep oneDNN's per-shape kernel cache (and so peak memory) small on CPU.
            collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=16)
        else:  # the user's original way: every review padded to max_length
            collator = DataCollatorWithPadding(
                tokenizer, padding="max_length", max_length=d.max_length
            )
        args = TrainingArguments(
            output_dir=str(ckpt_dir),
            per_device_train_batch_size=t.batch_size,
            per_device_eval_batch_size=t.eval_batch_size,
            gradient_accumulation_steps=t.gradient_accumulation_steps,
            # Our models' loss is a per-batch mean; token averaging across ranks would scale the
            # loss (and gradients) by the world size under DDP.
            average_tokens_across_devices=False,
            num_train_epochs=t.epochs,
            max_steps=t.max_steps,
            learning_rate=t.lr,
            weight_decay=t.weight_decay,
            lr_scheduler_type=t.lr_scheduler,
            warmup_steps=t.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
            seed=t.seed,
            data_seed=t.seed,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            use_cpu=not use_cuda,
            logging_strategy="steps",
            logging_steps=t.logging_steps,
            logging_first_step=True,
            eval_strategy="epoch",
            # best-model selection needs a checkpoint at every evaluation; keep best + last
            save_strategy="epoch",
            save_total_limit=t.save_total_limit,
            load_best_model_at_end=True,
            metric_for_best_model=t.metric_for_best_model,
            greater_is_better=t.metric_for_best_model not in ("loss", "log_loss"),
            train_sampling_strategy="group_by_length" if t.group_by_length else "random",
            remove_unused_columns=True,
            report_to="none",
            dataloader_num_workers=0,
            ddp_backend=None if use_cuda else ("gloo" if world > 1 else None),
            disable_tqdm=not sys.stderr.isatty() and not os.environ.get("REVIEWSENSE_PROGRESS"),
        )
        if t.group_by_length:
            log.info("length-grouped batches (less padding); dynamic padding=%s", t.dynamic_padding)

        def compute_metrics(eval_pred) -> dict:
            logits = eval_pred.predictions
            logits = logits[0] if isinstance(logits, tuple) else logits
            m = binary_metrics(eval_pred.label_ids, softmax_positive(logits))
            cm = m.pop("confusion_matrix")
            m.pop("accuracy_ci95")
            # the Trainer logs scalars only; flatten the confusion matrix
            m.update({"tn": cm[0][0], "fp": cm[0][1], "fn": cm[1][0], "tp": cm[1][1]})
            return m

        callbacks = []
        if t.early_stopping:
            from transformers import EarlyStoppingCallback

            callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping))
            log.info("early stopping after %d evaluations without improvement", t.early_stopping)

        trainer = _sorted_eval_trainer_class()(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=val_ds,
            processing_class=tokenizer,
            data_collator=collator,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
        )
        resume_from = last_complete_checkpoint(ckpt_dir) if resume else None
        if resume:
            log.info("resuming from %s", resume_from or "scratch (no complete checkpoint)")

        t_train = time.time()
        train_out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        train_time = time.time() - t_train
        state = trainer.state

        # final evaluation: best model, validation + test ---------------------------------------
        val_probs = _predict(trainer, val_ds)
        test_probs = _predict(trainer, test_ds) if test_ds is not None else None

        result = TrainResult(run_dir=run_dir)
        if main:
            model_dir = run_dir / rundir.MODEL_DIR
            trainer.save_model(str(model_dir))  # safetensors + config (label map) + tokenizer
            tokenizer.save_pretrained(str(model_dir))
            # a pickle: the model folder holds safetensors and JSON only
            (model_dir / "training_args.bin").unlink(missing_ok=True)
            rundir.write_model_settings(
                model_dir,
                rundir.ModelSettings(
                    max_length=d.max_length,
                    truncation=d.truncation,
                    base_model=cfg.model,
                ),
            )
            state.save_to_json(str(run_dir / rundir.TRAINER_STATE))
            _write_predictions(run_dir / rundir.VAL_PREDICTIONS, bundle.val, val_probs)
            if test_probs is not None:
                _write_predictions(run_dir / rundir.TEST_PREDICTIONS, bundle.test, test_probs)

            history = _validation_history(state.log_history)
            best_val = binary_metrics(bundle.val.labels, val_probs)
            best_step = None
            if state.best_model_checkpoint:
                m = re.search(r"checkpoint-(\d+)", state.best_model_checkpoint)
                best_step = int(m.group(1)) if m else None
            best_epoch = next((h["epoch"] for h in history if h["step"] == best_step), None)
            trained_examples = int(
                state.global_step * t.batch_size * world * t.gradient_accumulation_steps
            )
            metrics = {
                "validation": history,
                "best": {
                    "epoch": best_epoch,
                    "step": best_step,
                    "checkpoint": state.best_model_checkpoint,
                    "metric": t.metric_for_best_model,
                    "value": state.best_metric,
                },
                "best_validation": best_val,
                "test": binary_metrics(bundle.test.labels, test_probs)
                if test_probs is not None
                else None,
                "data": {
                    "train": len(bundle.train),
                    "val": len(bundle.val),
                    "test": len(bundle.test) if bundle.test is not None else 0,
                    "skipped": len(bundle.skipped),
                    "train_test_overlap": bundle.overlap,
                    "truncated_share": {k: float(np.mean(e["truncated"])) for k, e in enc.items()},
                },
                "train": {
                    "wall_time_s": time.time() - t_start,
                    "train_time_s": train_time,
                    "examples_per_s": trained_examples / train_time if train_time > 0 else None,
                    "train_loss": train_out.training_loss,
                    "steps": state.global_step,
                    "epochs": state.epoch,
                    "global_batch_size": t.batch_size * world * t.gradient_accumulation_steps,
                    "world_size": world,
                    "precision": precision,
                    "threads": threads,
                    "peak_rss_mb": peak_rss_mb(),
                    "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if use_cuda else None,
                    "checkpoint_disk_mb": dir_size_mb(ckpt_dir),
                    "resumed_from": str(resume_from) if resume_from else None,
                },
            }
            write_json(run_dir / rundir.METRICS_JSON, metrics)
            env = environment_facts(precision, threads) | {
                k: metrics["train"][k]
                for k in (
                    "wall_time_s",
                    "train_time_s",
                    "examples_per_s",
                    "peak_rss_mb",
                    "peak_gpu_mb",
                )
            }
            write_json(run_dir / rundir.ENVIRONMENT_JSON, env)
            if t.analyze:
                _run_analysis(run_dir)
            (run_dir / rundir.DONE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
            _summary_table(metrics, run_dir)
            result.metrics = metrics
        return result
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _sorted_eval_trainer_class():
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

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

    return SortedEvalTrainer


def _run_analysis(run_dir: Path) -> None:
    """``reviewsense analyze`` into ``<run>/analysis``; a failure there never fails the run."""
    try:
        from reviewsense.analysis.report import analyze_run

        analyze_run(run_dir, output_dir=run_dir / rundir.ANALYSIS_DIR, plots=True)
        log.info("analysis written to %s", run_dir / rundir.ANALYSIS_DIR)
    except Exception as e:  # noqa: BLE001 - the trained model matters more than the report
        log.warning("analysis of %s failed: %s", run_dir, e)
