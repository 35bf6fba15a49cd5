"""Training speed and accuracy: the user's way vs reviewsense's defaults, and the candidates.

Two parts, both written to ``--json FILE`` as ``{"variants": [...], "speedup": ..., ...}``:

``--part speed`` (short; fine on a busy machine): every variant trains in this process on the
same real IMDb batches, steps interleaved round-robin (variant A step k, variant B step k, ...)
so CPU contention hits all variants alike. Reported: ms/step, examples/s, ratio vs the default.
``speedup`` = reviewsense default / the user's way at each ``--max-length``. Process-level
candidates (torchrun 2 x 1 thread, OMP_PROC_BIND affinity) run as alternating subprocesses.

``--part accuracy`` (long; needs an idle machine): ``reviewsense train`` for the user's way and
the default, ``--seeds`` seeds each, same training subset, validation and test reviews per seed;
one run directory per (variant, seed), skipped when its metrics.json exists (resumable). The
paired difference in test accuracy gets a seed t-interval and a cluster bootstrap over reviews.

    python benchmarks/bench_train.py --part speed --max-length 128 256 512 --json speed.json
    python benchmarks/bench_train.py --part accuracy --seeds 3 --epochs 2 --train-size 2000 \\
        --json accuracy.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import profile_train_step as harness  # noqa: E402  (shared batches/model/step helpers)

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
    return step, tok, time.perf_counter() - t0


def speed(names: list[str], max_length: int, rounds: int, warmup: int, batch: int) -> list[dict]:
    """Per-step times of ``names``, interleaved round-robin on the same batches."""
    built, tok = {}, None
    for name in names:
        step, tok, setup_s = _build(CANDIDATES[name], max_length)
        built[name] = {"step": step, "setup_s": setup_s, "times": []}
    grouped = harness.recipe_batches(tok, max_length, batch, warmup + rounds, seed=1)
    randoms = harness.recipe_batches(tok, max_length, batch, warmup + rounds, seed=1, grouped=False)
    for k in range(warmup + rounds):
        for name, b in built.items():
            feats = (randoms if CANDIDATES[name].get("grouped") is False else grouped)[k]
            t0 = time.perf_counter()
            loss = b["step"](feats)
            dt = time.perf_counter() - t0
            if k == 0:
                b["first_step_s"] = dt  # includes torch.compile's compilation
            if k >= warmup:
                b["times"].append(dt)
            log.info("%d tokens, step %d, %s: %.2f s (loss %.3f)", max_length, k, name, dt, loss)
    rows = []
    for name, b in built.items():
        med = statistics.median(b["times"])
        rows.append(
            {
                "name": name,
                "max_length": max_length,
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


def paired_ratio(base: dict, row: dict) -> float:
    """Median over rounds of base step time / this variant's step time in the same round.

    Steps of one round run back to back, so they share the machine's load at that moment: the
    per-round ratio cancels most of the contention that swings absolute times 2-3x.
    """
    pairs = zip(base["ms_per_step"], row["ms_per_step"], strict=True)
    return statistics.median(b / t for b, t in pairs)


# -- speed: process-level candidates (threads, affinity), alternating subprocesses ---------------
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


def worker(max_length: int, steps: int, batch: int) -> None:
    """Time ``steps`` steps of `train`'s recipe; under torchrun, DDP with batch/world.

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
    batches = harness.recipe_batches(tok, max_length, batch, steps + 1, seed=1)
    per = batch // world
    times = []
    for b in batches:
        t0 = time.perf_counter()
        step(b[rank * per : (rank + 1) * per])  # this rank's share of the global batch
        times.append(time.perf_counter() - t0)
    if rank == 0:
        print("WORKER " + json.dumps({"times": times[1:], "threads": torch.get_num_threads()}))
    if world > 1:
        dist.destroy_process_group()


def process_speed(
    max_length: int, rounds: int, steps: int, batch: int, names: list[str] | None = None
) -> list[dict]:
    """Alternate one subprocess per variant for ``rounds`` rounds; median step per variant."""
    base_name = "1 process x 2 threads (default)"  # every ratio is against it
    names = [base_name, *[n for n in names or PROCESS_VARIANTS if n != base_name]]
    times: dict[str, list[float]] = {n: [] for n in names}
    me = [str(Path(__file__).resolve()), "--worker", "--max-length", str(max_length)]
    me += ["--steps", str(steps), "--batch-size", str(batch)]
    for r in range(rounds):
        for name in names:
            prefix, env = PROCESS_VARIANTS[name]
            cmd = [*(prefix or [sys.executable]), *me]
            out = subprocess.run(
                cmd, env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True
            )
            line = next((x for x in out.stdout.splitlines() if x.startswith("WORKER ")), None)
            if out.returncode != 0 or line is None:
                raise RuntimeError(f"{name} failed: {out.stderr[-2000:]}")
            t = json.loads(line[len("WORKER ") :])["times"]
            times[name].extend(t)
            log.info("round %d %s: %s s", r, name, [round(x, 2) for x in t])
    base = statistics.median(times[base_name])
    return [
        {
            "name": n,
            "max_length": max_length,
            "ms_per_step_median": 1000 * statistics.median(t),
            "ms_per_step": [round(1000 * x) for x in t],
            "examples_per_s": batch / statistics.median(t),
            "val_accuracy": None,
            "ratio_vs_default": base / statistics.median(t),
        }
        for n, t in times.items()
    ]


# -- accuracy: `reviewsense train` per (variant, seed), resumable ------------------------------
# folder -> (name, extra flags) for the accuracy part; the ablations each undo one default.
ABLATIONS = {
    "default_attn_dropout_0.1": (
        "default, attention dropout 0.1 (the checkpoint's)",
        ["--set", "attention_dropout=null"],
    ),
    "default_random_batches": (
        "default, random batches (group_by_length=false)",
        ["--set", "group_by_length=false"],
    ),
    "default_fp32": ("default, fp32 (dynamic padding, length buckets)", ["--precision", "fp32"]),
}


def accuracy_variants() -> dict[str, tuple[str, list[str]]]:
    """folder -> (name, extra `reviewsense train` flags); the user's way spelled out in full."""
    from reviewsense.config import known_keys

    user = ["--precision", "fp32", "--set", "dynamic_padding=false"]
    user += ["--set", "group_by_length=false"]
    if "attention_dropout" in known_keys():  # the checkpoint's 0.1, as the user trained
        user += ["--set", "attention_dropout=null"]
    return {"user": (USER, user), "default": (DEFAULT, []), **ABLATIONS}


def _train_cmd(args, out: Path, seed: int, flags: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "reviewsense", "train"]
    if (out / "config.yaml").is_file():  # interrupted: continue from its checkpoint
        return cmd + ["--resume", str(out)]
    cmd += ["--preset", "offline", "--train-size", str(args.train_size)]
    cmd += ["--val-size", str(args.val_size), "--test-size", str(args.test_size)]
    cmd += ["--epochs", str(args.epochs), "--max-length", str(args.max_length[0])]
    return cmd + ["--seed", str(seed), "--no-analysis", "--output", str(out), *flags]


def accuracy(args) -> dict:
    """Train every (variant, seed) not yet done; return variants + the paired comparisons."""
    import numpy as np
    import pandas as pd

    variants = accuracy_variants()
    runs: dict[str, dict[int, Path]] = {}
    for folder in ["user", "default", *args.ablations]:
        name, flags = variants[folder]
        for seed in range(args.seeds):
            out = Path(args.out) / folder / f"seed{seed}"
            runs.setdefault(name, {})[seed] = out
            if (out / "metrics.json").is_file():
                log.info("done already: %s", out)
                continue
            cmd = _train_cmd(args, out, seed, flags)
            log.info("running %s", " ".join(cmd))
            subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ})
    rows, preds = [], {}
    for name, seeds in runs.items():
        ms = {s: json.loads((d / "metrics.json").read_text()) for s, d in seeds.items()}
        preds[name] = {s: pd.read_parquet(d / "test_predictions.parquet") for s, d in seeds.items()}
        rows.append(
            {
                "name": name,
                "examples_per_s": float(
                    np.mean([m["train"]["examples_per_s"] for m in ms.values()])
                ),
                "val_accuracy": float(
                    np.mean([m["best_validation"]["accuracy"] for m in ms.values()])
                ),
                "test_accuracy": float(np.mean([m["test"]["accuracy"] for m in ms.values()])),
                "per_seed_test_accuracy": [ms[s]["test"]["accuracy"] for s in sorted(ms)],
            }
        )
    paired = {"default": _paired(preds[DEFAULT], preds[USER])}
    for folder in args.ablations:
        name = variants[folder][0]
        paired[f"{folder} - user"] = _paired(preds[name], preds[USER], name)
        paired[f"{folder} - default"] = _paired(preds[name], preds[DEFAULT], name, DEFAULT)
    return {"variants": rows, "paired": paired["default"], "paired_ablations": paired}


def _paired(default: dict, user: dict, a: str = DEFAULT, b: str = USER) -> dict:
    """Test accuracy, ``a`` - ``b``: seed t-interval, cluster bootstrap and sign-flip over
    reviews (the argument names keep the default-vs-user reading of the main comparison)."""
    import numpy as np

    from reviewsense.sweep import stats as st

    seeds = sorted(default)
    deltas = [
        float((default[s]["prediction"] == default[s]["label"]).mean())
        - float((user[s]["prediction"] == user[s]["label"]).mean())
        for s in seeds
    ]
    ids = sorted(set().union(*(set(default[s]["row_id"]) for s in seeds)))
    pos = {r: i for i, r in enumerate(ids)}
    shape = (len(ids), len(seeds))
    labels, bp, vp = np.zeros(shape, int), np.zeros(shape, int), np.zeros(shape, int)
    present = np.zeros(shape, bool)
    for j, s in enumerate(seeds):
        d = default[s].merge(user[s], on=["row_id", "label"], suffixes=("_d", "_u"))
        idx = d["row_id"].map(pos).to_numpy()
        labels[idx, j] = d["label"].to_numpy()
        vp[idx, j], bp[idx, j], present[idx, j] = d["prediction_d"], d["prediction_u"], True
    data = st.PairedData(labels=labels, base_pred=bp, var_pred=vp, present=present)
    return {
        "metric": f"test accuracy, {a} - {b}",
        "per_seed": deltas,
        "seed_t_interval": st.t_interval(np.asarray(deltas)).to_dict(),
        "review_cluster_bootstrap": st.paired_bootstrap(data).to_dict(),
        "review_sign_flip_test": st.sign_flip_test(data).to_dict(),
    }


# -- main ---------------------------------------------------------------------------------------
def _table(rows: list[dict]) -> str:
    lines = [
        "| tokens | variant | ms/step (median) | examples/s | vs default | vs default, paired |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio, paired = r.get("ratio_vs_default"), r.get("ratio_vs_default_paired")
        lines.append(
            f"| {r['max_length']} | {r['name']} | {r['ms_per_step_median']:.0f} | "
            f"{r['examples_per_s']:.2f} | {f'{ratio:.2f}x' if ratio else '-'} | "
            f"{f'{paired:.2f}x' if paired else '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--part",
        choices=("speed", "process", "accuracy"),
        default="speed",
        help="speed: in-process candidates; process: threads/affinity/torchrun; "
        "accuracy: full runs per seed (long)",
    )
    ap.add_argument("--max-length", type=int, nargs="+", default=[256], help="tokens per review")
    ap.add_argument(
        "--only", nargs="+", help="speed/process: variant names (default: all; speed: but compile)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="speed: timed steps per variant")
    ap.add_argument("--warmup", type=int, default=1, help="speed: untimed steps per variant")
    ap.add_argument("--batch-size", type=int, default=16, help="reviews per step")
    ap.add_argument("--steps", type=int, default=3, help="process: steps per subprocess")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, default=3, help="accuracy: seeds 0..N-1")
    ap.add_argument("--epochs", type=float, default=2, help="accuracy: epochs per run")
    ap.add_argument("--train-size", type=int, default=2000, help="accuracy: training reviews")
    ap.add_argument("--val-size", type=int, default=500, help="accuracy: validation reviews")
    ap.add_argument("--test-size", type=int, default=2000, help="accuracy: test reviews")
    ap.add_argument("--out", default="runs/bench-train", help="accuracy: run directories")
    ap.add_argument(
        "--ablations",
        nargs="*",
        default=[],
        choices=sorted(ABLATIONS),
        help="accuracy: also train these variants (each undoes one default) and pair them",
    )
    ap.add_argument("--json", type=Path, help="write variants, speedup and environment here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.worker:
        return worker(args.max_length[0], args.steps, args.batch_size)

    from reviewsense.runtime import environment_facts, set_threads

    result: dict = {
        "part": args.part,
        "note": "speed variants are interleaved step by step in one process, so ratios hold "
        "under CPU contention; absolute step times do not (see load_average)",
    }
    if args.part == "accuracy":
        result.update(accuracy(args))
        by = {r["name"]: r for r in result["variants"]}
        result["speedup"] = by[DEFAULT]["examples_per_s"] / by[USER]["examples_per_s"]
    else:
        rows: list[dict] = []
        names = args.only or [n for n in CANDIDATES if "compile" not in n]
        if args.part == "process":
            names = args.only or list(PROCESS_VARIANTS)
        for length in args.max_length:
            if args.part == "speed":
                set_threads(None)
                rows += speed(names, length, args.rounds, args.warmup, args.batch_size)
            else:
                rows += process_speed(length, args.rounds, args.steps, args.batch_size, names)
        result["variants"] = rows
        by = {(r["max_length"], r["name"]): r for r in rows}
        result["speedup_by_tokens"] = {
            str(n): by[(n, REVIEWSENSE)]["examples_per_s"] / by[(n, USER)]["examples_per_s"]
            for n in args.max_length
            if (n, REVIEWSENSE) in by and (n, USER) in by
        }
        result["speedup_paired_by_tokens"] = {
            str(n): paired_ratio(by[(n, USER)], by[(n, REVIEWSENSE)])
            for n in args.max_length
            if (n, REVIEWSENSE) in by and (n, USER) in by and args.part == "speed"
        }
        result["speedup"] = result["speedup_by_tokens"].get("256")
        result["speedup_previous_default_by_tokens"] = {
            str(n): by[(n, DEFAULT)]["examples_per_s"] / by[(n, USER)]["examples_per_s"]
            for n in args.max_length
            if (n, DEFAULT) in by and (n, USER) in by
        }
        print(_table(rows))
    result["environment"] = environment_facts("bf16")
    result["load_average"] = os.getloadavg()  # other jobs on the cores during the run
    print(json.dumps({k: v for k, v in result.items() if k != "variants"}, indent=1, default=str))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
