"""`reviewsense distill`: a smaller student from a fine-tuned teacher (soft labels)."""

from __future__ import annotations

import argparse

from reviewsense.cli._common import add_training_runtime_arguments

HELP = "distil a fine-tuned model into a student with fewer layers (teacher soft labels)"

EPILOG = """\
The student keeps --layers of the teacher's layers, evenly spaced and ending with the top one
(6 -> 3 keeps 1, 3, 5), plus embeddings, pooler and classifier, and trains on
alpha * CE(labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T) over labelled IMDb train
reviews and unlabelled IMDb reviews. OUTPUT is a normal model folder (predict, export, serve)
with distill.json: agreement with the teacher and accuracy on held-out IMDb test reviews.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from reviewsense.attention import ATTENTION_KERNELS
    from reviewsense.cli.pretrain import size_arg
    from reviewsense.distill import DistillConfig
    from reviewsense.dropout import DROPOUT_KERNELS

    d = DistillConfig()
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("teacher", metavar="TEACHER_RUN", help="run directory or model folder")
    p.add_argument("--output", required=True, metavar="DIR", help="model folder to write")
    p.add_argument("--layers", type=int, default=d.layers, help="transformer layers to keep")
    p.add_argument(
        "--train-size", type=size_arg, default=d.train_size, help="labelled reviews (or 'all')"
    )
    p.add_argument(
        "--unlabeled-size", type=int, default=d.unlabeled_size, help="unlabelled reviews"
    )
    p.add_argument(
        "--eval-size", type=int, default=d.eval_size, help="held-out labelled test reviews"
    )
    p.add_argument("--epochs", type=float, default=d.epochs, help="passes over the reviews")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after N steps")
    p.add_argument("--max-length", type=int, help="tokens per review (default: the teacher's)")
    p.add_argument("--temperature", type=float, default=d.temperature, help="softmax T")
    p.add_argument("--alpha", type=float, default=d.alpha, help="weight of the hard labels")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="reviews per step")
    p.add_argument(
        "--attention-kernel",
        choices=ATTENTION_KERNELS,
        default=d.attention_kernel,
        help="the student's attention in training (auto: bf16 matmuls on bf16 CPUs, else sdpa)",
    )
    p.add_argument(
        "--dropout-kernel",
        choices=DROPOUT_KERNELS,
        default=d.dropout_kernel,
        help="the student's dropout masks in training (auto: random-word masks on CPUs, "
        "torch on GPUs)",
    )
    add_training_runtime_arguments(
        p,
        precision=d.precision,
        seed=d.seed,
        seed_help="the reviews drawn, batch order and dropout",
    )
    p.add_argument("--data-dir", help="IMDb parquet folder")
    p.add_argument(
        "--save-steps",
        type=int,
        default=d.save_steps,
        help="write a resumable checkpoint every N steps",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted distillation in --output from its last checkpoint",
    )


def run(args: argparse.Namespace) -> int:
    from reviewsense.distill import DistillConfig, run_distillation

    cfg = DistillConfig(
        teacher=args.teacher,
        layers=args.layers,
        train_size=args.train_size,
        unlabeled_size=args.unlabeled_size,
        eval_size=args.eval_size,
        epochs=args.epochs,
        max_steps=args.max_steps,
        max_length=args.max_length,
        temperature=args.temperature,
        alpha=args.alpha,
        lr=args.lr,
        batch_size=args.batch_size,
        precision=args.precision,
        attention_kernel=args.attention_kernel,
        dropout_kernel=args.dropout_kernel,
        seed=args.seed,
        threads=args.threads,
        data_dir=args.data_dir,
        save_steps=args.save_steps,
    )
    cfg.validate()
    report = run_distillation(cfg, args.output, resume=args.resume)
    q = report["held_out"]
    print(
        f"model folder: {args.output} ({report['student_layers']} layers; agreement "
        f"{q['agreement']:.4f}, accuracy {q['student_accuracy']:.4f} vs teacher "
        f"{q['teacher_accuracy']:.4f}, n={q['n']})"
    )
    return 0
