"""`reviewsense consume MODEL --redis URL`: store review events from a Redis stream."""

from __future__ import annotations

import argparse
import logging

from reviewsense.cli._common import add_service_model_arguments, settings_default

HELP = "consume review events from a Redis stream: score, store and flag them exactly once"

log = logging.getLogger(__name__)

# ServiceSettings field -> flag (the service's settings: database, threshold, model options).
FLAGS = {
    "db_url": "--db",
    "threshold": "--threshold",
    "num_threads": "--num-threads",
    "backend": "--backend",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reviewsense.service.consumer import ConsumerConfig

    # Defaults shown in the help are read from where they are decided (they cannot drift).
    default = {k: f.default for k, f in ConsumerConfig.model_fields.items()}
    forward = settings_default("batch_max_texts")
    parser.add_argument("model_dir", metavar="MODEL", help="model folder or run directory")
    parser.add_argument("--redis", required=True, metavar="URL", help="redis://host:port/db")
    parser.add_argument("--stream", help=f"stream of review events (default {default['stream']})")
    parser.add_argument("--group", help=f"consumer group (shared work; default {default['group']})")
    parser.add_argument("--consumer", help="this consumer's name in the group (default host-pid)")
    add_service_model_arguments(parser)
    parser.add_argument(
        "--batch-size",
        type=int,
        help=f"stream entries per read (default {default['batch_size']}), scored in one "
        "predict call; the model's forward passes take REVIEWSENSE_BATCH_MAX_TEXTS texts at a "
        f"time (default {forward})",
    )
    parser.add_argument(
        "--claim-idle",
        type=float,
        metavar="SECONDS",
        help="take over events another consumer left pending this long "
        f"(default {default['claim_idle_s']:g})",
    )
    parser.add_argument(
        "--until-idle",
        type=float,
        metavar="SECONDS",
        help="exit once the stream had nothing new for this long (default: run forever)",
    )
    parser.add_argument(
        "--stats-json",
        metavar="FILE",
        help='write {"read", "stored", "duplicates", "dead", "acked"} at exit',
    )
    parser.add_argument(
        "--dead-stream",
        help=f"stream for malformed events (default {default['dead_stream']})",
    )
    parser.add_argument(
        "--flags-stream",
        help=f"stream the flags are published to (default {default['flags_stream']})",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus /metrics on 127.0.0.1:PORT (1-65535; default: not served)",
    )


def build_config(args: argparse.Namespace, max_text_chars: int):
    """ConsumerConfig from the flags (validated by pydantic; errors name the flag)."""
    from pydantic import ValidationError

    from reviewsense.errors import ConfigError
    from reviewsense.service.consumer import ConsumerConfig

    names = {
        "redis_url": "redis",
        "stream": "stream",
        "group": "group",
        "consumer": "consumer",
        "dead_stream": "dead_stream",
        "flags_stream": "flags_stream",
        "batch_size": "batch_size",
        "claim_idle_s": "claim_idle",
        "until_idle_s": "until_idle",
        "metrics_port": "metrics_port",
    }
    given = {field: getattr(args, attr) for field, attr in names.items()}
    given = {k: v for k, v in given.items() if v is not None}
    try:
        return ConsumerConfig(**given, max_text_chars=max_text_chars)
    except ValidationError as e:
        err = e.errors()[0]
        flag = "--" + names.get(str(err["loc"][0]), str(err["loc"][0])).replace("_", "-")
        raise ConfigError(f"{flag}: {err['msg']} (got {err.get('input')!r})") from None


def _check_redis(url: str) -> None:
    import redis

    from reviewsense.errors import ConfigError

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.ping()
        client.close()
    except (redis.RedisError, ValueError) as e:
        raise ConfigError(f"--redis: cannot reach {url}: {e}") from None


def _serve_metrics(port: int):
    """The consumer's Prometheus counters, served on 127.0.0.1:``port``.

    Raises:
        ConfigError: naming --metrics-port when the port cannot be bound (in use, privileged).
    """
    from reviewsense.errors import ConfigError
    from reviewsense.service.consumer import ConsumerMetrics

    metrics = ConsumerMetrics()
    try:
        metrics.serve(port)
    except OSError as e:
        raise ConfigError(
            f"--metrics-port: cannot listen on 127.0.0.1:{port}: {e.strerror or e}; "
            "pick a free port"
        ) from None
    return metrics


def run(args: argparse.Namespace) -> int:
    import redis

    from reviewsense import rundir
    from reviewsense.cli._common import migrated_engine
    from reviewsense.errors import ConfigError
    from reviewsense.jsonio import write_json
    from reviewsense.service.consumer import StreamConsumer, stats_dict
    from reviewsense.service.state import load_predictor, resolve_threshold
    from reviewsense.settings import ServiceSettings

    given = {field: getattr(args, flag[2:].replace("-", "_")) for field, flag in FLAGS.items()}
    settings = ServiceSettings.from_flags(given, FLAGS)
    config = build_config(args, settings.max_text_chars)
    model_dir = rundir.resolve_model_dir(args.model_dir)
    # Fail fast, before the model loads: database, metrics port, Redis.
    migrated_engine(settings.db_url).dispose()
    metrics = _serve_metrics(config.metrics_port) if config.metrics_port is not None else None
    _check_redis(config.redis_url)
    predictor = load_predictor(model_dir, settings)
    threshold, source = resolve_threshold(settings, model_dir, predictor)
    consumer = StreamConsumer(
        config, predictor, db_url=settings.db_url, threshold=threshold, metrics=metrics
    )
    log.info(
        "consuming %s as %s/%s (threshold %.4f from %s)",
        config.stream,
        config.group,
        config.consumer,
        threshold,
        source,
    )
    try:
        consumer.run()
    except redis.ConnectionError as e:
        raise ConfigError(f"--redis: cannot reach {config.redis_url}: {e}") from None
    except KeyboardInterrupt:
        log.info("interrupted; events not yet acknowledged will be redelivered")
    finally:
        consumer.close()
        if args.stats_json:
            write_json(args.stats_json, stats_dict(consumer.stats))
    log.info("consumer stats: %s", stats_dict(consumer.stats))
    return 0
