"""`reviewsense serve MODEL_DIR`: the real-time review service and dashboard."""

from __future__ import annotations

import argparse
import logging

from reviewsense.cli._common import add_service_model_arguments, migrated_engine, settings_default

HELP = "run the review service: store, classify and flag reviews; live dashboard at /"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model folder or run directory")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    add_service_model_arguments(parser)
    parser.add_argument(
        "--batch-max",
        type=int,
        help=f"texts per inference batch (default {settings_default('batch_max_texts')})",
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        help="longest wait for a batch to fill under load "
        f"(default {settings_default('batch_wait_ms')}; none when idle)",
    )
    parser.add_argument(
        "--batch-split",
        action=argparse.BooleanOptionalAction,
        help="a model call takes half of the waiting texts, so the model works while answers "
        f"go out (default {settings_default('batch_split')})",
    )
    parser.add_argument(
        "--inference-process",
        action=argparse.BooleanOptionalAction,
        help="run the model in a child process, so it does not share the GIL with the server "
        f"(default {settings_default('inference_process')})",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        help=f"texts waiting for inference before 503 (default {settings_default('queue_size')})",
    )
    parser.add_argument(
        "--max-batch-reviews",
        type=int,
        help=f"reviews per POST /v1/reviews (default {settings_default('max_batch_reviews')})",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        help=f"largest request body (default {settings_default('max_body_bytes')})",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")


# ServiceSettings field -> the flag that sets it (errors name the flag the user typed).
FLAGS = {
    "db_url": "--db",
    "threshold": "--threshold",
    "batch_max_texts": "--batch-max",
    "batch_wait_ms": "--batch-wait-ms",
    "batch_split": "--batch-split",
    "inference_process": "--inference-process",
    "queue_size": "--queue-size",
    "max_batch_reviews": "--max-batch-reviews",
    "max_body_bytes": "--max-body-bytes",
    "num_threads": "--num-threads",
    "backend": "--backend",
}


def build_settings(args: argparse.Namespace):
    """ServiceSettings from the environment and the flags given (validated by pydantic).

    Raises:
        ConfigError: naming the flag (or environment variable) and the allowed values.
    """
    from reviewsense.errors import ConfigError
    from reviewsense.settings import ServiceSettings

    given = {field: getattr(args, flag[2:].replace("-", "_")) for field, flag in FLAGS.items()}
    settings = ServiceSettings.from_flags(given, FLAGS)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1-65535, got {args.port}")
    return settings


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from reviewsense import rundir
    from reviewsense.service.app import create_app
    from reviewsense.service.state import load_predictor

    settings = build_settings(args)
    model_dir = rundir.resolve_model_dir(args.model_dir)
    # Fail fast, with a one-line error, on an unreachable database or a broken model.
    migrated_engine(settings.db_url).dispose()
    predictor = load_predictor(model_dir, settings)
    app = create_app(settings, model_dir=model_dir, predictor=predictor)
    log.info("dashboard: http://%s:%d/  API docs: http://%s:%d/docs", *(args.host, args.port) * 2)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        # Open SSE streams never end by themselves: do not wait on them forever at shutdown.
        timeout_graceful_shutdown=3,
        log_config=None,  # keep the CLI's logging format
    )
    return 0
