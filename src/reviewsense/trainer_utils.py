"""Trainer plumbing shared by `pretrain` and `distill`: arguments with the speed settings of
`train`, a progress/ETA log callback, padding, perplexity and checkpoint clean-up."""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

PAD_MULTIPLE = 16  # same padding as `train`: AMX/tensor-core sized, few distinct shapes


def pad_batch(seqs: list[list[int]], value: int, multiple: int = PAD_MULTIPLE):
    """Right-pad ``seqs`` to a common width (a multiple of ``multiple``): [batch, width]."""
    import torch

    width = -(-max(len(s) for s in seqs) // multiple) * multiple
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def cleanup_checkpoints(ckpt_dir: Path, keep: bool) -> None:
    """Remove the Trainer checkpoints of a finished run (they are only for resuming)."""
    if not keep and ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
        log.info("removed %s (finished; checkpoints only serve resuming)", ckpt_dir)


def perplexity(loss: float | None) -> float | None:
    if loss is None or not math.isfinite(loss):
        return None
    return math.exp(min(loss, 50.0))


def progress_callback(what: str):
    """A Trainer callback logging step/total, loss, speed and ETA, and perplexity on eval."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.t0, self.step0 = time.time(), state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "eval_loss" in logs:
                ppl = perplexity(logs["eval_loss"])
                log.info(
                    "%s step %d: held-out loss %.4f, perplexity %s",
                    what,
                    state.global_step,
                    logs["eval_loss"],
                    f"{ppl:.2f}" if ppl is not None else "n/a",
                )
            if "loss" not in logs:
                return
            done, elapsed = state.global_step - self.step0, time.time() - self.t0
            rate = done / elapsed if elapsed > 0 and done > 0 else None
            left = (state.max_steps - state.global_step) / rate if rate else None
            log.info(
                "%s step %d/%d (%.0f%%), loss %.4f, %s steps/s, ETA %s",
                what,
                state.global_step,
                state.max_steps,
                100 * state.global_step / max(state.max_steps, 1),
                logs["loss"],
                f"{rate:.2f}" if rate else "-",
                time.strftime("%H:%M:%S", time.gmtime(left)) if left is not None else "-",
            )

    return Progress()


def training_arguments(cfg, ckpt_dir: Path, precision: str, **extra):
    """TrainingArguments with the speed settings of ``train`` (shared by pretrain/distill)."""
    import os
    import sys

    import torch
    from transformers import TrainingArguments

    use_cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size * 2,
        average_tokens_across_devices=False,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not use_cuda,
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_total_limit=2,
        train_sampling_strategy="group_by_length",
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=not sys.stderr.isatty() and not os.environ.get("REVIEWSENSE_PROGRESS"),
        **extra,
    )
