"""Assemble the diagnosis of one trainer state: run facts, curves, overfitting, health checks.

Everything here is pure computation on :class:`TrainerState` (no files, no plotting) and
returns a plain JSON-ready dict. Each conclusion is a finding with the numbers and steps that
support it; where the log cannot support a conclusion the answer is ``None``.
"""

from __future__ import annotations

from reviewsense.analysis.checks import health_checks
from reviewsense.analysis.curves import grad_norm_analysis, loss_analysis, loss_spikes, lr_schedule
from reviewsense.analysis.overfitting import overfitting_analysis
from reviewsense.analysis.selection import eval_rows, infer_selection_metric
from reviewsense.analysis.series import epoch_boundaries, epoch_num, epochs_from_steps, finding, rnd
from reviewsense.analysis.trainer_state import TrainerState

# Every finding kind the analysis can emit (``--fail-on`` accepts these names).
FINDING_KINDS = frozenset(
    {
        "best_checkpoint", "checkpoint_used", "class_imbalance", "comparison", "empty_log",
        "eval_spike", "grad_norm_spikes", "incomplete_run", "log_note", "loss_collapse",
        "loss_spikes", "loss_trend", "lowest_loss", "lr_schedule", "max_steps_cut",
        "metric_loss_disagree", "no_eval", "no_grad_norm", "no_overfitting", "nonfinite_grad_norm",
        "nonfinite_loss", "not_learning", "overfitting", "overfitting_undeterminable",
        "resumed_run", "train_eval_gap", "train_loss_explained",
    }
)  # fmt: skip
# The findings added for issue 12, shown side by side when runs are compared.
HEALTH_KINDS = (
    "not_learning",
    "loss_collapse",
    "eval_spike",
    "resumed_run",
    "class_imbalance",
    "metric_loss_disagree",
    "train_loss_explained",
)


def run_info(state: TrainerState) -> dict:
    """Steps, epochs, batch size, logging/eval/save steps, best checkpoint, timing."""
    h, s = state.header, state.summary_row or {}
    return {
        "trainer_state": str(state.path),
        "checkpoint_note": state.checkpoint_note,
        "global_step": h.get("global_step"),
        "max_steps": h.get("max_steps"),
        "epochs": epoch_num(h["epoch"]) if isinstance(h.get("epoch"), int | float) else None,
        "num_train_epochs": h.get("num_train_epochs"),
        "train_batch_size": h.get("train_batch_size"),
        "logging_steps": h.get("logging_steps"),
        "eval_steps": h.get("eval_steps"),
        "save_steps": h.get("save_steps"),
        "best_model_checkpoint": h.get("best_model_checkpoint"),
        "best_metric": h.get("best_metric"),
        "best_global_step": h.get("best_global_step"),
        "best_metric_name": infer_selection_metric(state),
        "train_runtime_s": s.get("train_runtime"),
        "train_samples_per_second": s.get("train_samples_per_second"),
        "mean_train_loss": s.get("train_loss"),
        "n_train_logs": state.n_train,
        "n_eval_logs": len(state.evals),
        "has_grad_norm": state.has_grad_norm,
    }


def _stop_findings(run: dict, control: dict) -> list[dict]:
    """A mid-run checkpoint, or max_steps ending training before num_train_epochs."""
    out = []
    gs, ms = run["global_step"], run["max_steps"]
    if isinstance(gs, int) and isinstance(ms, int) and 0 < gs < ms:
        stopped = control.get("should_training_stop")
        out.append(
            finding(
                "incomplete_run",
                f"This state is from step {gs} of max_steps {ms} (epoch {run['epochs']} of "
                f"{run['num_train_epochs']}): a mid-run checkpoint or a stopped run"
                + (" (should_training_stop is false)." if stopped is False else "."),
                global_step=gs,
                max_steps=ms,
                should_training_stop=stopped,
            )
        )
    ep, nte = run["epochs"], run["num_train_epochs"]
    if (
        isinstance(gs, int)
        and gs == ms
        and isinstance(ep, int | float)
        and isinstance(nte, int | float)
        and ep < nte - 0.01
    ):
        out.append(
            finding(
                "max_steps_cut",
                f"max_steps={ms} ended training at epoch {ep}, before num_train_epochs={nte}.",
                max_steps=ms,
                epochs=ep,
                num_train_epochs=nte,
            )
        )
    return out


def _run_findings(state: TrainerState, run: dict) -> list[dict]:
    out = []
    if state.checkpoint_note:
        out.append(
            finding(
                "checkpoint_used",
                f"Analysed {state.path}: {state.checkpoint_note}.",
                path=str(state.path),
            )
        )
    control = (
        (state.header.get("stateful_callbacks") or {}).get("TrainerControl", {}).get("args", {})
    )
    out += _stop_findings(run, control)
    for note in state.notes:
        out.append(finding("log_note", note[0].upper() + note[1:] + "."))
    if run.get("best_model_checkpoint"):
        name = run["best_metric_name"] or "unknown metric"
        out.append(
            finding(
                "best_checkpoint",
                f"The Trainer's best checkpoint is {run['best_model_checkpoint']} ({name} = "
                f"{rnd(run['best_metric'], 6)}).",
                best_model_checkpoint=run["best_model_checkpoint"],
                best_metric=run["best_metric"],
                metric=name,
            )
        )
    return out


def diagnose(state: TrainerState, eval_size: int | None = None) -> dict:
    """Full analysis of one trainer state as a JSON-ready summary dict.

    Args:
        state: a parsed trainer state.
        eval_size: examples per evaluation, when the user knows it (``--eval-size``); else
            taken from reviewsense's ``metrics.json`` or ``eval_samples`` when present.

    Returns:
        The summary (keys ``run``, ``loss_table``, ``lowest_loss``, ``final_loss``,
        ``lr_schedule``, ``spikes``, ``eval``, ``overfitting``, ``overfitting_detail``,
        ``recommended_epochs``, ``recommended_checkpoint``, ``findings`` and more detail).
    """
    state = epochs_from_steps(state)
    run = run_info(state)
    findings = _run_findings(state, run)
    if state.n_train == 0 and not state.evals:
        findings.append(
            finding(
                "empty_log",
                "The log_history has no training or evaluation entries: nothing to analyse.",
            )
        )
    loss, f_loss = loss_analysis(state)
    lr, f_lr = lr_schedule(state)
    grad, spikes, f_grad = (
        grad_norm_analysis(state) if state.n_train else ({"available": False}, [], [])
    )
    lspikes, f_lspikes = loss_spikes(state)
    rows = eval_rows(state)
    over, f_over = overfitting_analysis(state, rows, eval_size)
    if not rows and not state.n_train:
        f_over = []
    health = health_checks(state, rows)
    _no_verdict_without_learning(over, f_over, health)
    return {
        "schema": "reviewsense.analyze/2",
        "run": run,
        "loss_table": loss["loss_table"],
        "lowest_loss": loss["lowest_loss"],
        "final_loss": loss["final_loss"],
        "loss_trend": loss["loss_trend"],
        "loss_by_epoch": loss.get("loss_by_epoch", []),
        "lr_schedule": lr,
        "spikes": spikes,
        "grad_norm": grad,
        "loss_spikes": lspikes,
        "eval": rows,
        **over,
        "epoch_boundaries": [{"epoch": k, "step": s} for k, s in epoch_boundaries(state)][:1000],
        "findings": findings + f_loss + f_lr + f_grad + f_lspikes + f_over + health,
    }


def _no_verdict_without_learning(over: dict, f_over: list[dict], health: list[dict]) -> None:
    """A model stuck at the uniform-guess loss has no checkpoint worth recommending.

    Neither "no overfitting" nor "use epoch N" is a useful answer then: both become None and
    the reason says why (the ``not_learning`` finding carries the numbers).
    """
    stuck = [
        f for f in health if f["kind"] == "not_learning" and f["evidence"].get("classes_guess")
    ]
    if not stuck:
        return
    over.update(
        overfitting=None,
        overfitting_start_epoch=None,
        recommended_epochs=None,
        recommended_checkpoint=None,
        recommended_step=None,
        recommended_checkpoint_by_loss=None,
        recommended_reason="none: the model did not learn (see not_learning)",
    )
    for f in f_over:
        if f["kind"] in ("overfitting", "no_overfitting"):
            f["kind"] = "overfitting_undeterminable"
            f["message"] = (
                "The model did not learn (see not_learning), so there is no overfitting verdict "
                "and no checkpoint to recommend. Series as logged: "
                + f["message"].split(" Recommended:")[0]
            )


def finding_kinds(summary: dict) -> set[str]:
    """The kinds present in a summary (what ``--fail-on`` checks)."""
    return {f["kind"] for f in summary.get("findings", [])}
