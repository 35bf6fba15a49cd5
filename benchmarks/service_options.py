"""``bench_service.py``'s options: its flags (:func:`add_arguments`, :func:`check_args`) and
the offline baseline they set up: the model's Predictor built with the server's settings
(:func:`offline_options`, :func:`offline_predictor`) and its throughput alone
(:func:`offline_throughput`), timed before the first level and after each.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DB_KINDS = ("sqlite", "postgresql")


def csv_list(choices: tuple[str, ...] | None = None, kind=str):
    """argparse type: a comma-separated list of ``kind`` values (positive for ints), each one
    of ``choices`` when given; an empty or bad item is refused with a one-line error."""

    def parse(text: str) -> list:
        items = [x.strip() for x in text.split(",")]
        try:
            values = [kind(x) for x in items if x]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not a list of {kind.__name__}") from None
        if not values or len(values) != len(items):
            raise argparse.ArgumentTypeError(f"{text!r}: an empty item")
        bad = [v for v in values if (choices and v not in choices) or (kind is int and v < 1)]
        if bad:
            want = f"one of {', '.join(choices)}" if choices else "at least 1"
            raise argparse.ArgumentTypeError(f"{bad}: each must be {want}")
        return values

    return parse


def serve_model_flags(extra: str) -> dict:
    """The flags among ``--extra`` (the server's) that set its model: ``--backend``,
    ``--num-threads``, ``--batch-max``, ``--precision``; None where not given."""
    from reviewsense.inference.backends import BACKENDS, PRECISIONS

    ap = argparse.ArgumentParser(prog="--extra", add_help=False, exit_on_error=False)
    ap.add_argument("--backend", choices=BACKENDS)
    ap.add_argument("--num-threads", type=int)
    ap.add_argument("--batch-max", type=int)
    ap.add_argument("--precision", choices=PRECISIONS)
    try:
        flags, _ = ap.parse_known_args(extra.split())
    except argparse.ArgumentError as e:
        raise SystemExit(f"--extra: {e}") from None
    return vars(flags)


def offline_options(extra: str, threads: int | None) -> dict:
    """``Predictor.from_pretrained`` options of the offline figure: ``predict``'s default path
    (attention "auto", no child process) with the server's backend, threads, batch size and
    precision: its ``--extra`` flags, else the environment (REVIEWSENSE_*) and ``--threads``."""
    from reviewsense.settings import ServiceSettings

    flags, env = serve_model_flags(extra), ServiceSettings()
    return {
        "backend": flags["backend"] or env.backend,
        "num_threads": flags["num_threads"] or threads,
        "batch_size": flags["batch_max"] or env.batch_max_texts,
        "precision": flags["precision"] or "auto",
    }


def offline_predictor(model: Path, options: dict):
    """The model's Predictor with ``options`` (:func:`offline_options`) and the allocator
    setting ``predict`` uses (``runtime.tune_allocator``); returns (predictor, the settings it
    runs at: backend, precision, attention kernel, threads, batch size)."""
    import torch

    from reviewsense.inference.attention import choose_kernel
    from reviewsense.inference.predictor import Predictor
    from reviewsense.runtime import default_device, tune_allocator

    tune_allocator()
    pred = Predictor.from_pretrained(model, **options)
    torch_backend = pred.backend == "torch"
    return pred, {
        "backend": pred.backend,
        "precision": pred.precision,
        "attention": choose_kernel("auto", pred.precision, default_device())
        if torch_backend
        else None,
        "threads": pred.num_threads or (torch.get_num_threads() if torch_backend else None),
        "batch_size": pred.batch_size,
    }


def offline_throughput(pred, texts: list[str], calls_of: int | None = None) -> float:
    """Reviews/s of ``pred`` alone on ``texts`` (one warm-up batch first): one ``predict``
    over all of them (sorted by length into full batches), or with ``calls_of`` k, calls of
    k texts in the order the clients send them, as the server's micro-batches are."""
    pred.predict(texts[: pred.batch_size])
    t = time.perf_counter()
    if calls_of is None:
        pred.predict(texts)
    else:
        for i in range(0, len(texts), calls_of):
            pred.predict(texts[i : i + calls_of])
    return len(texts) / (time.perf_counter() - t)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """bench_service.py's flags, on its parser ``ap``."""
    ap.add_argument("--model", type=Path, help="model folder (default: MiniLM + random head)")
    ap.add_argument(
        "--db",
        type=csv_list(DB_KINDS),
        default="sqlite,postgresql",
        help=f"databases to serve from, comma-separated, from {', '.join(DB_KINDS)} (a "
        "throwaway cluster; skipped when PostgreSQL is not installed) (default %(default)s)",
    )
    ap.add_argument(
        "--clients",
        type=csv_list(kind=int),
        default="1,8,32",
        help="concurrent clients of each level, comma-separated; one level per number and "
        "database (default %(default)s)",
    )
    ap.add_argument(
        "--duration", type=float, default=15.0, help="measured seconds per level (default 15)"
    )
    ap.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of load before each level's measured window, not counted (default 3)",
    )
    ap.add_argument(
        "--texts",
        choices=("imdb", "synthetic"),
        default="imdb",
        help="what to send (default %(default)s)",
    )
    ap.add_argument(
        "--imdb", type=Path, help="IMDb test.parquet (default: the local IMDb folder's)"
    )
    ap.add_argument(
        "--words", type=int, default=60, help="synthetic: mean words per review (default 60)"
    )
    ap.add_argument(
        "--offline-n",
        type=int,
        default=500,
        help="texts of the offline predict measurements; the clients send max(2000, N) texts "
        "(default %(default)s)",
    )
    ap.add_argument(
        "--extra",
        default="",
        help="extra `serve` flags, e.g. '--batch-wait-ms 2'; its --backend, --num-threads and "
        "--batch-max apply to the offline predictor too (default: none)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        help="server's and offline predict's threads (default: REVIEWSENSE_NUM_THREADS, else all "
        "cores)",
    )
    ap.add_argument(
        "--client",
        choices=("lean", "httpx"),
        default="lean",
        help="the load generator's HTTP client: lean (keepalive_http.py, ~1/8 of the CPU "
        "httpx takes per request, so less is taken from the server it measures) or httpx "
        "(default %(default)s)",
    )
    ap.add_argument("--json", type=Path, help="write results here")


def check_args(args: argparse.Namespace) -> None:
    """Refuse, with a one-line error, values the benchmark cannot run with."""
    if args.duration <= 0 or args.warmup < 0:
        raise SystemExit("--duration must be above 0 and --warmup at least 0 seconds")
    for flag in ("words", "offline_n", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SystemExit(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
