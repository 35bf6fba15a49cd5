"""Trainer plumbing shared by `train`, `pretrain` and `distill`: arguments with the speed
settings, length-bucketed batches in random order, a progress/ETA log callback, padding,
perplexity and checkpoint clean-up."""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

from reviewsense.progress import eta_text

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


BUCKET_BATCHES = 50  # batches per length bucket (the Trainer's mega-batch size)


def length_bucket_order(lengths: list[int], batch_size: int, generator=None) -> list[int]:
    """Indices [n] whose consecutive ``batch_size`` slices are batches of similar length, in
    random order.

    Why not the Trainer's ``group_by_length``: it sorts each mega-batch of 50 batches longest
    first, so an epoch sweeps from long to short reviews a few times; on 2,000 IMDb reviews that
    ordering cost 1.0 point of test accuracy against random batches (3 seeds, paired; BENCHMARKS.md,
    "Accuracy of the default").
    Here the batches are formed the same way (random buckets of ``BUCKET_BATCHES`` batches,
    sorted by length, cut into batches: the same padding saving) and then shuffled. Only a
    short final batch stays last, so the DataLoader's batches are exactly these.
    """
    import torch

    n, bucket = len(lengths), batch_size * BUCKET_BATCHES
    perm = torch.randperm(n, generator=generator).tolist()
    batches = []
    for start in range(0, n, bucket):  # a multiple of batch_size: only the last batch is short
        chunk = sorted(perm[start : start + bucket], key=lengths.__getitem__, reverse=True)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    tail = batches.pop() if batches and len(batches[-1]) < batch_size else []
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [i for b in order for i in batches[b]] + tail


def with_length_buckets(trainer_cls):
    """``trainer_cls`` whose ``train_sampling_strategy="group_by_length"`` draws its batches
    with :func:`length_bucket_order` (random order; the global torch RNG the Trainer seeds)."""
    import torch

    class LengthBuckets(torch.utils.data.Sampler):
        def __init__(self, lengths: list[int], batch_size: int):
            self.lengths, self.batch_size = lengths, batch_size

        def __len__(self) -> int:
            return len(self.lengths)

        def __iter__(self):
            return iter(length_bucket_order(self.lengths, self.batch_size))

    class LengthBucketTrainer(trainer_cls):
        def _get_train_sampler(self, train_dataset=None):
            ds = self.train_dataset if train_dataset is None else train_dataset
            columns = getattr(ds, "column_names", None) or ()
            if self.args.train_sampling_strategy != "group_by_length":
                return super()._get_train_sampler(train_dataset)
            # The Trainer drops columns the model does not take (our "length" among them)
            # before it asks for the sampler, so the lengths usually come from the token ids.
            if self.args.length_column_name in columns:
                lengths = list(ds[self.args.length_column_name])
            elif "input_ids" in columns:
                lengths = [len(ids) for ids in ds["input_ids"]]
            else:
                return super()._get_train_sampler(train_dataset)
            return LengthBuckets(lengths, self.args.train_batch_size)

    LengthBucketTrainer.__name__ = LengthBucketTrainer.__qualname__ = trainer_cls.__name__
    return LengthBucketTrainer


def trained_here(
    global_step: int, start_step: int | None, examples_per_step: int, seconds: float, loss
) -> dict:
    """Speed and mean loss of the steps *this process* trained.

    A resumed run trained steps ``start_step + 1 .. global_step`` here; the ones before were timed
    by the process that was interrupted. ``loss`` is the Trainer's ``training_loss`` (its mean
    over this process's steps, 0.0 when there were none): None then, like the speed.
    """
    steps = global_step - (start_step or 0)
    timed = steps > 0 and seconds > 0
    return {
        "steps_this_run": steps,
        "examples_per_s": steps * examples_per_step / seconds if timed else None,
        "train_loss": loss if steps > 0 else None,
    }


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
                eta_text(left),
            )

    return Progress()


def runtime_arguments(precision: str, world: int = 1) -> dict:
    """The TrainingArguments every trainer here shares: precision, device, speed, logging.

    The one home of these choices for `train`, `pretrain` and `distill`.
    """
    import sys

    import torch

    from reviewsense.settings import get_settings

    use_cuda = torch.cuda.is_available()
    return dict(
        # Our models' loss is a per-batch mean; token averaging across ranks would scale the
        # loss (and gradients) by the world size under DDP.
        average_tokens_across_devices=False,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not use_cuda,
        # fused AdamW (one kernel over all parameters) on CPU and GPU alike
        optim="adamw_torch_fused",
        # GPU: collate in 2 workers into pinned memory while the GPU computes; CPU: workers
        # would take cores from the matmuls (collating pre-tokenised ids costs < 1% of a step)
        dataloader_num_workers=2 if use_cuda else 0,
        dataloader_pin_memory=use_cuda,
        ddp_backend=None if use_cuda else ("gloo" if world > 1 else None),
        logging_strategy="steps",
        logging_first_step=True,
        report_to="none",
        disable_tqdm=not sys.stderr.isatty() and not get_settings().progress,
    )


def training_arguments(cfg, ckpt_dir: Path, precision: str, **extra):
    """TrainingArguments for `pretrain`/`distill`: their config plus :func:`runtime_arguments`."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size * 2,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_total_limit=2,
        train_sampling_strategy="group_by_length",
        **runtime_arguments(precision),
        **extra,
    )
