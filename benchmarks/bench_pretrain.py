"""Masked-LM pre-training step speed: what `reviewsense pretrain` did before vs now.

Variants (MiniLM as ``BertForMaskedLM``, batch ``--batch-size`` windows of ``--max-length``
tokens cut from real IMDb unlabelled reviews, 15% masking, bf16 autocast where the CPU has a
bf16 path, fused AdamW + gradient clipping, the same step as the Trainer's minus its
bookkeeping):

- ``previous``: the checkpoint's attention dropout (0.1: SDPA's math fallback) and the
  vocabulary head on every position (``BertForMaskedLM``'s own loss);
- ``+ attention dropout 0``: the fused SDPA kernel, as `train` uses;
- ``default``: + the head on the masked positions only (``reviewsense.mlm.masked_lm_loss``).

Every round runs one step of each variant on the same masked batch (steps interleaved, so load
changes hit all variants alike); reported per variant: median ms/step, windows/s and the paired
ratio vs ``previous`` (median over rounds of the per-round time ratio). It also estimates one
epoch over all unlabelled reviews (windows per review measured on the sample).

    python benchmarks/bench_pretrain.py --rounds 6 --json results/pretrain/bench_pretrain.json
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
log = logging.getLogger("bench_pretrain")

PREVIOUS = "previous (attention dropout 0.1, head on every position)"
FUSED = "+ attention dropout 0 (fused SDPA)"
DEFAULT = "default: + head on masked positions only"
VARIANTS = {PREVIOUS: (None, False), FUSED: (0.0, False), DEFAULT: (0.0, True)}


def windows_problem(
    n_windows: int, sample: int, max_length: int, batch_size: int, rounds: int
) -> str | None:
    """Why the sampled windows cannot fill ``rounds`` + 1 full batches (one line), or None."""
    need = (rounds + 1) * batch_size
    if n_windows >= need:
        return None
    return (
        f"--sample {sample} gave {n_windows} windows of --max-length {max_length}, fewer than "
        f"the {need} that (--rounds {rounds} + 1 warm-up) x --batch-size {batch_size} take: "
        "raise --sample or lower --rounds / --batch-size"
    )


def batches(tokenizer, n_reviews: int, max_length: int, batch_size: int, rounds: int):
    """(``rounds`` + 1 collated batches of full-length windows, windows per review)."""
    import pandas as pd
    import torch

    from reviewsense.mlm import MLMCollator
    from reviewsense.pretrain import encode_windows
    from reviewsense.unlabelled import IMDB_UNSUPERVISED, data_file

    texts = pd.read_parquet(data_file(IMDB_UNSUPERVISED, None), columns=["text"])["text"]
    texts = texts.sample(n=n_reviews, random_state=0).tolist()
    windows = encode_windows(tokenizer, texts, max_length)
    problem = windows_problem(len(windows), n_reviews, max_length, batch_size, rounds)
    if problem:
        raise SystemExit(f"bench_pretrain.py: error: {problem}")
    collator = MLMCollator(tokenizer)
    torch.manual_seed(0)
    order = torch.randperm(len(windows)).tolist()
    out = []
    for r in range(rounds + 1):
        pick = order[r * batch_size : (r + 1) * batch_size]
        out.append(collator([{"input_ids": windows[i]} for i in pick]))
    return out, len(windows) / len(texts)


def make_variant(attention_dropout: float | None, masked_head: bool, precision: str):
    """A step function for one variant: forward, backward, clip, fused AdamW."""
    import torch

    from reviewsense.mlm import load_mlm_model, masked_lm_loss

    model, _, _, _ = load_mlm_model("minilm", attention_dropout)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01, fused=True)

    def step(batch: dict) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = masked_lm_loss(model, batch)[0] if masked_head else model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    return step


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--rounds", type=int, default=6, help="timed steps per variant")
    ap.add_argument("--batch-size", type=int, default=32, help="windows per step")
    ap.add_argument("--max-length", type=int, default=256, help="tokens per window")
    ap.add_argument(
        "--sample",
        type=int,
        default=2000,
        help="unlabelled reviews tokenized; must give (rounds + 1) x batch-size windows",
    )
    ap.add_argument("--threads", type=int, help="torch threads; unset: physical cores")
    ap.add_argument("--json", type=Path, help="write the results here (a JSON file)")
    args = ap.parse_args(argv)
    for flag, value in (
        ("--rounds", args.rounds),
        ("--batch-size", args.batch_size),
        ("--sample", args.sample),
    ):
        if value < 1:
            ap.error(f"{flag} must be at least 1, got {value}")
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from reviewsense.jsonio import write_json
    from reviewsense.modeling import load_tokenizer
    from reviewsense.progress import LogProgress
    from reviewsense.runtime import environment_facts, resolve_precision, set_threads

    threads = set_threads(args.threads)
    precision = resolve_precision("auto")
    tok = load_tokenizer("minilm")
    data, per_review = batches(tok, args.sample, args.max_length, args.batch_size, args.rounds)
    steps = {name: make_variant(*spec, precision) for name, spec in VARIANTS.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    progress = LogProgress("rounds (round 0 warms up)", len(data), "rounds", 0, log)
    for r, batch in enumerate(data):
        for name, step in steps.items():
            t = step(batch)
            if r > 0:  # round 0 warms up (oneDNN builds its kernels on first use)
                times[name].append(t)
        log.info("round %d: %s", r, ", ".join(f"{times[n][-1]:.2f} s" for n in times if r))
        progress.update(r + 1)
    rows = []
    for name, ts in times.items():
        ratios = [p / t for p, t in zip(times[PREVIOUS], ts, strict=True)]
        rows.append(
            {
                "name": name,
                "ms_per_step": 1000 * statistics.median(ts),
                "step_s": ts,
                "windows_per_s": args.batch_size / statistics.median(ts),
                "paired_speedup_vs_previous": statistics.median(ratios),
            }
        )
    unlabelled = 50_000 - 270  # IMDb unsupervised minus the texts that are test reviews
    epoch_steps = unlabelled * per_review / args.batch_size
    doc = {
        "variants": rows,
        "speedup": rows[-1]["paired_speedup_vs_previous"],
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "windows_per_review": per_review,
        "epoch_hours_estimate": {r["name"]: epoch_steps * r["ms_per_step"] / 3.6e6 for r in rows},
        "environment": environment_facts(threads=threads, precision=precision),
    }
    print("| variant | ms/step | windows/s | paired speed-up vs previous | one epoch (h, est.) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        hours = doc["epoch_hours_estimate"][r["name"]]
        print(
            f"| {r['name']} | {r['ms_per_step']:.0f} | {r['windows_per_s']:.1f} | "
            f"{r['paired_speedup_vs_previous']:.2f}x | {hours:.1f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
