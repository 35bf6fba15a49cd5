"""``train``'s validation evaluations, run by the code ``predict`` runs.

The Trainer's own evaluation loop scores the model it trains as it is: fp32 weights under bf16
autocast (every weight re-cast on every call), the training attention kernel. ``predict`` runs
the saved folder as a bf16 copy with fused linear layers and the inference attention kernel
(:mod:`reviewsense.inference.backends`). :func:`with_predictor_eval` makes every evaluation
score the validation reviews with a :class:`~reviewsense.inference.Predictor` around a copy of
the model being trained (cast like the saved folder's weights would be), so

* the figures the noise-aware rule selects on are the figures the shipped model gives, and
* the chosen evaluation's probabilities *are* the saved model's validation scores:
  ``score_splits`` reuses them instead of a second pass (:meth:`PredictorEval.reused`).

Used for single-process runs in fp32 or bf16; distributed runs and fp16 keep the Trainer's loop.
Cost: one more copy of the weights (in the run's precision, on the run's device) while an
evaluation runs; on the demo (MiniLM, 1,000 reviews, AMD EPYC) 9.0 s an evaluation instead of
the Trainer loop's 10.4-10.8 s (BENCHMARKS.md, "`make demo` end to end").
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np

from reviewsense import rundir
from reviewsense.inference.predictor import BATCH_SIZE

log = logging.getLogger(__name__)


class PredictorEval:
    """Scores the validation reviews with a Predictor around a copy of the trained model.

    Args:
        texts, labels: the validation reviews and 0/1 labels in the evaluation dataset's order
            (shortest first: ``features.length_order``); ``order[i]`` is the bundle row of row i.
        tokenizer, settings: what the saved folder will hold (truncation, max length).
        precision: "fp32" or "bf16", the run's; ``batch_size``: texts per forward pass.
    """

    def __init__(self, texts, labels, order, tokenizer, settings: rundir.ModelSettings,
                 precision: str, batch_size: int = BATCH_SIZE) -> None:  # fmt: skip
        self.texts = list(texts)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.order = np.asarray(order, dtype=np.int64)
        self.tokenizer = tokenizer
        self.settings = settings
        self.precision = precision
        self.batch_size = batch_size
        self.by_step: dict[int, np.ndarray] = {}  # global step -> P(positive), dataset order

    def probs(self, model, step: int) -> np.ndarray:
        """P(positive) of ``model`` (left untouched) on the validation reviews, dataset order."""
        from reviewsense.attention import restore_sdpa
        from reviewsense.inference.predictor import Predictor

        t0 = time.perf_counter()
        twin = copy.deepcopy(model)  # the copy is cast and fused; training goes on with model
        restore_sdpa(twin)  # off the training attention kernel; the Predictor picks its own
        device = str(next(model.parameters()).device)
        predictor = Predictor.from_model(
            twin,
            self.tokenizer,
            self.settings,
            precision=self.precision,
            device=device,
            batch_size=self.batch_size,
        )
        p = np.array([x.prob_positive for x in predictor.predict(self.texts)], dtype=np.float64)
        self.by_step[step] = p
        log.info(
            "validation at step %d: %d reviews scored by the predict path (%s) in %.1f s",
            step,
            len(p),
            self.precision,
            time.perf_counter() - t0,
        )
        return p

    def reused(self, step: int | None) -> np.ndarray | None:
        """The evaluation at ``step`` in the bundle's row order, if this process made it."""
        p = self.by_step.get(step) if step is not None else None
        if p is None:
            return None
        out = np.empty_like(p)
        out[self.order] = p
        return out


def with_predictor_eval(trainer_cls):
    """``trainer_cls`` whose ``evaluation_loop`` uses ``self.predictor_eval`` when set."""
    from transformers.trainer_utils import EvalLoopOutput, EvalPrediction, denumpify_detensorize

    class PredictorEvalTrainer(trainer_cls):
        predictor_eval: PredictorEval | None = None

        def evaluation_loop(
            self,
            dataloader,
            description,
            prediction_loss_only=None,
            ignore_keys=None,
            metric_key_prefix="eval",
        ):
            pe = self.predictor_eval
            if pe is None or description != "Evaluation":  # Trainer.predict keeps its loop
                return super().evaluation_loop(
                    dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
                )
            p = np.clip(pe.probs(self.model, self.state.global_step), 1e-12, 1 - 1e-12)
            logits = np.log(np.stack([1 - p, p], axis=1))  # softmax of these is (1-p, p)
            metrics = dict(self.compute_metrics(EvalPrediction(logits, pe.labels)))
            # the Trainer's loss is the mean cross-entropy: the log loss compute_metrics
            # (EvalRecorder -> metrics.binary_metrics) already has
            metrics["loss"] = metrics["log_loss"]
            metrics = {
                f"{metric_key_prefix}_{k}": v for k, v in denumpify_detensorize(metrics).items()
            }
            return EvalLoopOutput(
                predictions=logits, label_ids=pe.labels, metrics=metrics, num_samples=len(p)
            )

    return PredictorEvalTrainer
