"""In-domain masked-language-model pre-training (``reviewsense pretrain``).

Within-task further pre-training (Sun et al. 2019; Gururangan et al. 2020): MLM training of the
encoder on the task's own unlabelled reviews before fine-tuning. ``run_pretraining(cfg, out)``:

1. reads the texts (IMDb ``unsupervised.parquet`` or any table with a text column) and refuses
   any text that is also an IMDb test review (normalised: lower case, whitespace collapsed);
2. cuts every review into windows of ``max_length`` tokens (no text is thrown away) and holds
   out 1% of the reviews, masked once with a fixed seed so that every evaluation's perplexity
   is measured on the same masked tokens;
3. trains ``AutoModelForMaskedLM`` with the HF Trainer (15% masking, optionally whole words;
   the vocabulary head runs on the masked positions only, :mod:`reviewsense.mlm`), resumable
   from the last complete checkpoint, with progress/ETA and held-out perplexity;
4. writes ``out`` as a model folder: the encoder (with the source model's pooler) + tokenizer +
   ``pretrain.json``, which ``reviewsense train --model out`` fine-tunes like any other model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from reviewsense import rundir
from reviewsense.config import (
    MAX_STEPS_RULE,
    TRAINING_ATTENTION_DROPOUT,
    valid_attention_dropout,
    valid_max_steps,
)
from reviewsense.errors import ConfigError, DataError, ReviewsenseError
from reviewsense.jsonio import write_json
from reviewsense.mlm import (
    IGNORE,
    MLMCollator,
    head_warmup_callback,
    load_mlm_model,
    mask_once,
    masked_head_trainer,
    save_encoder,
)
from reviewsense.runtime import PRECISIONS
from reviewsense.trainer_utils import (
    cleanup_checkpoints,
    perplexity,
    progress_callback,
    trained_here,
    training_arguments,
    with_length_buckets,
)
from reviewsense.truncation import MAX_LENGTH_RULE, check_fits_model, max_length_problem
from reviewsense.unlabelled import (
    IMDB_UNSUPERVISED,
    data_file,
    exclude_test_texts,
    imdb_test_texts,
)

log = logging.getLogger(__name__)

EVAL_FRACTION = 0.01  # of the reviews, held out for perplexity
MIN_WINDOW = 32  # content tokens: a shorter tail window of a long review is dropped
PRETRAIN_JSON = "pretrain.json"


@dataclass
class PretrainConfig:
    model: str = "minilm"
    data: str = IMDB_UNSUPERVISED  # or a CSV/JSONL/Parquet/TXT file
    text_column: str = "text"
    data_dir: str | None = None  # IMDb parquet folder (unsupervised.parquet, test.parquet)
    train_size: int | None = None  # reviews drawn from the data (None: all), 1% held out
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    max_length: int = 256  # tokens per window incl. [CLS]/[SEP]
    lr: float = 5e-5
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    whole_word: bool = False
    precision: str = "auto"
    seed: int = 42
    threads: int | None = None
    eval_steps: int = 500  # evaluate (perplexity) and checkpoint every N optimizer steps
    logging_steps: int = 50
    head_warmup_steps: int | None = None  # encoder frozen while a new MLM head learns (auto)
    attention_dropout: float | None = TRAINING_ATTENTION_DROPOUT  # None: the checkpoint's
    drop_test_texts: bool = False  # drop (instead of refuse) texts that are IMDb test reviews
    keep_checkpoints: bool = False

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid key."""
        checks = [
            ("data", bool(str(self.data).strip()), f"'{IMDB_UNSUPERVISED}' or a file"),
            ("train_size", self.train_size is None or self.train_size >= 2, "must be >= 2"),
            ("epochs", self.epochs > 0, "must be > 0"),
            ("max_steps", valid_max_steps(self.max_steps), MAX_STEPS_RULE),
            ("max_length", max_length_problem(self.max_length) is None, MAX_LENGTH_RULE),
            ("lr", self.lr > 0, "must be > 0"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1, "must be in [0, 1)"),
            ("precision", self.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
            ("threads", self.threads is None or self.threads >= 1, "must be >= 1"),
            ("eval_steps", self.eval_steps >= 1, "must be >= 1"),
            (
                "head_warmup_steps",
                self.head_warmup_steps is None or self.head_warmup_steps >= 0,
                "must be >= 0",
            ),
            ("logging_steps", self.logging_steps >= 1, "must be >= 1"),
            (
                "attention_dropout",
                valid_attention_dropout(self.attention_dropout),
                "must be in [0, 1) or None",
            ),
        ]
        for key, ok, reason in checks:
            if not ok:
                raise ConfigError(f"invalid value for '{key}': {getattr(self, key)!r} ({reason})")


# -- texts -----------------------------------------------------------------------------------
def windows(ids: list[int], size: int) -> list[list[int]]:
    """Consecutive windows of at most ``size`` content tokens; a short tail (< MIN_WINDOW) of a
    long text is dropped."""
    out = [ids[s : s + size] for s in range(0, max(len(ids), 1), size)]
    if len(out) > 1 and len(out[-1]) < MIN_WINDOW:
        out.pop()
    return out


def encode_windows(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token windows of every text, each ``[CLS] ... [SEP]`` and at most ``max_length`` long."""
    from reviewsense.truncation import MAX_LENGTH_RANGE, SPECIAL_TOKENS, encode_texts

    out: list[list[int]] = []
    chunk, t0 = 2000, time.time()
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    for start in range(0, len(texts), chunk):
        # the longest length allowed (8192): nothing is cut, the windows keep every token
        enc = encode_texts(tokenizer, texts[start : start + chunk], MAX_LENGTH_RANGE[1], "head")
        for ids in enc["input_ids"]:
            for w in windows(ids[1:-1], max_length - SPECIAL_TOKENS):
                out.append([cls_id, *w, sep_id])
        if len(texts) > chunk:
            done = min(start + chunk, len(texts))
            log.info("tokenized %d/%d texts (%.0f s)", done, len(texts), time.time() - t0)
    return out


def prepare_texts(cfg: PretrainConfig) -> tuple[list[str], dict]:
    """Read, refuse test texts, subsample. Returns (texts, facts for pretrain.json)."""
    from reviewsense.data import read_texts

    path = data_file(cfg.data, cfg.data_dir)
    texts, rows, skipped = read_texts(path, cfg.text_column)
    builtin = cfg.data == IMDB_UNSUPERVISED
    if builtin and not cfg.drop_test_texts:
        log.info("IMDb unsupervised holds reviews that are also test reviews: dropping them")
    texts, rows, dropped = exclude_test_texts(
        texts, rows, str(path), imdb_test_texts(cfg.data_dir), cfg.drop_test_texts or builtin
    )
    if cfg.train_size is not None and cfg.train_size < len(texts):
        idx = np.sort(np.random.default_rng(cfg.seed).choice(len(texts), cfg.train_size, False))
        texts = [texts[i] for i in idx]
    if len(texts) < 2:
        raise DataError(f"{path}: {len(texts)} usable text(s); pre-training needs at least 2")
    facts = {
        "file": str(path),
        "texts": len(texts),
        "skipped_rows": skipped,  # null, non-text or blank cells (read_texts logs the first)
        "test_texts_dropped": dropped,
    }
    return texts, facts


def _eval_history(log_history: list[dict]) -> list[dict]:
    return [
        {
            "step": e.get("step"),
            "epoch": e.get("epoch"),
            "loss": e["eval_loss"],
            "perplexity": perplexity(e["eval_loss"]),
        }
        for e in log_history
        if "eval_loss" in e
    ]


def _datasets(cfg: PretrainConfig, tokenizer, texts: list[str], collator: MLMCollator):
    """(train dataset, held-out dataset masked once, sizes) from the texts."""
    from datasets import Dataset

    n_eval = max(1, round(EVAL_FRACTION * len(texts)))
    held = set(np.random.default_rng(cfg.seed).permutation(len(texts))[:n_eval].tolist())
    train_seqs = encode_windows(
        tokenizer, [t for i, t in enumerate(texts) if i not in held], cfg.max_length
    )
    eval_rows = mask_once(
        collator,
        encode_windows(tokenizer, [texts[i] for i in sorted(held)], cfg.max_length),
        cfg.seed,
    )
    train_ds = Dataset.from_dict({"input_ids": train_seqs, "length": [len(s) for s in train_seqs]})
    eval_ds = Dataset.from_dict(
        {
            "input_ids": [r["input_ids"] for r in eval_rows],
            "labels": [r["labels"] for r in eval_rows],
        }
    )
    sizes = {
        "train_texts": len(texts) - n_eval,
        "held_out_texts": n_eval,
        "train_windows": len(train_seqs),
        "held_out_windows": len(eval_rows),
        "held_out_masked_tokens": sum(sum(x != IGNORE for x in r["labels"]) for r in eval_rows),
    }
    log.info("pre-training data: %s", sizes)
    return train_ds, eval_ds, sizes


def _make_trainer(cfg, model, tokenizer, collator, datasets, precision: str, ckpt_dir: Path):
    """The HF Trainer: evaluation (perplexity) and a checkpoint every ``eval_steps`` steps."""
    from transformers import Trainer

    args = training_arguments(
        cfg,
        ckpt_dir,
        precision,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        eval_on_start=True,
        save_strategy="steps",
        save_steps=cfg.eval_steps,
    )
    return masked_head_trainer(with_length_buckets(Trainer))(
        model=model,
        args=args,
        train_dataset=datasets[0],
        eval_dataset=datasets[1],
        processing_class=tokenizer,
        data_collator=collator,
        callbacks=[progress_callback("pretrain")],
    )


def _write_output(model, tokenizer, src: str, out: Path, report: dict) -> None:
    """The model folder: encoder weights, tokenizer and pretrain.json."""
    out.mkdir(parents=True, exist_ok=True)
    save_encoder(model, src, out)
    tokenizer.save_pretrained(out)
    write_json(out / PRETRAIN_JSON, report)
    first, last = report["initial"], report["final"]
    log.info(
        "held-out perplexity %s -> %s; encoder written to %s",
        first and first["perplexity"],
        last["perplexity"],
        out,
    )


def run_pretraining(cfg: PretrainConfig, output_dir: str | Path, resume: bool = False) -> dict:
    """Pre-train, then write the encoder model folder ``output_dir``; returns pretrain.json."""
    import transformers

    from reviewsense.checkpoints import checkpoint_step, last_complete_checkpoint
    from reviewsense.runtime import (
        environment_facts,
        is_main_process,
        peak_rss_mb,
        resolve_precision,
        set_threads,
    )

    cfg.validate()
    out = Path(output_dir)
    ckpt_dir = out / rundir.CHECKPOINTS_DIR
    busy = (ckpt_dir.is_dir() and any(ckpt_dir.iterdir())) or (out / rundir.MODEL_CONFIG).exists()
    if busy and not resume:
        raise ReviewsenseError(
            f"{out} already holds a pre-training run; pass --resume to continue it or choose "
            "another --output"
        )
    t_start = time.time()
    threads = set_threads(cfg.threads)
    precision = resolve_precision(cfg.precision)
    log.info("threads %d, precision %s", threads, precision)
    transformers.set_seed(cfg.seed)
    # the model first: its length limit is checked before the texts are read (no global RNG is
    # drawn by prepare_texts, so the order changes no result)
    model, tokenizer, src, new_head = load_mlm_model(cfg.model, cfg.attention_dropout)
    check_fits_model(cfg.max_length, model.config, cfg.model)
    texts, data_facts = prepare_texts(cfg)
    collator = MLMCollator(tokenizer, cfg.whole_word)
    train_ds, eval_ds, sizes = _datasets(cfg, tokenizer, texts, collator)

    trainer = _make_trainer(
        cfg, model, tokenizer, collator, (train_ds, eval_ds), precision, ckpt_dir
    )
    trainer.add_callback(head_warmup_callback(model, cfg.head_warmup_steps, new_head))
    resume_from = last_complete_checkpoint(ckpt_dir) if resume else None
    if resume:
        log.info("resuming from %s", resume_from or "scratch (no complete checkpoint)")
    t_train = time.time()
    train_out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_time = time.time() - t_train
    start = checkpoint_step(resume_from) if resume_from else None
    here = trained_here(
        trainer.state.global_step, start, cfg.batch_size, train_time, train_out.training_loss
    )
    history = _eval_history(trainer.state.log_history)
    if not history or history[-1]["step"] != trainer.state.global_step:
        trainer.evaluate()  # the last step was not an evaluation step
        history = _eval_history(trainer.state.log_history)
    report = {
        "kind": "masked-LM pre-training",
        "source_model": cfg.model,
        "source_path": src,
        "mlm_head_initialised": new_head,
        "config": asdict(cfg),
        "data": data_facts | sizes,
        "evaluations": history,
        "initial": history[0] if history else None,
        "final": history[-1],
        "train": {
            "steps": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "train_loss": here["train_loss"],  # this process's steps (None: none left)
            "steps_this_run": here["steps_this_run"],
            "train_time_s": train_time,
            "wall_time_s": time.time() - t_start,
            "windows_per_s": here["examples_per_s"],  # a window is one training example
            "resumed_from": str(resume_from) if resume_from else None,
            "peak_rss_mb": peak_rss_mb(),
        },
        "environment": environment_facts(precision, threads),
    }
    if is_main_process():
        _write_output(trainer.model, tokenizer, src, out, report)
        cleanup_checkpoints(ckpt_dir, cfg.keep_checkpoints)
    return report
