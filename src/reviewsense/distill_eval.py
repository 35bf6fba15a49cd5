"""Logits and the held-out report of ``reviewsense distill``: the teacher's soft labels
(computed once, cached), both models' agreement/accuracy on held-out labelled reviews with the
paired difference, and their speed in one timing loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from reviewsense.trainer_utils import pad_batch

log = logging.getLogger(__name__)


# -- inference -------------------------------------------------------------------------------
def predict_logits(
    model, seqs: list[list[int]], pad_id: int, precision: str, batch: int = 64, what: str = ""
):
    """Logits [n, 2] (float32, input order), batches of similar length for little padding;
    progress with an ETA is logged under ``what`` when given (timing loops pass none)."""
    import torch

    from reviewsense.progress import LogProgress

    progress = LogProgress(what, len(seqs), logger=log) if what else None
    order = np.argsort([len(s) for s in seqs], kind="stable")
    out = np.zeros((len(seqs), model.config.num_labels), dtype=np.float32)
    device = next(model.parameters()).device
    model.eval()
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"),
    ):
        for start in range(0, len(seqs), batch):
            idx = order[start : start + batch]
            chunk = [seqs[i] for i in idx]
            logits = model(
                input_ids=pad_batch(chunk, pad_id).to(device),
                attention_mask=pad_batch([[1] * len(s) for s in chunk], 0).to(device),
            ).logits
            out[idx] = logits.float().cpu().numpy()
            if progress is not None:
                progress.update(start + len(chunk))
    return out


def _cache_path(model_dir: Path, seqs: list[list[int]], precision: str) -> Path:
    h = hashlib.sha256(precision.encode())
    with (model_dir / "model.safetensors").open("rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    for s in seqs:
        h.update(np.asarray(s, dtype=np.int32).tobytes() + b"|")
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reviewsense" / "teacher-logits" / f"{h.hexdigest()[:32]}.npy"


def teacher_logits(model_dir: Path, teacher, seqs, pad_id: int, precision: str) -> np.ndarray:
    """The teacher's logits for ``seqs``, computed once per (teacher, inputs, precision)."""
    path = _cache_path(model_dir, seqs, precision)
    if path.is_file():
        log.info("teacher logits for %d reviews from cache %s", len(seqs), path)
        return np.load(path)
    t0 = time.time()
    logits = predict_logits(teacher, seqs, pad_id, precision, what="teacher logits")
    log.info("teacher logits for %d reviews in %.0f s", len(seqs), time.time() - t0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, logits)
        tmp.replace(path)
    except OSError as e:
        log.warning("could not cache teacher logits in %s: %s", path, e)
    return logits


def agreement_report(student: np.ndarray, teacher: np.ndarray, labels: np.ndarray) -> dict:
    """Agreement (raw, by chance, Cohen's kappa), accuracy of both on the same labelled reviews
    and the paired accuracy difference student - teacher with its 95% noise band
    (:func:`reviewsense.selection.paired_difference`: a loss inside the band is not a finding)."""
    from reviewsense.metrics import softmax_positive
    from reviewsense.selection import paired_difference

    s, t = student.argmax(1), teacher.argmax(1)
    agree = float(np.mean(s == t))
    ps, pt = float(np.mean(s)), float(np.mean(t))
    chance = ps * pt + (1 - ps) * (1 - pt)
    return {
        "n": len(labels),
        "agreement": agree,
        "chance_agreement": chance,
        "kappa": (agree - chance) / (1 - chance) if chance < 1 else None,
        "student_accuracy": float(np.mean(s == labels)),
        "teacher_accuracy": float(np.mean(t == labels)),
        "accuracy_difference": _difference(
            paired_difference(labels, softmax_positive(student), softmax_positive(teacher))
        ),
    }


def _difference(d: dict) -> dict:
    """student - teacher: the difference, its 95% interval and noise band, discordant counts."""
    diff, band = d["difference"], d["noise_band"]
    return {
        "difference": diff,
        "interval": [diff - band, diff + band],
        "noise_band": band,
        "discordant_student_right_teacher_wrong": d["discordant"][0],
        "discordant_student_wrong_teacher_right": d["discordant"][1],
        "n": d["n"],
    }


# -- held-out report --------------------------------------------------------------------
SPEED_ROUNDS = 3  # teacher and student timed in turns, so a slower minute of the machine hits both


def _speed(model, seqs, pad_id: int, precision: str) -> float:
    """Reviews per second of ``predict_logits`` over ``seqs`` (the same loop for both models)."""
    t0 = time.perf_counter()
    predict_logits(model, seqs, pad_id, precision)
    return len(seqs) / (time.perf_counter() - t0)


def speed_report(teacher, student, seqs, pad_id: int, precision: str) -> dict:
    """Both models' reviews/s over the same ``seqs``, timed in alternating rounds after one
    warm-up batch each (oneDNN builds its kernels on first use); ``speedup`` is the median of
    the per-round ratios, the rates are medians too, and ``speedup_rounds`` shows the spread."""
    for model in (teacher, student):
        predict_logits(model, seqs[:16], pad_id, precision)
    rounds = [
        (_speed(teacher, seqs, pad_id, precision), _speed(student, seqs, pad_id, precision))
        for _ in range(SPEED_ROUNDS)
    ]
    return {
        "reviews": len(seqs),
        "teacher_reviews_per_s": float(np.median([t for t, _ in rounds])),
        "student_reviews_per_s": float(np.median([s for _, s in rounds])),
        "speedup": float(np.median([s / t for t, s in rounds])),
        "speedup_rounds": [s / t for t, s in rounds],
        "note": f"same loop (batch 64, length-sorted), {SPEED_ROUNDS} alternating rounds, "
        "right after training",
    }


def evaluate_student(teacher_dir: Path, teacher, student, eval_split, eval_seqs, pad_id, precision):
    """(agreement/accuracy on the held-out reviews, speed of both models)."""
    t_eval = teacher_logits(teacher_dir, teacher, eval_seqs, pad_id, precision)
    s_eval = predict_logits(student, eval_seqs, pad_id, precision, what="student, held-out")
    quality = agreement_report(s_eval, t_eval, np.asarray(eval_split.labels))
    speed = speed_report(teacher, student, eval_seqs[:256], pad_id, precision)
    return quality, speed
