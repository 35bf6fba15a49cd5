"""`reviewsense pretrain`: in-domain masked-LM pre-training of an encoder on unlabelled reviews."""

from __future__ import annotations

import argparse

from reviewsense.cli._common import add_training_runtime_arguments

HELP = "continue masked-LM pre-training of an encoder on in-domain reviews (e.g. IMDb unlabelled)"

EPILOG = """\
The output is a model folder (encoder weights, tokenizer, pretrain.json) that
`reviewsense train --model OUTPUT` fine-tunes like any other model. Texts that are also IMDb
test reviews are refused (or dropped with --drop-test-texts; always dropped for
imdb-unsupervised, which holds 270 of them). Trainer checkpoints go to OUTPUT/checkpoints and
are removed at the end unless --keep-checkpoints.
"""


def size_arg(value: str) -> int | None:
    """``N`` (a positive count) or ``all`` (None)."""
    if value.strip().lower() == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {value!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from reviewsense.pretrain import PretrainConfig
    from reviewsense.unlabelled import IMDB_UNSUPERVISED

    d = PretrainConfig()
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--model", default=d.model, help="Hub id, local folder or 'minilm'")
    p.add_argument(
        "--data",
        default=d.data,
        help=f"'{IMDB_UNSUPERVISED}' (default) or a CSV/JSONL/Parquet/TXT file of texts",
    )
    p.add_argument("--text-column", default=d.text_column, help="text column of --data FILE")
    p.add_argument("--data-dir", help="IMDb parquet folder (unsupervised + test texts)")
    p.add_argument("--output", required=True, metavar="DIR", help="model folder to write")
    p.add_argument("--train-size", type=size_arg, help="texts to use, 1%% held out (or 'all')")
    p.add_argument("--epochs", type=float, default=d.epochs, help="passes over the texts")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after N steps")
    p.add_argument("--max-length", type=int, default=d.max_length, help="tokens per window")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per step")
    p.add_argument("--whole-word", action="store_true", help="mask whole words, not pieces")
    p.add_argument("--eval-steps", type=int, default=d.eval_steps, help="perplexity/checkpoint")
    p.add_argument(
        "--head-warmup-steps",
        type=int,
        help="steps with the encoder frozen while a new MLM head learns (default: auto)",
    )
    p.add_argument(
        "--attention-dropout",
        type=float,
        default=d.attention_dropout,
        metavar="P",
        help="attention-probability dropout (default 0: the fused attention kernel, as in train)",
    )
    add_training_runtime_arguments(
        p,
        precision=d.precision,
        seed=d.seed,
        seed_help="the MLM-head init, masking, text sampling and held-out split",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue --output from its last checkpoint"
    )
    p.add_argument(
        "--drop-test-texts", action="store_true", help="drop test reviews instead of refusing"
    )
    p.add_argument("--keep-checkpoints", action="store_true", help="keep OUTPUT/checkpoints")


def run(args: argparse.Namespace) -> int:
    from reviewsense.pretrain import PretrainConfig, run_pretraining

    cfg = PretrainConfig(
        model=args.model,
        data=args.data,
        text_column=args.text_column,
        data_dir=args.data_dir,
        train_size=args.train_size,
        epochs=args.epochs,
        max_steps=args.max_steps,
        max_length=args.max_length,
        lr=args.lr,
        batch_size=args.batch_size,
        whole_word=args.whole_word,
        precision=args.precision,
        seed=args.seed,
        threads=args.threads,
        eval_steps=args.eval_steps,
        head_warmup_steps=args.head_warmup_steps,
        attention_dropout=args.attention_dropout,
        drop_test_texts=args.drop_test_texts,
        keep_checkpoints=args.keep_checkpoints,
    )
    cfg.validate()
    report = run_pretraining(cfg, args.output, resume=args.resume)
    final = report["final"]
    print(f"model folder: {args.output} (held-out perplexity {final['perplexity']:.2f})")
    return 0
