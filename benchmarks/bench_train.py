"""Training throughput: the user's way vs reviewsense's defaults, same model/data/epochs.

The user's way: every review padded to max_length, fp32, the Trainer's random batches.
reviewsense: dynamic padding, length-grouped batches, bf16 autocast (AMX), threads = cores.
Each variant runs `reviewsense train` in its own process (honest peak RSS), on the same
stratified IMDb subset and seed. Prints a markdown table for BENCHMARKS.md.

    python benchmarks/bench_train.py --train-size 2000 --epochs 1 --max-length 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {
    # name -> extra CLI flags
    "user (max_length padding, fp32, random batches)": [
        "--precision", "fp32", "--set", "dynamic_padding=false", "--set", "group_by_length=false",
    ],
    "reviewsense fp32 (dynamic padding, length-grouped)": ["--precision", "fp32"],
    "reviewsense default (+ bf16 autocast)": ["--precision", "auto"],
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--train-size", default="2000")
    ap.add_argument("--val-size", default="500")
    ap.add_argument("--epochs", default="1")
    ap.add_argument("--max-length", default="256")
    ap.add_argument("--truncation", default="head_tail")
    ap.add_argument("--lr", default=None)
    ap.add_argument("--out", default="runs/bench-train")
    ap.add_argument("--only", help="run only variants whose name contains this")
    args = ap.parse_args()

    rows = []
    for name, flags in VARIANTS.items():
        if args.only and args.only not in name:
            continue
        out = Path(args.out) / name.split(" ")[0] / str(len(rows))
        cmd = [
            sys.executable, "-m", "reviewsense", "train", "--preset", "offline",
            "--train-size", args.train_size, "--val-size", args.val_size, "--test-size", "1",
            "--epochs", args.epochs, "--max-length", args.max_length,
            "--truncation", args.truncation, "--no-analysis", "--output", str(out), *flags,
        ]  # fmt: skip
        if args.lr:
            cmd += ["--lr", args.lr]
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        t0 = time.time()
        subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=ROOT)
        m = json.loads((out / "metrics.json").read_text())
        tr = m["train"]
        rows.append(
            {
                "variant": name,
                "examples_per_s": tr["examples_per_s"],
                "train_time_s": tr["train_time_s"],
                "process_wall_s": time.time() - t0,
                "peak_rss_mb": tr["peak_rss_mb"],
                "val_accuracy": m["best_validation"]["accuracy"],
                "val_f1": m["best_validation"]["f1"],
            }
        )
    base = rows[0]["examples_per_s"] if rows else 1
    print(
        "| variant | examples/s | ratio | train time (s) | peak RSS (MiB) | val accuracy | val F1 |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['examples_per_s']:.1f} | {r['examples_per_s'] / base:.2f}x | "
            f"{r['train_time_s']:.0f} | {r['peak_rss_mb']:.0f} | {r['val_accuracy']:.4f} | "
            f"{r['val_f1']:.4f} |"
        )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
