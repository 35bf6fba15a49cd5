"""The words of the overfitting verdict: one finding that states both kinds with numbers.

Only wording lives here; :mod:`reviewsense.analysis.overfitting` decides.
"""

from __future__ import annotations

import numpy as np

from reviewsense.analysis.series import finding, rnd
from reviewsense.analysis.trainer_state import TrainerState

_BAND_SOURCE = {
    "binomial": "binomial standard error, 1.96*sqrt(p(1-p)/n) with n={n} ({where})",
    "series_mad": "estimated from the eval series itself (MAD of successive differences)",
    "floor": "the minimum change counted ({floor})",
}
_DIFFERENCE = (
    "Loss and metric measure different things: eval loss also punishes confidence, so it "
    "rises when the model grows over-confident on the examples it gets wrong, while "
    "{metric} only counts how many it gets wrong."
)


def band_text(j: dict, detail: dict) -> str:
    floor = "5% of the best eval loss" if j["key"] == "loss" else "1% of the best value"
    how = _BAND_SOURCE[j["band_source"]].format(
        n=detail.get("eval_size"), where=detail.get("eval_size_source"), floor=floor
    )
    return f"±{rnd(j['band'], 3)} ({how})"


def _series_text(j: dict, detail: dict) -> str:
    name = "eval loss" if j["key"] == "loss" else j["key"]
    b, last = j["best"], j["last"]
    return (
        f"{name} was best at epoch {b['epoch']} (step {b['step']}, {rnd(b['value'])}) and "
        f"{rnd(last['value'])} at the last evaluation (epoch {last['epoch']}); noise band "
        f"{band_text(j, detail)}"
    )


_UNDECIDED = {
    "too_few": "only {n} evaluation(s): at least 3 are needed to tell a trend from a bump",
    "unsettled": "it is worse at the end but not at every evaluation since its best; one "
    "evaluation is not a trend, one or two more would tell",
    "no_train_loss": "it rose, but the log has too little training loss to tell "
    "overfitting (training loss falling) from instability",
    "train_flat": "it rose while the training loss did not fall: that is not overfitting "
    "but instability (learning rate, data order or a bad batch)",
}


def _judgement(j: dict, detail: dict) -> str:
    name = "eval loss" if j["key"] == "loss" else j["key"]
    text = _series_text(j, detail)
    if j["pattern"] == "run_selection":
        return (
            f"Overfitting by metric, as the run's own selection found: {j['run_reason']} "
            f"(paired test on the same validation reviews; here {text})."
        )
    if j["verdict"] is True:
        extra = " while the training loss kept falling" if j["key"] == "loss" else ""
        return f"Overfitting by {'loss' if j['key'] == 'loss' else 'metric'}: {text}{extra}."
    if j["verdict"] is False:
        return f"No overfitting by {name}: {text}; the last is within the band of the best."
    why = _UNDECIDED[j["pattern"]].format(n=j["evaluations"])
    return f"By {name} undecided: {text}; {why}."


def _recommendation_text(out: dict) -> str:
    if out["recommended_checkpoint"] is None:
        return ""
    msg = (
        f"Recommended: epoch {out['recommended_epochs']}, checkpoint "
        f"{out['recommended_checkpoint']} ({out['recommended_reason']})."
    )
    if out.get("recommended_checkpoint_by_loss"):
        msg += (
            f" The lowest eval loss is at {out['recommended_checkpoint_by_loss']} (epoch "
            f"{out['recommended_epochs_by_loss']}); the recommendation follows the selection "
            "metric instead, because that is what the run is judged by. Prefer the lowest-loss "
            "checkpoint only when calibrated probabilities matter more than the metric."
        )
    return msg


def _evidence(by_loss: dict | None, by_metric: dict | None, out: dict) -> dict:
    ev: dict = {"overfitting_detail": out["overfitting_detail"]}
    for name, j in (("by_loss", by_loss), ("by_metric", by_metric)):
        if j is not None:
            ev[name] = {k: v for k, v in j.items() if k != "band"} | {"band": rnd(j["band"], 4)}
    ev["recommended_checkpoint"] = out["recommended_checkpoint"]
    ev["recommended_checkpoint_by_loss"] = out["recommended_checkpoint_by_loss"]
    return ev


def overfitting_findings(
    state: TrainerState,
    rows: list[dict],
    out: dict,
    by_loss: dict | None,
    by_metric: dict | None,
) -> list[dict]:
    """The verdict finding, ``metric_loss_disagree`` when it applies, and the gap finding."""
    if not rows:
        return [no_eval_finding(state)]
    detail = out["overfitting_detail"]
    parts = [_judgement(j, detail) for j in (by_loss, by_metric) if j is not None]
    verdict = out["overfitting"]
    if by_loss and by_metric and by_loss["verdict"] != by_metric["verdict"]:
        parts.append(_DIFFERENCE.format(metric=by_metric["key"]))
    parts.append(_recommendation_text(out))
    kind = {True: "overfitting", False: "no_overfitting", None: "overfitting_undeterminable"}
    found = [
        finding(
            kind[verdict], " ".join(p for p in parts if p), **_evidence(by_loss, by_metric, out)
        )
    ]
    if by_loss and by_metric and by_loss["verdict"] is True and by_metric["verdict"] is False:
        found.append(_disagree(by_loss, by_metric, out))
    gap = gap_finding(rows)
    return found + ([gap] if gap else [])


def _disagree(by_loss: dict, by_metric: dict, out: dict) -> dict:
    m = by_metric["key"]
    return finding(
        "metric_loss_disagree",
        f"Eval loss and {m} disagree: eval loss is lowest at epoch {by_loss['best']['epoch']} "
        f"and {by_loss['change']:+.4g} higher at the end, but {m} is best at epoch "
        f"{by_metric['best']['epoch']} and the last evaluation is within its noise band. The "
        f"model keeps getting about as many examples right while growing over-confident on "
        f"the ones it gets wrong. Checkpoint by {m}: checkpoint-{by_metric['best']['step']}; "
        f"by loss: checkpoint-{by_loss['best']['step']}; recommended: "
        f"{out['recommended_checkpoint']}.",
        loss_best=by_loss["best"],
        loss_last=by_loss["last"],
        metric=m,
        metric_best=by_metric["best"],
        metric_last=by_metric["last"],
        metric_noise_band=rnd(by_metric["band"], 4),
        recommended_checkpoint=out["recommended_checkpoint"],
        recommended_checkpoint_by_loss=out["recommended_checkpoint_by_loss"],
    )


def gap_finding(rows: list[dict]) -> dict | None:
    gaps = [r for r in rows if r["train_eval_gap"] is not None]
    if not gaps:
        return None
    first, last = gaps[0], gaps[-1]
    return finding(
        "train_eval_gap",
        f"Train-eval loss gap went from {first['train_eval_gap']} (epoch {first['epoch']}: train "
        f"{first['train_loss']}, eval {first['eval_loss']}) to {last['train_eval_gap']} (epoch "
        f"{last['epoch']}: train {last['train_loss']}, eval {last['eval_loss']}).",
        gaps=[[r["epoch"], r["train_eval_gap"]] for r in gaps][:60],
    )


def no_eval_finding(state: TrainerState) -> dict:
    bs = state.header.get("train_batch_size")
    fin = state.loss[np.isfinite(state.loss)]
    tail = fin[-max(3, fin.size // 10) :] if fin.size else fin
    msg = (
        "No evaluation entries in this log, so overfitting can be neither confirmed nor ruled "
        "out (overfitting: null). Ups and downs of the training loss"
    )
    if tail.size:
        msg += f" (between {tail.min():.4g} and {tail.max():.4g} over the last {tail.size} logs"
        msg += f", batch size {bs})" if bs else ")"
    msg += (
        " are minibatch noise, not evidence of overfitting; a falling training loss only shows "
        "the model fits its training data. Evaluate on held-out data each epoch "
        "(eval_strategy='epoch') to find out."
    )
    if fin.size and fin[-1] < 0.05:
        msg += (
            f" The final training loss ({fin[-1]:.3g}) is near zero: the model may have "
            "memorised the training set."
        )
    return finding(
        "no_eval",
        msg,
        train_batch_size=bs,
        recent_loss_min=rnd(float(tail.min())) if tail.size else None,
        recent_loss_max=rnd(float(tail.max())) if tail.size else None,
        recent_logs=int(tail.size),
    )
