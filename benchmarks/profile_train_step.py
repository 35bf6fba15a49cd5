"""Where one training step of the default recipe goes: ``torch.profiler`` over ~20 steps.

The default recipe: MiniLM (``minilm``), batch 16, 256 tokens (head_tail), length-bucketed
batches in random order (``trainer_utils.with_length_buckets``, as `train`) padded to multiples
of 16, bf16 autocast where the CPU has a bf16 path, the Trainer's fused AdamW and gradient
clipping, and `train`'s defaults for what it sets on the model: attention dropout
``config.TRAINING_ATTENTION_DROPOUT``, the training attention kernel
(``attention.apply_training_kernel``) and dropout kernel (``dropout.apply_dropout_kernel``), both
``auto``. The steps run inside the real ``transformers.Trainer`` (its DataLoader, collator and
step loop), so collation and Trainer overhead are part of the profile.

    python benchmarks/profile_train_step.py --steps 20 --json runs/profile/profile.json

Prints a markdown table (category, ms per step, share) for BENCHMARKS.md. The helpers below
(``recipe_batches``, ``load_model``, ``make_step``) are shared with ``bench_train.py``'s
speed parts (``train_speed.py``).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reviewsense.config import TRAINING_ATTENTION_DROPOUT  # noqa: E402  (train's default)

log = logging.getLogger("profile_train_step")

# (category, substrings); an op gets the first category matching its name or any caller's name,
# so the fp32 upcasts inside SDPA's math fallback count as attention, not as autocast casts.
_OP_CATEGORIES = (
    ("attention: fused SDPA kernel", ("flash_attention", "_efficient_attention")),
    (
        "attention: math fallback (bmm, softmax, fp32 upcast)",
        ("_scaled_dot_product_attention_math", "bmm", "softmax", "Bmm"),
    ),
    ("dropout (bernoulli masks, mask multiply)", ("bernoulli", "dropout", "Dropout")),
    ("embedding gradient (30,522 x 384 dense)", ("embedding_dense_backward", "EmbeddingBack")),
    ("autocast dtype casts", ("aten::to", "_to_copy", "ToCopyBackward")),
    ("matmuls (linear layers)", ("addmm", "aten::mm", "aten::linear", "MmBackward")),
    ("LayerNorm", ("layer_norm", "LayerNorm")),
    ("GELU", ("gelu", "Gelu")),
)


# -- shared helpers --------------------------------------------------------------------------
def recipe_batches(
    tokenizer, max_length: int, batch_size: int, n_batches: int, seed: int = 0, grouped=True
) -> list[list[dict]]:
    """``n_batches`` batches of real IMDb training reviews (features, not yet collated).

    Grouped like the Trainer's length-grouped sampler: shuffle, cut into mega-batches of 50
    batches, sort each by length, then pick ``n_batches`` of the resulting batches at random.
    """
    import numpy as np

    from reviewsense.data import load_imdb_split
    from reviewsense.features import tokenize_cached

    split = load_imdb_split("train")
    rng = np.random.default_rng(seed)
    n_reviews = min(len(split.texts), max(batch_size * 50, batch_size * n_batches))
    pick = rng.choice(len(split.texts), size=n_reviews, replace=False)
    texts = [split.texts[i] for i in pick]
    mode = "head_tail" if max_length > 130 else "head"  # head_tail keeps 128 head tokens
    enc = tokenize_cached(tokenizer, texts, max_length, mode, desc="bench reviews")
    rows = [
        {"input_ids": ids, "labels": int(split.labels[i])}
        for ids, i in zip(enc["input_ids"], pick, strict=True)
    ]
    if grouped:
        mega = batch_size * 50
        rows = [
            r
            for s in range(0, len(rows), mega)
            for r in sorted(rows[s : s + mega], key=lambda r: -len(r["input_ids"]))
        ]
    batches = [rows[s : s + batch_size] for s in range(0, len(rows) - batch_size + 1, batch_size)]
    order = rng.permutation(len(batches))[:n_batches]
    return [batches[i] for i in order]


def load_model(attention_dropout: float | None = None, freeze_embeddings: bool = False):
    """The training model and tokenizer exactly as ``reviewsense train`` loads them."""
    import torch

    from reviewsense.modeling import freeze_word_embeddings, load_for_training

    model, tokenizer = load_for_training("minilm", attention_dropout=attention_dropout)
    if freeze_embeddings:
        freeze_word_embeddings(model)
    if torch.cuda.is_available():  # GPU users: same step, autocast on the GPU
        model.to("cuda")
    model.train()
    return model, tokenizer


def make_collator(tokenizer, pad_to_max: int | None):
    """Dynamic padding to multiples of 16 (default) or every row padded to ``pad_to_max``."""
    from transformers import DataCollatorWithPadding

    if pad_to_max:
        return DataCollatorWithPadding(tokenizer, padding="max_length", max_length=pad_to_max)
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=16)


def make_optimizer(model, kind: str = "fused", lr: float = 1e-4):
    """AdamW as the Trainer builds it (no decay on biases/LayerNorm); kind: fused|foreach|loop."""
    import torch

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if n.endswith("bias") or "LayerNorm" in n else decay).append(p)
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}
    return torch.optim.AdamW(groups, lr=lr, **flags[kind])


def make_step(model, optimizer, collator, precision: str, forward=None):
    """One training step on a list of features: collate, forward, backward, clip, AdamW."""
    import torch

    fwd = model if forward is None else forward  # a compiled module has no truth value
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device

    def step(features: list[dict]) -> float:
        batch = collator(features)  # input_ids/attention_mask: (batch, tokens) int64
        if device.type == "cuda":
            batch = {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = fwd(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())  # also waits for the GPU: honest step times

    return step


# -- profile ---------------------------------------------------------------------------------
def _phase(evt) -> str:
    """forward / backward / optimizer / collation, from the op's ancestors."""
    node = evt
    while node is not None:
        name = node.name
        if name.startswith("autograd::engine::evaluate_function"):
            return "backward"
        if name.startswith("Optimizer."):
            return "optimizer"
        if name.startswith("enumerate(DataLoader)"):
            return "collation"
        node = node.cpu_parent
    return "forward"


def _category(evt) -> str:
    chain = []
    node = evt
    while node is not None:  # the op itself, then its callers (e.g. bmm under SDPA math)
        chain.append(node.name)
        node = node.cpu_parent
    for cat, keys in _OP_CATEGORIES:
        if any(k in name for name in chain for k in keys):
            return cat
    return "other ops"


def summarize(events, wall_s: float, steps: int) -> dict:
    """Self CPU time (main thread, intra-op parallel) per category and phase, per step."""
    table: dict[str, float] = {}
    op_total = 0.0
    for e in events:
        if e.device_type.name != "CPU":
            continue
        if e.name.startswith("enumerate(DataLoader)"):
            # collation is mostly Python (tokenizer.pad): count the label's whole span
            ms = e.cpu_time_total / 1000 / steps
            key = "collation (DataLoader + collator)"
            table[key] = table.get(key, 0.0) + ms
            op_total += ms
            continue
        if e.self_cpu_time_total <= 0 or e.name.startswith(("ProfilerStep", "Optimizer.")):
            continue  # labels, not work (their children are counted)
        phase = _phase(e)
        if phase == "collation":
            continue  # inside the span counted above
        if e.name.startswith(("aten::_foreach_", "aten::_fused_adam")):
            phase = "optimizer"  # grad clipping's norms/scales and AdamW itself
        key = f"{_category(e)} [{phase}]" if phase in ("forward", "backward") else phase
        ms = e.self_cpu_time_total / 1000 / steps
        table[key] = table.get(key, 0.0) + ms
        op_total += ms
    step_ms = 1000 * wall_s / steps
    table["outside aten ops (Python, Trainer loop, hooks, waiting)"] = max(0.0, step_ms - op_total)
    rows = sorted(table.items(), key=lambda kv: -kv[1])
    return {
        "step_ms": step_ms,
        "rows": [{"category": k, "ms_per_step": v, "share": v / step_ms} for k, v in rows],
    }


def profile_trainer(
    steps: int,
    warmup: int,
    max_length: int,
    batch_size: int,
    precision: str,
    attention_dropout: float | None = TRAINING_ATTENTION_DROPOUT,
    attention_kernel: str = "auto",
    dropout_kernel: str = "auto",
):
    """Run the Trainer for warmup + steps; profile the last ``steps``. Returns the summary.

    ``attention_dropout`` None: the checkpoint's (0.1), as `train --set attention_dropout=null`.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from reviewsense.attention import apply_training_kernel
    from reviewsense.dropout import apply_dropout_kernel
    from reviewsense.features import build_dataset
    from reviewsense.trainer_utils import with_length_buckets

    model, tokenizer = load_model(attention_dropout)
    # what `train` applies to the model (train._prepare_inputs), in its order
    attention_used = apply_training_kernel(model, attention_kernel, precision)
    dropout_used = apply_dropout_kernel(model, dropout_kernel)
    feats = [f for b in recipe_batches(tokenizer, max_length, batch_size, 50) for f in b]
    enc = {"input_ids": [f["input_ids"] for f in feats]}
    ds = build_dataset(enc, [f["labels"] for f in feats])
    prof = profile(activities=[ProfilerActivity.CPU], with_stack=False)
    window: dict = {}

    class Window(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == warmup:
                window["ru0"] = resource.getrusage(resource.RUSAGE_SELF)
                window["t0"] = time.perf_counter()
                prof.__enter__()

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == warmup + steps:
                prof.__exit__(None, None, None)
                window["wall"] = time.perf_counter() - window["t0"]
                ru1 = resource.getrusage(resource.RUSAGE_SELF)
                window["cpu"] = sum(
                    getattr(ru1, k) - getattr(window["ru0"], k) for k in ("ru_utime", "ru_stime")
                )

    args = TrainingArguments(
        output_dir=str(ROOT / "runs" / "profile-train-step"),
        per_device_train_batch_size=batch_size,
        max_steps=warmup + steps,
        learning_rate=1e-4,
        weight_decay=0.01,
        bf16=precision == "bf16",
        use_cpu=True,
        train_sampling_strategy="group_by_length",
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,
    )
    trainer = with_length_buckets(Trainer)(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=make_collator(tokenizer, None),
        callbacks=[Window()],
    )
    trainer.train()
    out = summarize(prof.events(), window["wall"], steps)
    out["cpu_utilisation"] = window["cpu"] / (window["wall"] * torch.get_num_threads())
    out["optimizer"] = str(trainer.args.optim)
    out["attention"] = model.config._attn_implementation
    out["attention_kernel"] = attention_used
    out["dropout_kernel"] = dropout_used
    return out


def dropout_value(text: str) -> float | None:
    """``--attention-dropout``: a probability in [0, 1), or ``null`` for the checkpoint's."""
    if text.lower() in ("null", "none"):
        return None
    try:
        p = float(text)
    except ValueError:
        p = -1.0
    if not 0.0 <= p < 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1) or null, got {text}")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from reviewsense.attention import ATTENTION_KERNELS
    from reviewsense.dropout import DROPOUT_KERNELS

    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--steps", type=int, default=20, help="profiled steps")
    ap.add_argument("--warmup", type=int, default=3, help="unprofiled steps first")
    ap.add_argument("--max-length", type=int, default=256, help="tokens per review")
    ap.add_argument("--batch-size", type=int, default=16, help="reviews per step")
    ap.add_argument(
        "--attention-dropout",
        type=dropout_value,
        default=TRAINING_ATTENTION_DROPOUT,
        help="attention-probability dropout in training, as `train --set attention_dropout=`; "
        "null: the checkpoint's (0.1, SDPA's math fallback); default: train's",
    )
    ap.add_argument(
        "--attention-kernel",
        default="auto",
        choices=ATTENTION_KERNELS,
        help="training attention kernel, as `train --set attention_kernel=` (auto: as train picks)",
    )
    ap.add_argument(
        "--dropout-kernel",
        default="auto",
        choices=DROPOUT_KERNELS,
        help="training dropout kernel, as `train --set dropout_kernel=` (auto: as train picks)",
    )
    ap.add_argument("--json", type=Path, help="write the table and environment here")
    args = ap.parse_args(argv)
    for flag, value, low in (("--steps", args.steps, 1), ("--warmup", args.warmup, 0)):
        if value < low:
            ap.error(f"{flag} must be at least {low}, got {value}")
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from reviewsense.jsonio import write_json
    from reviewsense.runtime import environment_facts, resolve_precision, set_threads

    threads = set_threads(None)
    precision = resolve_precision("auto", "cpu")
    out = profile_trainer(
        args.steps,
        args.warmup,
        args.max_length,
        args.batch_size,
        precision,
        args.attention_dropout,
        args.attention_kernel,
        args.dropout_kernel,
    )
    out["environment"] = environment_facts(precision, threads)
    out["recipe"] = {**vars(args), "json": str(args.json) if args.json else None}
    env = out["environment"]
    print(
        f"\n{env['cpu']} (bf16 path {env['bf16_path']}), {threads} threads, {precision}, "
        f"attention {out['attention']} (kernel {out['attention_kernel']}, dropout "
        f"{args.attention_dropout}), dropout kernel {out['dropout_kernel']}, "
        f"optimizer {out['optimizer']}, step {out['step_ms']:.0f} ms, "
        f"CPU utilisation {100 * out['cpu_utilisation']:.0f}%\n"
    )
    print("| where the step goes | ms / step | share |\n|---|---|---|")
    for r in out["rows"]:
        print(f"| {r['category']} | {r['ms_per_step']:.0f} | {100 * r['share']:.1f}% |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, out)


if __name__ == "__main__":
    main()
