"""Benchmark `reviewsense analyze` on a synthetic 100,000-entry log history.

Target (issue 3): under 2 s without plots, under 10 s with plots, end to end (parse the
file, diagnose, write summary.json / report.md / report.html, and the PNGs when asked).

    .venv/bin/python benchmarks/bench_analyze.py [--entries 100000] [--repeat 3] [--json FILE]

``--json FILE`` writes ``{"entries", "file_mb", "cpu", "bf16_path", "python", "variants":
[{"plots", "median_s", "best_s", "target_s", "ok"}], "check": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

# The smallest log the synthetic run can be cut to: synthetic_state plants a NaN grad norm at
# entry 500, so it needs 501 training entries (n * 1000 // 1001 of them).
MIN_ENTRIES = 502


def entries_problem(n: int) -> str | None:
    """Why ``--entries n`` is refused (one line), or None."""
    if n < MIN_ENTRIES:
        return f"--entries must be at least {MIN_ENTRIES}, got {n}"
    return None


def synthetic_state(n_entries: int, seed: int = 0) -> dict:
    """A long run logged every step: warmup + linear decay, noisy loss, grad-norm spikes,
    a NaN grad norm, one eval per epoch whose loss is lowest at epoch 40 (overfitting)."""
    rng = np.random.default_rng(seed)
    steps_per_epoch = 1000
    n_train = n_entries * steps_per_epoch // (steps_per_epoch + 1)  # + one eval per epoch
    warmup = n_train // 10
    log: list[dict] = []
    for s in range(1, n_train + 1):
        lr = 5e-5 * (s / warmup if s <= warmup else (n_train - s) / (n_train - warmup))
        loss = (0.7 * math.exp(-s / 20000) + 0.05) * (1 + 0.2 * rng.standard_normal())
        grad = abs(1 + 0.2 * rng.standard_normal()) * (40 if rng.random() < 1e-3 else 1)
        log.append(
            {
                "epoch": s / steps_per_epoch,
                "grad_norm": grad,
                "learning_rate": lr,
                "loss": loss,
                "step": s,
            }
        )
        if s % steps_per_epoch == 0:
            e = s // steps_per_epoch
            log.append(
                {"epoch": float(e), "eval_loss": 0.3 + 0.01 * abs(e - 40), "eval_accuracy": 0.9,
                 "eval_runtime": 1.0, "step": s}
            )  # fmt: skip
    log[500]["grad_norm"] = float("nan")
    header = {"global_step": n_train, "max_steps": n_train, "epoch": n_train / steps_per_epoch,
              "train_batch_size": 16, "logging_steps": 1}  # fmt: skip
    while len(log) < n_entries:  # top up to exactly n_entries with late train logs
        s = len(log)
        log.append(
            {
                "epoch": s / steps_per_epoch,
                "grad_norm": 1.0,
                "learning_rate": 0.0,
                "loss": 0.06,
                "step": s,
            }
        )
    return {**header, "log_history": log[:n_entries]}


def time_it(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument(
        "--entries",
        type=int,
        default=100_000,
        help=f"log_history entries of the synthetic trainer_state.json (at least {MIN_ENTRIES})",
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="timed analyze runs per variant (the median counts)"
    )
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args(argv)
    problem = entries_problem(args.entries)
    if problem is None and args.repeat < 1:
        problem = f"--repeat must be at least 1, got {args.repeat}"
    if problem:
        ap.error(problem)
    return args


def main() -> None:
    args = parse_args()

    from reviewsense.analysis.report import analyze_run
    from reviewsense.jsonio import write_json
    from reviewsense.runtime import bf16_path, cpu_model

    result: dict = {"entries": args.entries, "variants": []}

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "trainer_state.json"
        src.write_text(json.dumps(synthetic_state(args.entries), indent=2))
        n = len(json.loads(src.read_text())["log_history"])
        print(f"log_history entries: {n:,}  file: {src.stat().st_size / 1e6:.1f} MB")
        result.update(
            entries=n,
            file_mb=round(src.stat().st_size / 1e6, 1),
            python=platform.python_version(),
            cpu=cpu_model(),
            bf16_path=bf16_path(),
        )
        print(f"python {platform.python_version()}, {platform.machine()}")
        analyze_run(src, Path(tmp) / "warm", plots=True)  # warm-up: imports, font cache
        for plots, limit in ((False, 2.0), (True, 10.0)):
            times = time_it(
                lambda p=plots: analyze_run(src, Path(tmp) / "out", plots=p), args.repeat
            )
            best, med = min(times), statistics.median(times)
            ok = "OK" if med < limit else "OVER"
            result["variants"].append(
                {"plots": plots, "median_s": round(med, 3), "best_s": round(best, 3),
                 "target_s": limit, "ok": med < limit}
            )  # fmt: skip
            print(
                f"plots={str(plots):5}  median {med:.2f} s  best {best:.2f} s  (target < {limit:g} s) {ok}"
            )
        summary = json.loads((Path(tmp) / "out" / "summary.json").read_text())
        print(
            f"check: spikes={summary['grad_norm']['spike_count']} lr={summary['lr_schedule']['shape']} "
            f"warmup={summary['lr_schedule']['warmup_steps']} overfitting={summary['overfitting']}"
        )
        result["check"] = {
            "spikes": summary["grad_norm"]["spike_count"],
            "lr_schedule": summary["lr_schedule"]["shape"],
            "overfitting": summary["overfitting"],
            "overfitting_detail": summary["overfitting_detail"],
        }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, result)


if __name__ == "__main__":
    main()
