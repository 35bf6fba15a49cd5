"""``bench_train.py``'s speed parts: the candidate recipes and their timing.

``--part speed``: every candidate (:data:`CANDIDATES`; :data:`USER` and :data:`DEFAULT` are the
two the accuracy part trains too) built in this process and stepped round-robin on the same
batches (:func:`speed`). ``--part process``: :data:`PROCESS_VARIANTS` as alternating
subprocesses of ``bench_train.py --worker`` (:func:`process_speed`, :func:`worker`), rows per
variant (:func:`process_rows`). Ratios are medians of per-round ratios (:func:`paired_ratio`).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import profile_train_step as harness  # shared batches/model/step helpers

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().with_name("bench_train.py")  # --part process's worker
log = logging.getLogger("bench_train")

# name -> recipe. "default" is what `reviewsense train` does; "user" is the user's way.
CANDIDATES = {
    "user (fp32, padded to max_length, random batches)": dict(
        precision="fp32", pad_to_max=True, grouped=False
    ),
    "default (bf16 autocast, dynamic padding, length-bucketed batches in random order)": {},
    "+ attention dropout 0 (fused SDPA)": dict(attention_dropout=0.0),
    "+ attention dropout 0, foreach AdamW": dict(attention_dropout=0.0, optimizer="foreach"),
    "+ attention dropout 0, frozen word embeddings": dict(
        attention_dropout=0.0, freeze_embeddings=True
    ),
    "+ all dropout 0": dict(attention_dropout=0.0, all_dropout_zero=True),
    "+ attention dropout 0, bf16 weights (no casts; ceiling)": dict(
        attention_dropout=0.0, bf16_weights=True
    ),
    "+ attention dropout 0, torch.compile": dict(attention_dropout=0.0, compile=True),
    "+ attention dropout 0, bf16 matmul attention": dict(
        attention_dropout=0.0, matmul_attention=True
    ),
    "+ attention dropout 0, bf16 matmul attention as of 2026-11-27 (fp32 softmax)": dict(
        attention_dropout=0.0, matmul_attention="fp32_softmax"
    ),
    "+ attention dropout 0, word dropout": dict(attention_dropout=0.0, dropout_kernel="words"),
    "+ attention dropout 0, bf16 matmul attention, word dropout": dict(
        attention_dropout=0.0, matmul_attention=True, dropout_kernel="words"
    ),
    "reviewsense train (its auto attention and dropout kernels on this machine)": dict(
        attention_dropout=0.0, auto_kernels=True
    ),
}
DEFAULT = "default (bf16 autocast, dynamic padding, length-bucketed batches in random order)"
USER = "user (fp32, padded to max_length, random batches)"
# What `reviewsense train` does after this benchmark's decisions (the speedup's numerator).
REVIEWSENSE = "reviewsense train (its auto attention and dropout kernels on this machine)"


def _fp32_softmax_attention(module, query, key, value, attention_mask, scaling=None, **kw):
    """reviewsense.attention's kernel as it was before 2026-11-28 (softmax in fp32 under
    autocast, scores scaled after the matmul), kept here to measure the change side by side."""
    import torch

    scores = torch.matmul(query, key.transpose(2, 3)) * (scaling or query.size(-1) ** -0.5)
    if attention_mask is not None:
        scores = scores + attention_mask.clamp(min=torch.finfo(scores.dtype).min).to(scores.dtype)
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs


def _use_legacy_attention(model) -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    AttentionInterface.register("bench_fp32_softmax", _fp32_softmax_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register("bench_fp32_softmax", eager_mask)
    model.set_attn_implementation("bench_fp32_softmax")


# -- speed: in-process, interleaved -------------------------------------------------------------
def _build(recipe: dict, max_length: int):
    """(step function, setup seconds) for one candidate recipe."""
    import torch

    t0 = time.perf_counter()
    model, tok = harness.load_model(
        recipe.get("attention_dropout"), recipe.get("freeze_embeddings", False)
    )
    if recipe.get("matmul_attention") == "fp32_softmax":
        _use_legacy_attention(model)
    elif recipe.get("matmul_attention"):
        from reviewsense.attention import use_bf16_matmul_attention

        use_bf16_matmul_attention(model)
    if recipe.get("auto_kernels"):  # exactly what `reviewsense train` applies
        from reviewsense.attention import apply_training_kernel
        from reviewsense.dropout import apply_dropout_kernel

        apply_training_kernel(model, "auto", recipe.get("precision", "bf16"))
        apply_dropout_kernel(model, "auto")
    if recipe.get("dropout_kernel"):
        from reviewsense.dropout import apply_dropout_kernel

        apply_dropout_kernel(model, recipe["dropout_kernel"])
    if recipe.get("all_dropout_zero"):
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    precision = recipe.get("precision", "bf16")
    if recipe.get("bf16_weights"):
        model.to(torch.bfloat16)  # ceiling only: no fp32 master copy
        precision = "fp32"  # no autocast needed
    forward = torch.compile(model) if recipe.get("compile") else None
    opt = harness.make_optimizer(model, recipe.get("optimizer", "fused"))
    collator = harness.make_collator(tok, max_length if recipe.get("pad_to_max") else None)
    step = harness.make_step(model, opt, collator, precision, forward)
    used = "fp32" if precision == "fp32" else "bf16 autocast"  # as recorded per variant
    if recipe.get("bf16_weights"):
        used = "bf16 weights, no autocast"
    return step, tok, time.perf_counter() - t0, used


def speed(names: list[str], max_length: int, rounds: int, warmup: int, batch: int) -> list[dict]:
    """Per-step times of ``names``, interleaved round-robin on the same batches."""
    from reviewsense.progress import LogProgress

    built, tok = {}, None
    for name in names:
        step, tok, setup_s, used = _build(CANDIDATES[name], max_length)
        built[name] = {"step": step, "setup_s": setup_s, "times": [], "precision": used}
    grouped = harness.recipe_batches(tok, max_length, batch, warmup + rounds, seed=1)
    randoms = harness.recipe_batches(tok, max_length, batch, warmup + rounds, seed=1, grouped=False)
    progress = LogProgress(f"{max_length} tokens: steps", (warmup + rounds) * len(built), "steps")
    for k in range(warmup + rounds):
        for i, (name, b) in enumerate(built.items()):
            feats = (randoms if CANDIDATES[name].get("grouped") is False else grouped)[k]
            t0 = time.perf_counter()
            loss = b["step"](feats)
            dt = time.perf_counter() - t0
            if k == 0:
                b["first_step_s"] = dt  # includes torch.compile's compilation
            if k >= warmup:
                b["times"].append(dt)
            log.info("%d tokens, step %d, %s: %.2f s (loss %.3f)", max_length, k, name, dt, loss)
            progress.update(k * len(built) + i + 1)
    rows = []
    for name, b in built.items():
        med = statistics.median(b["times"])
        rows.append(
            {
                "name": name,
                "max_length": max_length,
                "precision": b["precision"],
                "ms_per_step_median": 1000 * med,
                "ms_per_step": [round(1000 * t) for t in b["times"]],
                "examples_per_s": batch / med,
                "val_accuracy": None,  # speed part only: see --part accuracy
                "setup_s": b["setup_s"],
                "first_step_s": b["first_step_s"],
            }
        )
    base = next((r for r in rows if r["name"] == DEFAULT), None)
    for r in rows:
        r["ratio_vs_default"] = r["examples_per_s"] / base["examples_per_s"] if base else None
        r["ratio_vs_default_paired"] = paired_ratio(base, r) if base else None
    return rows


def paired_ratio(base: dict, row: dict, key: str = "ms_per_step") -> float:
    """Median over rounds of base time / this variant's time in the same round (``key``: the
    per-round times, ``ms_per_step`` in the speed part, ``ms_per_round`` in the process part).

    The runs of one round go back to back, so they share the machine's load at that moment: the
    per-round ratio cancels most of the contention that swings absolute times 2-3x.
    """
    pairs = zip(base[key], row[key], strict=True)
    return statistics.median(b / t for b, t in pairs)


# -- speed: process-level candidates (threads, affinity), alternating subprocesses ---------------
PROCESS_BASE = "1 process x 2 threads (default)"  # every process ratio is against it
PROCESS_VARIANTS = {
    # name -> (launcher prefix, extra environment)
    "1 process x 2 threads (default)": ([], {}),
    "1 process x 2 threads, OMP_PROC_BIND=close OMP_PLACES=cores": (
        [],
        {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"},
    ),
    "1 process x 2 threads, glibc malloc defaults (REVIEWSENSE_MALLOC=default)": (
        [],
        {"REVIEWSENSE_MALLOC": "default"},
    ),
    "torchrun 2 processes x 1 thread (DDP, gloo)": (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"],
        {},
    ),
}


def worker(max_length: int, steps: int, batch: int, warmup: int) -> None:
    """Time ``steps`` steps of `train`'s recipe after ``warmup`` untimed ones; under torchrun,
    DDP with batch/world.

    Prints one JSON line (rank 0) with the per-step seconds.
    """
    import torch
    import torch.distributed as dist

    from reviewsense.runtime import set_threads, world_info

    rank, world = world_info()
    set_threads(None)  # physical cores / world
    if world > 1:
        dist.init_process_group("gloo")
    from reviewsense.attention import apply_training_kernel
    from reviewsense.dropout import apply_dropout_kernel

    model, tok = harness.load_model(attention_dropout=0.0)
    apply_training_kernel(model, "auto", "bf16")  # as `train` does on this machine
    apply_dropout_kernel(model, "auto")
    fwd = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    step = harness.make_step(
        model, harness.make_optimizer(model), harness.make_collator(tok, None), "bf16", fwd
    )
    batches = harness.recipe_batches(tok, max_length, batch, warmup + steps, seed=1)
    per = batch // world
    times = []
    for b in batches:
        t0 = time.perf_counter()
        step(b[rank * per : (rank + 1) * per])  # this rank's share of the global batch
        times.append(time.perf_counter() - t0)
    if rank == 0:
        print("WORKER " + json.dumps({"times": times[warmup:], "threads": torch.get_num_threads()}))
    if world > 1:
        dist.destroy_process_group()


def process_speed(
    max_length: int,
    rounds: int,
    steps: int,
    batch: int,
    names: list[str] | None = None,
    warmup: int = 1,
) -> list[dict]:
    """Alternate one subprocess per variant for ``rounds`` rounds; rows via process_rows."""
    from reviewsense.progress import LogProgress

    names = [PROCESS_BASE, *[n for n in names or PROCESS_VARIANTS if n != PROCESS_BASE]]
    times: dict[str, list[list[float]]] = {n: [] for n in names}
    me = [str(SCRIPT), "--worker", "--max-length", str(max_length)]
    me += ["--steps", str(steps), "--batch-size", str(batch), "--warmup", str(warmup)]
    progress = LogProgress(f"{max_length} tokens: subprocesses", rounds * len(names), "runs", 0)
    for r in range(rounds):
        for i, name in enumerate(names):
            prefix, env = PROCESS_VARIANTS[name]
            cmd = [*(prefix or [sys.executable]), *me]
            out = subprocess.run(
                cmd, env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True
            )
            line = next((x for x in out.stdout.splitlines() if x.startswith("WORKER ")), None)
            if out.returncode != 0 or line is None:
                raise RuntimeError(f"{name} failed: {out.stderr[-2000:]}")
            t = json.loads(line[len("WORKER ") :])["times"]
            times[name].append(t)
            log.info("round %d/%d %s: %s s", r + 1, rounds, name, [round(x, 2) for x in t])
            progress.update(r * len(names) + i + 1)
    return process_rows(times, max_length, batch)


def process_rows(times: dict[str, list[list[float]]], max_length: int, batch: int) -> list[dict]:
    """One row per variant from its step seconds per round (``times[name][round]``, the same
    batches in every round); ``ratio_vs_default``: median over rounds of the default's round
    time / this variant's round time (runs of one round go back to back: paired_ratio)."""
    rows = []
    for n, per_round in times.items():
        flat = [x for r in per_round for x in r]
        med = statistics.median(flat)
        rows.append(
            {
                "name": n,
                "max_length": max_length,
                "precision": "bf16 autocast",  # the worker's, as `train` on a bf16 CPU
                "ms_per_step_median": 1000 * med,
                "ms_per_step": [round(1000 * x) for x in flat],
                "ms_per_round": [1000 * sum(r) for r in per_round],
                "examples_per_s": batch / med,
                "val_accuracy": None,
            }
        )
    base = next(r for r in rows if r["name"] == PROCESS_BASE)
    for r in rows:
        r["ratio_vs_default"] = paired_ratio(base, r, "ms_per_round")
        r["ratio_vs_default_paired"] = r["ratio_vs_default"]
    return rows
