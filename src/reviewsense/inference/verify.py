"""Verify a faster variant of a model (ONNX, OpenVINO, int8, bf16) against PyTorch fp32.

Verification runs on real reviews: by default a fixed sample of :data:`VERIFY_N` IMDb test
reviews when the local IMDb folder is there (``reviewsense.data.resolve_imdb_dir``), else the
built-in :data:`SAMPLE_REVIEWS` (24 varied texts, reported as such). Both sides use the model's
own truncation.

Checks (probabilities in [0, 1]):

- the precision's :class:`Tolerance`: a quantile of |Δp| (the max for fp32, the 99th
  percentile for the lossy bf16 / int8), mean |Δp|, label agreement on *decisive* reviews —
  those whose fp32 probability is further than the |Δp| limit from 0.5;
- label agreement over all reviews ≥ ``min_agreement`` (default :data:`MIN_AGREEMENT`).

Why a quantile for lossy precisions: the max over N reviews is an extreme value that grows with
N and is set by one borderline review (on the 500-review check a dynamic-int8 export of the demo
model moved one review by 0.45 while agreeing on 99.4% of labels, and its accuracy on 1,000
reviews was 0.1 pt *above* fp32). The 99th percentile bounds the tail without letting one review
decide; the max is still measured and reported (``max_abs_diff``). Exact formats (ONNX / OpenVINO
fp32) keep the max: any review off by more than 1e-3 means a wrong graph.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

VERIFY_N = 500  # IMDb test reviews verified on by default
MIN_AGREEMENT = 0.99  # label agreement with fp32 over all verification reviews


@dataclass(frozen=True)
class Tolerance:
    """Limits a variant must meet against PyTorch fp32 (probabilities)."""

    dp_limit: float  # bound on the ``dp_quantile`` quantile of |Δp|
    dp_quantile: float  # 1.0: every review (the max); 0.99: all but the 1% largest moves
    mean_abs_diff: float
    min_label_agreement: float  # on decisive samples (see module docstring)

    def __post_init__(self) -> None:
        if not 0.5 <= self.dp_quantile <= 1.0:
            raise ValueError(f"dp_quantile must be within 0.5..1, got {self.dp_quantile}")

    @property
    def dp_name(self) -> str:
        """How the bounded statistic is named in messages: ``max`` or ``p99``."""
        return "max" if self.dp_quantile == 1.0 else f"p{100 * self.dp_quantile:g}"


TOLERANCES = {
    "fp32": Tolerance(dp_limit=1e-3, dp_quantile=1.0, mean_abs_diff=1e-3, min_label_agreement=1.0),
    "bf16": Tolerance(
        dp_limit=0.10, dp_quantile=0.99, mean_abs_diff=0.02, min_label_agreement=0.95
    ),
    "int8": Tolerance(
        dp_limit=0.10, dp_quantile=0.99, mean_abs_diff=0.02, min_label_agreement=0.95
    ),
}

# Varied reviews for when no IMDb data is at hand: short, long (beyond max_length), mixed,
# negated, sarcastic, non-English, punctuation-only and numbers.
SAMPLE_REVIEWS: tuple[str, ...] = (
    "A masterpiece. I loved every minute of it.",
    "Terrible. Boring plot, wooden acting, and a pointless ending.",
    "Not bad at all, actually quite good.",
    "I wanted to like this film, but it was a complete waste of time.",
    "The cinematography is stunning and the score gave me chills.",
    "Oh great, another two hours of my life I will never get back.",
    "It's fine. Nothing special, nothing awful.",
    "Worst movie I have ever seen!!!",
    "An absolute delight for the whole family; the kids laughed from start to finish.",
    "The first half drags, but the last act is brilliant and makes it all worthwhile.",
    "Une histoire magnifique, des acteurs formidables.",
    "Die Handlung war langweilig und die Schauspieler waren schlecht.",
    "10/10 would watch again",
    "1/10. Avoid.",
    "?!?! ...",
    "meh",
    "The director clearly had a vision, and the cast commits to it completely. " * 12,
    "I kept checking my watch. The dialogue is clumsy, the jokes fall flat, and the twist is "
    "visible from the opening scene. " * 10,
    "At first I thought this would be another forgettable sequel, with the same tired jokes and "
    "the same recycled villains. " * 8 + "But by the end I was won over: it is wonderful.",
    "Great actors, great director, great budget. " * 10 + "Shame the film itself is awful.",
    "My grandmother recommended it and she was right, as always.",
    "The special effects were cheap but honestly that added to the charm.",
    "Save your money.",
    "A slow, thoughtful drama that rewards patience.",
)


def default_texts(n: int = VERIFY_N, split: str = "test") -> tuple[list[str], str]:
    """(``n`` IMDb reviews, a fixed sample (seed 0), or :data:`SAMPLE_REVIEWS`; their source)."""
    from reviewsense.data import read_table, resolve_imdb_dir

    folder = resolve_imdb_dir()
    path = Path(folder) / f"{split}.parquet" if folder is not None else None
    if path is None or not path.is_file():
        log.warning("no local IMDb data: verifying on %d built-in reviews", len(SAMPLE_REVIEWS))
        return list(SAMPLE_REVIEWS), "built-in sample reviews"
    frame = read_table(path)
    frame = frame.sample(n=min(n, len(frame)), random_state=0)
    return frame["text"].astype(str).tolist(), f"IMDb {split} ({path}), {len(frame)} reviews"


def compare(
    reference: Sequence[float],
    candidate: Sequence[float],
    tol: Tolerance,
    min_agreement: float = 0.0,
) -> tuple[dict, list[str]]:
    """Compare P(positive) of a candidate with the reference.

    Returns:
        (metrics dict, list of failure messages — empty when within ``tol`` and
        ``min_agreement``)
    """
    ref, cand = np.asarray(reference, float), np.asarray(candidate, float)
    diff = np.abs(ref - cand)
    agree = (ref >= 0.5) == (cand >= 0.5)
    decisive = np.abs(ref - 0.5) > tol.dp_limit
    bounded = float(np.quantile(diff, tol.dp_quantile))
    m = {
        "n_samples": int(ref.size),
        "max_abs_diff": float(diff.max()),
        "p99_abs_diff": float(np.quantile(diff, 0.99)),
        "mean_abs_diff": float(diff.mean()),
        "label_agreement": float(agree.mean()),
        "decisive_samples": int(decisive.sum()),
        "decisive_label_agreement": float(agree[decisive].mean()) if decisive.any() else 1.0,
    }
    failures = []
    if bounded > tol.dp_limit:
        failures.append(f"{tol.dp_name} |Δp| {bounded:.4g} > {tol.dp_limit:g}")
    if m["mean_abs_diff"] > tol.mean_abs_diff:
        failures.append(f"mean |Δp| {m['mean_abs_diff']:.4g} > {tol.mean_abs_diff:g}")
    if m["decisive_label_agreement"] < tol.min_label_agreement:
        failures.append(
            f"label agreement {m['decisive_label_agreement']:.3f} on "
            f"{m['decisive_samples']} decisive samples < {tol.min_label_agreement:g}"
        )
    if m["label_agreement"] < min_agreement:
        failures.append(
            f"label agreement {m['label_agreement']:.4f} on {m['n_samples']} reviews "
            f"< --min-agreement {min_agreement:g}"
        )
    return m, failures


def verify_predictor(
    model_dir: str | Path,
    candidate,
    texts: Sequence[str],
    precision: str,
    min_agreement: float = MIN_AGREEMENT,
    num_threads: int | None = None,
    p_ref: Sequence[float] | None = None,
) -> tuple[dict, list[str]]:
    """Score ``texts`` with PyTorch fp32 on ``model_dir`` and with ``candidate`` (a Predictor).

    ``p_ref``: the PyTorch fp32 P(positive) of ``texts`` when already computed (saves a pass).

    Returns:
        (:func:`compare` metrics, failures) under ``TOLERANCES[precision]``.
    """
    if p_ref is None:
        p_ref = torch_probs(model_dir, "fp32", texts, num_threads)
    p_cand = [p.prob_positive for p in candidate.predict(texts)]
    return compare(p_ref, p_cand, TOLERANCES[precision], min_agreement)


def torch_probs(
    model_dir: str | Path, precision: str, texts: Sequence[str], num_threads: int | None
) -> list[float]:
    """P(positive) of ``texts`` from the folder's torch Predictor at ``precision``."""
    from reviewsense.inference.predictor import Predictor

    pred = Predictor.from_pretrained(
        model_dir, backend="torch", precision=precision, num_threads=num_threads
    )
    return [p.prob_positive for p in pred.predict(texts)]


def record_bf16_check(
    model_dir: str | Path,
    texts: Sequence[str],
    source: str,
    num_threads: int | None = None,
    p_bf16: Sequence[float] | None = None,
) -> dict:
    """Check the folder's bf16 torch path against fp32 on ``texts`` and record the result.

    The record (:func:`compare` metrics under ``TOLERANCES["bf16"]`` and :data:`MIN_AGREEMENT`,
    plus ``passed``, ``failures`` and ``source``) is written to the model folder's
    ``bf16_verification`` (``rundir.ModelSettings``): where it did not pass, precision
    ``auto`` runs the folder in fp32. ``p_bf16``: P(positive) of ``texts`` already computed
    by the bf16 Predictor (saves a pass); computed here when None.
    """
    from reviewsense import rundir

    cand = torch_probs(model_dir, "bf16", texts, num_threads) if p_bf16 is None else p_bf16
    ref = torch_probs(model_dir, "fp32", texts, num_threads)
    metrics, failures = compare(ref, cand, TOLERANCES["bf16"], MIN_AGREEMENT)
    record = {"passed": not failures, "failures": failures, "source": source, **metrics}
    settings = rundir.read_model_settings(model_dir)
    settings.bf16_verification = record
    rundir.write_model_settings(model_dir, settings)
    log.info(
        "bf16 vs fp32 on %s: agreement %.4f, p99 |dp| %.3g, max |dp| %.3g%s",
        source, record["label_agreement"], record["p99_abs_diff"], record["max_abs_diff"],
        "" if record["passed"] else f" — FAILED ({'; '.join(failures)}): `auto` runs fp32",
    )  # fmt: skip
    return record


def verify_bf16(
    model_dir: str | Path,
    texts: Sequence[str],
    min_agreement: float = MIN_AGREEMENT,
    num_threads: int | None = None,
) -> tuple[dict, list[str]]:
    """The torch bf16 path checked exactly like an export (same texts, same limits)."""
    from reviewsense.inference.predictor import Predictor

    cand = Predictor.from_pretrained(
        model_dir, backend="torch", precision="bf16", num_threads=num_threads
    )
    return verify_predictor(model_dir, cand, texts, "bf16", min_agreement, num_threads)
