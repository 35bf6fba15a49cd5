"""Training speed and accuracy: the user's way vs reviewsense's defaults, and the candidates.

Two parts, both written to ``--json FILE`` as ``{"variants": [...], "speedup": ..., ...}``:

``--part speed`` (short; fine on a busy machine): every variant trains in this process on the
same real IMDb batches, steps interleaved round-robin (variant A step k, variant B step k, ...)
so CPU contention hits all variants alike. Reported: ms/step, examples/s, ratio vs the default.
``speedup`` = reviewsense default / the user's way at 256 tokens, the median of the per-round
ratios (``speedup_paired_by_tokens`` at each ``--max-length``; ``speedup_by_tokens``: the ratio
of the medians; result files before 2026-11-29's seventh sitting hold that one in ``speedup``). ``--part process``:
process-level candidates (torchrun 2 x 1 thread, OMP_PROC_BIND affinity, glibc malloc) run as
alternating subprocesses, ``--rounds`` rounds of one subprocess each; ``ratio_vs_default`` is the
median over rounds of the default's round time / the variant's (paired within a round).
Every variant records the precision it ran at (``variants[].precision``).

``--part accuracy`` (long; needs an idle machine): ``reviewsense train`` for the user's way and
the default, ``--seeds`` seeds each, same training subset, validation and test reviews per seed;
one run directory per (variant, seed), skipped when its metrics.json exists (resumable). The
paired difference in test accuracy gets a seed t-interval and a cluster bootstrap over reviews.
``speedup`` here is *not* paired (whole separate runs): written only when every run recorded the
same CPU model and bf16 path, else null; ``speedup_note`` says which. Flags of another part
(``--rounds``, ``--warmup``, ``--batch-size``, ``--only``, ``--steps`` here) are refused.

    python benchmarks/bench_train.py --part speed --max-length 128 256 512 --json speed.json
    python benchmarks/bench_train.py --part accuracy --seeds 3 --epochs 2 --train-size 2000 \\
        --json accuracy.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_speed import (  # noqa: E402  (the speed parts)
    CANDIDATES,
    DEFAULT,
    PROCESS_VARIANTS,
    REVIEWSENSE,
    USER,
    paired_ratio,
    process_speed,
    speed,
    worker,
)

log = logging.getLogger("bench_train")

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
    import pandas as pd

    from reviewsense.progress import LogProgress

    variants = accuracy_variants()
    folders = ["user", "default", *args.ablations]
    progress = LogProgress("accuracy runs", len(folders) * args.seeds, "runs", 0, log)
    runs: dict[str, dict[int, Path]] = {}
    for folder in folders:
        name, flags = variants[folder]
        for seed in range(args.seeds):
            out = Path(args.out) / folder / f"seed{seed}"
            runs.setdefault(name, {})[seed] = out
            if (out / "metrics.json").is_file():
                log.info("done already: %s", out)
            else:
                cmd = _train_cmd(args, out, seed, flags)
                log.info("running %s", " ".join(cmd))
                subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ})
            progress.update(sum(len(v) for v in runs.values()))
    rows, preds = [], {}
    for name, seeds in runs.items():
        preds[name] = {s: pd.read_parquet(d / "test_predictions.parquet") for s, d in seeds.items()}
        rows.append(_accuracy_row(name, seeds))
    paired = {"default": _paired(preds[DEFAULT], preds[USER])}
    for folder in args.ablations:
        name = variants[folder][0]
        paired[f"{folder} - user"] = _paired(preds[name], preds[USER], name)
        paired[f"{folder} - default"] = _paired(preds[name], preds[DEFAULT], name, DEFAULT)
    return {"variants": rows, "paired": paired["default"], "paired_ablations": paired}


def _accuracy_row(name: str, seeds: dict[int, Path]) -> dict:
    """Means over seeds of one variant's runs, with the precision and CPU each run recorded."""
    import numpy as np

    ms = {s: json.loads((d / "metrics.json").read_text()) for s, d in seeds.items()}
    envs = {}
    for s, d in seeds.items():
        f = d / "environment.json"  # written by `train` at the end (the last session's CPU)
        e = json.loads(f.read_text()) if f.is_file() else {}
        envs[s] = f"{e.get('cpu', 'unknown CPU')} (bf16 path {e.get('bf16_path', 'unknown')})"
    return {
        "name": name,
        "examples_per_s": float(np.mean([m["train"]["examples_per_s"] for m in ms.values()])),
        "val_accuracy": float(np.mean([m["best_validation"]["accuracy"] for m in ms.values()])),
        "test_accuracy": float(np.mean([m["test"]["accuracy"] for m in ms.values()])),
        "per_seed_test_accuracy": [ms[s]["test"]["accuracy"] for s in sorted(ms)],
        "precision": sorted({str(m["train"].get("precision")) for m in ms.values()}),
        "environments": sorted(set(envs.values())),
    }


def accuracy_speedup(rows: list[dict]) -> dict:
    """``speedup`` (default / user examples/s over whole runs) only when every run recorded the
    same CPU model and bf16 path; never paired: the runs went one after another, maybe resumed
    in other sessions, so the ratio also holds any change in load between them."""
    by = {r["name"]: r for r in rows}
    envs = sorted({e for r in rows for e in r["environments"]})
    if len(envs) != 1 or "unknown" in envs[0]:
        note = f"not computed: the runs recorded different or unknown environments: {envs}"
        return {"speedup": None, "speedup_paired": False, "speedup_note": note}
    return {
        "speedup": by[DEFAULT]["examples_per_s"] / by[USER]["examples_per_s"],
        "speedup_paired": False,
        "speedup_note": "unpaired: mean examples/s of separate `train` runs one after another "
        f"(all on {envs[0]}); for a side-by-side ratio use --part speed",
    }


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


# flag (argparse dest) -> (the parts it applies to, its default there)
PART_FLAGS: dict[str, tuple[tuple[str, ...], object]] = {
    "only": (("speed", "process"), None),
    "rounds": (("speed", "process"), 3),
    "warmup": (("speed", "process"), 1),
    "batch_size": (("speed", "process"), 16),
    "steps": (("process",), 3),
    "seeds": (("accuracy",), 3),
    "epochs": (("accuracy",), 2.0),
    "train_size": (("accuracy",), 2000),
    "val_size": (("accuracy",), 500),
    "test_size": (("accuracy",), 2000),
    "out": (("accuracy",), "runs/bench-train"),
    "ablations": (("accuracy",), []),
}
AT_LEAST = {"rounds": 1, "warmup": 0, "batch_size": 1, "steps": 1, "seeds": 1}


def part_flag_problem(args: argparse.Namespace) -> str | None:
    """A one-line reason to refuse these arguments, or None; fills in each part's defaults."""
    for dest, (parts, default) in PART_FLAGS.items():
        flag = "--" + dest.replace("_", "-")
        if getattr(args, dest) is None:
            setattr(args, dest, default)
        elif args.part not in parts:
            return f"{flag} is for --part {' / '.join(parts)}, not --part {args.part}"
    for dest, low in AT_LEAST.items():
        values = getattr(args, dest)
        for v in values if isinstance(values, list) else [values]:
            if v < low:
                return f"--{dest.replace('_', '-')} must be at least {low}, got {v}"
    from reviewsense.truncation import max_length_problem

    for n in args.max_length:
        if max_length_problem(n):
            return f"--max-length: {max_length_problem(n)}"
    if args.part == "accuracy" and len(args.max_length) > 1:
        return "--max-length takes one value with --part accuracy (one `train` per run)"
    known = PROCESS_VARIANTS if args.part == "process" else CANDIDATES
    unknown = [n for n in args.only or [] if n not in known]
    if unknown:
        return f"--only: no {args.part} variant {unknown[0]!r}; one of: {', '.join(known)}"
    return None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--part",
        choices=("speed", "process", "accuracy"),
        default="speed",
        help="speed: in-process candidates; process: threads/affinity/torchrun; "
        "accuracy: full runs per seed (long). Flags of another part are refused (default: speed)",
    )
    ap.add_argument(
        "--max-length",
        type=int,
        nargs="+",
        default=[256],
        help="tokens per review; speed/process: each value in turn; accuracy: one value "
        "(default: 256)",
    )
    ap.add_argument(
        "--only", nargs="+", help="speed/process: variant names (default: all; speed: but compile)"
    )
    ap.add_argument(
        "--rounds",
        type=int,
        help="speed: timed steps per variant; process: rounds of one subprocess per variant "
        "(default: 3)",
    )
    ap.add_argument(
        "--warmup",
        type=int,
        help="speed: untimed steps per variant first; process: untimed steps in each "
        "subprocess first (default: 1)",
    )
    ap.add_argument("--batch-size", type=int, help="speed/process: reviews per step (default: 16)")
    ap.add_argument("--steps", type=int, help="process: timed steps per subprocess (default: 3)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, help="accuracy: seeds 0..N-1 (default: 3)")
    ap.add_argument("--epochs", type=float, help="accuracy: epochs per run (default: 2)")
    ap.add_argument("--train-size", type=int, help="accuracy: training reviews (default: 2000)")
    ap.add_argument("--val-size", type=int, help="accuracy: validation reviews (default: 500)")
    ap.add_argument("--test-size", type=int, help="accuracy: test reviews (default: 2000)")
    ap.add_argument(
        "--out", help="accuracy: folder of the run directories (default: runs/bench-train)"
    )
    ap.add_argument(
        "--ablations",
        nargs="*",
        choices=sorted(ABLATIONS),
        help="accuracy: also train these variants (each undoes one default) and pair them "
        "(default: none)",
    )
    ap.add_argument("--json", type=Path, help="write variants, speedup and environment here")
    return ap


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.worker:  # the process part's subprocess: given every flag it needs
        return args
    problem = part_flag_problem(args)
    if problem:
        ap.error(problem)
    return args


def speed_parts(args: argparse.Namespace) -> dict:
    """--part speed / process: variants per --max-length and the speed-ups vs the user's way."""
    from reviewsense.runtime import set_threads

    rows: list[dict] = []
    names = args.only or [n for n in CANDIDATES if "compile" not in n]
    if args.part == "process":
        names = args.only or list(PROCESS_VARIANTS)
    for length in args.max_length:
        if args.part == "speed":
            set_threads(None)
            rows += speed(names, length, args.rounds, args.warmup, args.batch_size)
        else:
            rows += process_speed(
                length, args.rounds, args.steps, args.batch_size, names, args.warmup
            )
    result: dict = {"variants": rows}
    by = {(r["max_length"], r["name"]): r for r in rows}
    lengths = [n for n in args.max_length if (n, REVIEWSENSE) in by and (n, USER) in by]
    result["speedup_by_tokens"] = {
        str(n): by[(n, REVIEWSENSE)]["examples_per_s"] / by[(n, USER)]["examples_per_s"]
        for n in lengths
    }
    result["speedup_paired_by_tokens"] = {
        str(n): paired_ratio(by[(n, USER)], by[(n, REVIEWSENSE)]) for n in lengths
    }
    # The goal's figure: side by side, the median over interleaved rounds of the per-round ratio
    # (speedup_by_tokens, the ratio of the medians, is kept beside it).
    result["speedup"] = result["speedup_paired_by_tokens"].get("256")
    result["speedup_previous_default_by_tokens"] = {
        str(n): by[(n, DEFAULT)]["examples_per_s"] / by[(n, USER)]["examples_per_s"]
        for n in args.max_length
        if (n, DEFAULT) in by and (n, USER) in by
    }
    print(_table(rows))
    return result


def precisions_used(rows: list[dict]) -> str:
    """The precisions the variants ran at, for the environment record ("bf16 autocast, fp32")."""
    used = set()
    for r in rows:
        p = r.get("precision")
        used.update(p if isinstance(p, list) else [p])
    return ", ".join(sorted(str(p) for p in used))


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.worker:
        return worker(args.max_length[0], args.steps, args.batch_size, args.warmup)

    from reviewsense.jsonio import dumps, write_json
    from reviewsense.runtime import environment_facts

    result: dict = {
        "part": args.part,
        "note": "speed variants are interleaved step by step in one process, so ratios hold "
        "under CPU contention; absolute step times do not (see load_average)",
    }
    if args.part == "accuracy":
        result.update(accuracy(args))
        result.update(accuracy_speedup(result["variants"]))
    else:
        result.update(speed_parts(args))
    # per variant: variants[].precision; here the set of them
    result["environment"] = environment_facts(precisions_used(result["variants"]))
    result["load_average"] = os.getloadavg()  # other jobs on the cores during the run
    print(dumps({k: v for k, v in result.items() if k != "variants"}))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, result)


if __name__ == "__main__":
    main()
