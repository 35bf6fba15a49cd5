"""Distillation of a fine-tuned classifier into a shallower student (``reviewsense distill``).

The recipe of DistilBERT (Sanh et al. 2019) applied to a fine-tuned teacher:

- student = the teacher with ``layers`` of its transformer layers, chosen evenly and always
  including the top one (6 -> 3 keeps layers 1, 3, 5: every other layer), embeddings, pooler and
  classifier copied, so the student starts close to the teacher;
- loss = ``alpha`` * cross-entropy on the hard labels (labelled rows only) + ``(1 - alpha)`` *
  T^2 * KL(teacher || student) at temperature T (Hinton et al. 2015), over labelled IMDb train
  reviews plus unlabelled IMDb reviews (which carry the teacher's soft labels only);
- the teacher's logits are computed once and cached (``~/.cache/reviewsense/teacher-logits``);
- the student is written as a normal model folder with the teacher's inference settings, plus
  ``distill.json`` (teacher, layers kept, agreement with the teacher and accuracy on held-out
  labelled IMDb *test* reviews, which neither model trained on, and the speed of both).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from reviewsense import rundir
from reviewsense.attention import ATTENTION_KERNELS, apply_training_kernel, restore_sdpa
from reviewsense.config import MAX_STEPS_RULE, valid_max_steps
from reviewsense.distill_eval import evaluate_student, teacher_logits
from reviewsense.dropout import DROPOUT_KERNELS, apply_dropout_kernel
from reviewsense.errors import ConfigError, ModelError, ReviewsenseError
from reviewsense.inference.verify import VERIFY_N, record_bf16_check
from reviewsense.jsonio import write_json
from reviewsense.runtime import PRECISIONS
from reviewsense.trainer_utils import (
    pad_batch,
    progress_callback,
    training_arguments,
    with_length_buckets,
)
from reviewsense.truncation import (
    MAX_LENGTH_RULE,
    check_fits_model,
    max_length_problem,
    shortest_max_length,
)

log = logging.getLogger(__name__)

DISTILL_JSON = "distill.json"
UNLABELLED = -1  # label of an unlabelled review: soft (teacher) loss only
# model_type -> (state-dict prefix of the transformer layers, config key of their number)
LAYER_LAYOUT = {
    "bert": ("bert.encoder.layer.", "num_hidden_layers"),
    "distilbert": ("distilbert.transformer.layer.", "n_layers"),
}


@dataclass
class DistillConfig:
    teacher: str = ""  # a run directory or model folder
    layers: int = 3
    train_size: int | None = 2000  # labelled IMDb train reviews (None: all 25,000)
    unlabeled_size: int = 10000  # IMDb unsupervised reviews (0: none)
    eval_size: int = 1000  # labelled IMDb test reviews for agreement and accuracy
    epochs: float = 2.0
    max_steps: int = -1
    max_length: int | None = None  # None: the teacher's
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the hard-label loss
    lr: float = 1e-4
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    precision: str = "auto"
    attention_kernel: str = "auto"  # the student's training attention (reviewsense.attention)
    dropout_kernel: str = "auto"  # the student's training dropout (reviewsense.dropout)
    seed: int = 42
    threads: int | None = None
    logging_steps: int = 50
    save_steps: int = 500  # a resumable checkpoint every N steps (`--resume` continues)
    data_dir: str | None = None  # IMDb parquet folder

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid key."""
        checks = [
            ("teacher", bool(str(self.teacher).strip()), "a run directory or model folder"),
            ("layers", self.layers >= 1, "must be >= 1"),
            ("train_size", self.train_size is None or self.train_size >= 2, "must be >= 2"),
            ("unlabeled_size", self.unlabeled_size >= 0, "must be >= 0"),
            ("eval_size", self.eval_size >= 2, "must be >= 2"),
            ("epochs", self.epochs > 0, "must be > 0"),
            ("max_steps", valid_max_steps(self.max_steps), MAX_STEPS_RULE),
            (
                "max_length",
                self.max_length is None or max_length_problem(self.max_length) is None,
                MAX_LENGTH_RULE,
            ),
            ("temperature", self.temperature > 0, "must be > 0"),
            ("alpha", 0 <= self.alpha <= 1, "must be in [0, 1]"),
            ("lr", self.lr > 0, "must be > 0"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1, "must be in [0, 1)"),
            ("precision", self.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
            (
                "attention_kernel",
                self.attention_kernel in ATTENTION_KERNELS,
                f"one of {', '.join(ATTENTION_KERNELS)}",
            ),
            (
                "dropout_kernel",
                self.dropout_kernel in DROPOUT_KERNELS,
                f"one of {', '.join(DROPOUT_KERNELS)}",
            ),
            ("threads", self.threads is None or self.threads >= 1, "must be >= 1"),
            ("logging_steps", self.logging_steps >= 1, "must be >= 1"),
            ("save_steps", self.save_steps >= 1, "must be >= 1"),
        ]
        for key, ok, reason in checks:
            if not ok:
                raise ConfigError(f"invalid value for '{key}': {getattr(self, key)!r} ({reason})")


# -- student ---------------------------------------------------------------------------------
def choose_layers(n_teacher: int, n_student: int) -> list[int]:
    """Evenly spaced teacher layers ending with the top one (6 -> 3: [1, 3, 5])."""
    if not 1 <= n_student <= n_teacher:
        raise ConfigError(
            f"invalid value for 'layers': {n_student} (the teacher has {n_teacher} layers; "
            f"choose 1..{n_teacher})"
        )
    return [(i + 1) * n_teacher // n_student - 1 for i in range(n_student)]


def _layout(model) -> tuple[str, str]:
    kind = model.config.model_type
    if kind not in LAYER_LAYOUT:
        raise ModelError(
            f"distill supports {', '.join(LAYER_LAYOUT)} teachers, got model_type {kind!r}"
        )
    return LAYER_LAYOUT[kind]


def build_student(teacher, keep: list[int]):
    """A copy of ``teacher`` with only the transformer layers ``keep`` (in order)."""
    prefix, key = _layout(teacher)
    cfg = copy.deepcopy(teacher.config)
    setattr(cfg, key, len(keep))
    student = type(teacher)(cfg)
    state = {}
    for name, tensor in teacher.state_dict().items():
        if name.startswith(prefix):
            idx, rest = name[len(prefix) :].split(".", 1)
            if int(idx) not in keep:
                continue
            name = f"{prefix}{keep.index(int(idx))}.{rest}"
        state[name] = tensor.detach().clone()
    student.load_state_dict(state, strict=True)
    return student


def load_teacher(path: str):
    """(model dir, classifier, tokenizer, settings) of a run directory or model folder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = rundir.resolve_model_dir(path)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load the teacher from {model_dir}: {e}") from None
    if model.config.num_labels != 2:
        raise ModelError(
            f"{model_dir}: the teacher has {model.config.num_labels} labels; distill needs a "
            "negative/positive classifier (a `reviewsense train` run)"
        )
    _layout(model)
    return model_dir, model.eval(), tokenizer, rundir.read_model_settings(model_dir)


def _student_length(cfg: DistillConfig, settings, teacher) -> None:
    """Apply ``--max-length`` to the teacher's inference ``settings`` (the student's), or
    refuse it: too short for the teacher's truncation, or too long for the model."""
    if cfg.max_length is None:
        return
    shortest = shortest_max_length(settings.truncation, settings.head_tokens)
    if cfg.max_length < shortest:
        raise ConfigError(
            f"invalid value for 'max_length': {cfg.max_length} — the teacher's truncation "
            f"({settings.truncation}, {settings.head_tokens} head tokens) needs at least "
            f"{shortest} tokens; pass --max-length {shortest} or more"
        )
    check_fits_model(cfg.max_length, teacher.config, cfg.teacher)
    settings.max_length = cfg.max_length


# -- loss ------------------------------------------------------------------------------------
def distillation_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float):
    """alpha * CE(labelled rows) + (1 - alpha) * T^2 * KL(teacher_T || student_T).

    Args:
        student_logits, teacher_logits: [batch, 2].
        labels: [batch], ``UNLABELLED`` (-1) for rows without a label.
    """
    import torch.nn.functional as F

    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=-1),
        F.log_softmax(teacher_logits / t, dim=-1),
        log_target=True,
        reduction="batchmean",
    ) * (t * t)
    has = labels != UNLABELLED
    hard = F.cross_entropy(student_logits[has], labels[has]) if has.any() else soft.new_zeros(())
    return alpha * hard + (1 - alpha) * soft


def _trainer_class():
    from transformers import Trainer

    class DistillTrainer(Trainer):
        """Trainer whose loss mixes the teacher's soft labels with the hard labels."""

        temperature: float = 2.0
        alpha: float = 0.5

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            teacher = inputs.pop("teacher_logits")
            out = model(**inputs)
            loss = distillation_loss(
                out.logits.float(), teacher.float(), labels, self.temperature, self.alpha
            )
            return (loss, out) if return_outputs else loss

    return with_length_buckets(DistillTrainer)


def collate(features: list[dict], pad_id: int) -> dict:
    """input_ids/attention_mask [batch, width], labels [batch], teacher_logits [batch, 2]."""
    import torch

    ids = [f["input_ids"] for f in features]
    return {
        "input_ids": pad_batch(ids, pad_id),
        "attention_mask": pad_batch([[1] * len(s) for s in ids], 0),
        "labels": torch.tensor([f["labels"] for f in features], dtype=torch.long),
        "teacher_logits": torch.tensor([f["teacher_logits"] for f in features]),
    }


# -- data ------------------------------------------------------------------------------------
def load_reviews(cfg: DistillConfig, labelled=None, held_out=None) -> dict:
    """Texts and labels: labelled train (+ unlabelled, label -1) and held-out reviews.

    ``labelled``/``held_out``: Splits chosen by the caller (a sweep passes its run's training
    and validation splits); default: ``train_size`` IMDb train / ``eval_size`` IMDb test reviews.
    """
    from reviewsense.data import load_imdb_split, read_texts, stratified_indices
    from reviewsense.unlabelled import (
        IMDB_UNSUPERVISED,
        data_file,
        exclude_test_texts,
        imdb_test_texts,
    )

    train = labelled if labelled is not None else load_imdb_split("train", cfg.data_dir)
    if labelled is None and cfg.train_size is not None and cfg.train_size < len(train):
        train = train.subset(stratified_indices(train.labels, cfg.train_size, cfg.seed))
    test = held_out
    if test is None:
        test = load_imdb_split("test", cfg.data_dir)
        test = test.subset(stratified_indices(test.labels, cfg.eval_size, cfg.seed))
    texts, labels = list(train.texts), list(train.labels)
    dropped = skipped = 0
    if cfg.unlabeled_size > 0:
        asked_by = f"--unlabeled-size {cfg.unlabeled_size} (IMDb unlabelled reviews; 0: none)"
        path = data_file(IMDB_UNSUPERVISED, cfg.data_dir, asked_by)
        extra, rows, skipped = read_texts(path, text_flag=None)
        # unlabelled reviews that are test reviews would leak the held-out set
        extra, rows, dropped = exclude_test_texts(
            extra, rows, str(path), imdb_test_texts(cfg.data_dir), drop=True
        )
        rng = np.random.default_rng(cfg.seed)
        pick = np.sort(rng.choice(len(extra), min(cfg.unlabeled_size, len(extra)), False))
        texts += [extra[i] for i in pick]
        labels += [UNLABELLED] * len(pick)
    facts = {
        "labelled": len(train),
        "unlabelled": len(texts) - len(train),
        "unlabelled_skipped_rows": skipped,  # null, non-text or blank (read_texts logs it)
        "unlabelled_test_texts_dropped": dropped,
        "held_out": len(test),
        "held_out_source": test.source,
    }
    log.info("distillation data: %s", facts)
    return {"texts": texts, "labels": labels, "eval": test, "facts": facts}


def _train_student(cfg: DistillConfig, student, seqs, labels, soft, pad_id, precision, out, resume):
    """Train ``student`` on (input ids, hard labels or -1, teacher logits); the Trainer.

    Checkpoints every ``cfg.save_steps`` steps go to ``out/checkpoints``; with ``resume`` the
    newest complete one is continued (same seed, same reviews, cached teacher logits). The
    training kernels (``cfg.attention_kernel``, ``cfg.dropout_kernel``) are applied here and
    recorded in the returned facts.
    """
    from datasets import Dataset

    from reviewsense.checkpoints import checkpoint_step, last_complete_checkpoint
    from reviewsense.trainer_utils import trained_here

    train_ds = Dataset.from_dict(
        {
            "input_ids": seqs,
            "labels": labels,
            "teacher_logits": soft.tolist(),
            "length": [len(s) for s in seqs],
        }
    )
    kernels = {
        "attention_kernel": apply_training_kernel(student, cfg.attention_kernel, precision),
        "dropout_kernel": apply_dropout_kernel(student, cfg.dropout_kernel),
    }
    ckpt_dir = out / rundir.CHECKPOINTS_DIR
    args = training_arguments(
        cfg,
        ckpt_dir,
        precision,
        eval_strategy="no",
        save_strategy="steps",
        save_steps=cfg.save_steps,
        remove_unused_columns=False,  # keep teacher_logits for the loss
    )
    trainer_cls = _trainer_class()
    trainer_cls.temperature, trainer_cls.alpha = cfg.temperature, cfg.alpha
    trainer = trainer_cls(
        model=student,
        args=args,
        train_dataset=train_ds,
        data_collator=lambda f: collate(f, pad_id),
        callbacks=[progress_callback("distill")],
    )
    resume_from = last_complete_checkpoint(ckpt_dir) if resume else None
    if resume:
        log.info("resuming from %s", resume_from or "scratch (no complete checkpoint)")
    t0 = time.time()
    out_ = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds, start = time.time() - t0, checkpoint_step(resume_from) if resume_from else None
    here = trained_here(
        trainer.state.global_step, start, cfg.batch_size, seconds, out_.training_loss
    )
    return trainer, {
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_time_s": seconds,  # this process only, when resumed
        **here,
        "resumed_from_step": start,
        **kernels,
    }


def _save_student(student, tokenizer, out: Path, settings, teacher_dir: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    # the teacher's threshold was chosen on the teacher's probabilities: not carried over
    rundir.write_model_settings(
        out,
        rundir.ModelSettings(
            max_length=settings.max_length,
            truncation=settings.truncation,
            head_tokens=settings.head_tokens,
            base_model=str(teacher_dir),
            threshold_info={"note": "distilled student: run `reviewsense threshold` to set one"},
        ),
    )


def _check_output(out: Path, resume: bool) -> None:
    """Refuse to overwrite a finished student, or to restart an unfinished one silently."""
    if (out / rundir.MODEL_CONFIG).exists():
        raise ReviewsenseError(f"{out} already holds a model; choose another --output")
    ckpt_dir = out / rundir.CHECKPOINTS_DIR
    if not resume and ckpt_dir.is_dir() and any(ckpt_dir.iterdir()):
        raise ReviewsenseError(
            f"{out} holds an unfinished distillation; pass --resume to continue it or choose "
            "another --output"
        )


def run_distillation(
    cfg: DistillConfig,
    output_dir: str | Path,
    data: dict | None = None,
    state_file=None,
    resume: bool = False,
) -> dict:
    """Distil ``cfg.teacher`` into a ``cfg.layers``-layer student written to ``output_dir``.

    ``data``: :func:`load_reviews`' result when the caller chose the reviews (a sweep);
    ``state_file``: where to save the student's ``trainer_state.json`` (loss curve), if anywhere;
    ``resume``: continue from the newest complete checkpoint in ``output_dir/checkpoints``.
    """
    import transformers

    from reviewsense.runtime import environment_facts, peak_rss_mb, resolve_precision, set_threads
    from reviewsense.trainer_utils import cleanup_checkpoints
    from reviewsense.truncation import encode_texts

    cfg.validate()
    out = Path(output_dir)
    _check_output(out, resume)
    t_start = time.time()
    threads = set_threads(cfg.threads)
    precision = resolve_precision(cfg.precision)
    transformers.set_seed(cfg.seed)
    teacher_dir, teacher, tokenizer, settings = load_teacher(cfg.teacher)
    n_teacher = getattr(teacher.config, _layout(teacher)[1])
    keep = choose_layers(n_teacher, cfg.layers)
    log.info("teacher %s: %d layers; the student keeps %s", teacher_dir, n_teacher, keep)
    _student_length(cfg, settings, teacher)
    data = data if data is not None else load_reviews(cfg)

    def encode(texts: list[str]) -> list[list[int]]:
        mode, head = settings.truncation, settings.head_tokens
        return encode_texts(tokenizer, texts, settings.max_length, mode, head)["input_ids"]

    seqs, eval_seqs = encode(data["texts"]), encode(data["eval"].texts)
    pad_id = tokenizer.pad_token_id
    soft = teacher_logits(teacher_dir, teacher, seqs, pad_id, precision)
    student = build_student(teacher, keep)
    trainer, train = _train_student(
        cfg, student, seqs, data["labels"], soft, pad_id, precision, out, resume
    )
    student = trainer.model.eval()
    restore_sdpa(student)  # timed and scored on SDPA, like the teacher it is compared with
    if state_file is not None:
        trainer.state.save_to_json(str(state_file))
    quality, speed = evaluate_student(
        teacher_dir, teacher, student, data["eval"], eval_seqs, pad_id, precision
    )
    _save_student(student, tokenizer, out, settings, teacher_dir)
    if precision == "bf16":  # the student's own bf16 path, checked like train's (auto honours it)
        texts = list(data["eval"].texts[:VERIFY_N])
        source = f"{len(texts)} held-out reviews ({data['facts']['held_out_source']})"
        record_bf16_check(out, texts, source, cfg.threads)
    cleanup_checkpoints(out / rundir.CHECKPOINTS_DIR, keep=False)
    report = {
        "teacher": str(teacher_dir),
        "teacher_layers": n_teacher,
        "layers_kept": keep,
        "student_layers": len(keep),
        "parameters": {
            "teacher": sum(p.numel() for p in teacher.parameters()),
            "student": sum(p.numel() for p in student.parameters()),
        },
        "config": asdict(cfg),
        "inference_settings": settings.to_dict(),
        "data": data["facts"],
        "held_out": quality,
        "speed": speed,
        "train": train | {"wall_time_s": time.time() - t_start, "peak_rss_mb": peak_rss_mb()},
        "environment": environment_facts(precision, threads),
    }
    write_json(out / DISTILL_JSON, report)
    _log_result(report)
    return report


def _log_result(report: dict) -> None:
    q = report["held_out"]
    log.info(
        "student (%d layers): agreement %.4f with the teacher, accuracy %.4f vs teacher %.4f "
        "(n=%d); %.2fx the teacher's reviews/s",
        report["student_layers"],
        q["agreement"],
        q["student_accuracy"],
        q["teacher_accuracy"],
        q["n"],
        report["speed"]["speedup"],
    )
