"""Where one inference forward goes, per attention kernel: timed side by side, then profiled.

The model's bf16 (or fp32) weights, as the ``Predictor``'s torch backend runs them (linear
layers fused where ``--linear auto`` picks it; ``--linear torch`` for torch's), on one
batch of ``--batch`` random-token reviews at ``--tokens`` tokens, every ``--padded-every``-th
review padded from 3/4 of its length on (the Predictor's length-sorted batches pad little).
Each round times every kernel of :data:`reviewsense.inference.attention.KERNELS` (bar "auto")
in turn, ``--rounds`` rounds interleaved; then ``torch.profiler`` over 3 forwards of each.
The process keeps freed activations like ``predict`` (``runtime.tune_allocator``); run it with
``REVIEWSENSE_MALLOC=default`` for glibc's defaults.

    python benchmarks/profile_inference.py --model runs/<demo>/model --json FILE

``--json`` writes ``{"kernels": {name: {"ms_per_forward", "reviews_per_s", "ops": [{"op",
"ms_per_forward", "share"}]}}, "speedup_chunked_vs_sdpa", "speedup_vs_sdpa", "allocator_tuned",
"environment"}`` (``speedup_vs_sdpa``: every kernel's median paired ratio to SDPA, varlen's too).
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

log = logging.getLogger("profile_inference")


def kernels() -> tuple[str, ...]:
    """Every kernel of :data:`reviewsense.inference.attention.KERNELS` but "auto" (it picks one
    of the others): sdpa, chunked, varlen and packed, the service's."""
    from reviewsense.inference.attention import KERNELS

    return tuple(k for k in KERNELS if k != "auto")


def _model(model_dir: str, precision: str, linear: str):
    import torch
    from transformers import AutoModelForSequenceClassification

    from reviewsense.inference.fused import choose_linear, use_linear

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model.eval().to(dtype)
    use_linear(model, choose_linear(linear, precision, "cpu"))  # as the Predictor's runner
    return model


def switch(model, kernel: str):
    """Give ``model`` the inference ``kernel``; returns its forward ``(ids, mask) -> logits``
    as the Predictor runs it (packed: the batch's real tokens only, ``packed_logits``)."""
    from reviewsense.inference.attention import use_kernel
    from reviewsense.inference.packed import logits_fn

    return logits_fn(model, use_kernel(model, kernel))


def _ops(forward, ids, mask, top: int = 8) -> list[dict]:
    """The ``top`` ops by self CPU time over 3 forwards: ms per forward and share."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            forward(ids, mask)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {
            "op": e.key,
            "ms_per_forward": e.self_cpu_time_total / 3 / 1e3,  # µs over 3 forwards -> ms
            "share": e.self_cpu_time_total / total,
        }
        for e in events[:top]
    ]


def parser() -> argparse.ArgumentParser:
    from reviewsense.inference.fused import LINEARS

    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--model", required=True, help="model folder or run directory")
    ap.add_argument(
        "--precision", choices=("bf16", "fp32"), default="bf16", help="the weights' dtype"
    )
    ap.add_argument("--linear", choices=LINEARS, default="auto", help="linear layers")
    ap.add_argument("--batch", type=int, default=32, help="reviews per forward")
    ap.add_argument("--tokens", type=int, default=256, help="tokens per review")
    ap.add_argument("--padded-every", type=int, default=4, help="every N-th review is padded")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--json", type=Path, help="write the results here")
    return ap


def check_args(args: argparse.Namespace) -> None:
    """Refuse counts below 1 with a one-line error."""
    for flag in ("batch", "tokens", "padded_every", "rounds", "threads"):
        if getattr(args, flag) < 1:
            raise SystemExit(f"--{flag.replace('_', '-')} must be at least 1")


def time_kernels(model, ids, mask, rounds: int) -> dict[str, list[float]]:
    """ms per forward of every kernel, ``rounds`` interleaved rounds of 3 forwards each."""
    import torch

    from reviewsense.progress import LogProgress

    times: dict[str, list[float]] = {k: [] for k in kernels()}
    progress = LogProgress("timing rounds", rounds, "rounds", 0, log)
    with torch.inference_mode():
        for r in range(rounds):
            for kernel in times:
                forward = switch(model, kernel)
                forward(ids, mask)  # warm-up after the switch
                t = time.perf_counter()
                for _ in range(3):
                    forward(ids, mask)
                times[kernel].append((time.perf_counter() - t) / 3 * 1e3)
            progress.update(r + 1)
    return times


def main() -> int:
    args = parser().parse_args()
    check_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    import torch

    from reviewsense.jsonio import write_json
    from reviewsense.rundir import resolve_model_dir
    from reviewsense.runtime import environment_facts, tune_allocator

    tuned = tune_allocator()
    torch.set_num_threads(args.threads)
    model = _model(str(resolve_model_dir(args.model)), args.precision, args.linear)
    torch.manual_seed(0)
    ids = torch.randint(1000, 20000, (args.batch, args.tokens))  # [B, T] token ids
    mask = torch.ones_like(ids)
    mask[:: args.padded_every, args.tokens * 3 // 4 :] = 0
    times = time_kernels(model, ids, mask, args.rounds)
    doc = {"kernels": {}, "allocator_tuned": tuned}
    for kernel in times:
        forward = switch(model, kernel)
        ms = statistics.median(times[kernel])
        doc["kernels"][kernel] = {
            "ms_per_forward": ms,
            "ms_rounds": times[kernel],
            "reviews_per_s": args.batch / ms * 1e3,
            "ops": _ops(forward, ids, mask),
        }
    doc["speedup_vs_sdpa"] = {  # median of the paired rounds' ratios
        k: statistics.median(s / c for s, c in zip(times["sdpa"], times[k], strict=True))
        for k in times
        if k != "sdpa"
    }
    doc["speedup_chunked_vs_sdpa"] = doc["speedup_vs_sdpa"]["chunked"]
    doc["environment"] = environment_facts(precision=args.precision, threads=args.threads)
    doc["environment"].update(
        model=str(args.model),
        batch=args.batch,
        tokens=args.tokens,
        padded_every=args.padded_every,
        linear=args.linear,
    )
    for kernel, r in doc["kernels"].items():
        print(f"{kernel}: {r['ms_per_forward']:.0f} ms per forward ({r['reviews_per_s']:.1f}/s)")
        for op in r["ops"]:
            print(f"  {op['op']:55s} {op['ms_per_forward']:7.1f} ms  {op['share']:6.1%}")
    for kernel, ratio in doc["speedup_vs_sdpa"].items():
        print(f"{kernel} vs sdpa (paired rounds): {ratio:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
