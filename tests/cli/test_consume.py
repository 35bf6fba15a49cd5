"""`reviewsense consume`: flags, one-line errors, and a real run against redis-server."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from helpers import build_tiny_model, free_port  # noqa: E402

from reviewsense.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("consume") / "model")


@pytest.fixture(scope="module")
def redis_url():
    from redis_server import RedisUnavailable, start_redis

    try:
        server = start_redis()
    except RedisUnavailable as e:
        pytest.skip(f"Redis unavailable: {e}")
    yield server.url
    server.stop()


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(["consume", "--help"])
    out = capsys.readouterr().out
    for flag in ["--redis", "--stream", "--group", "--db", "--claim-idle", "--until-idle"]:
        assert flag in out
    assert "--stats-json" in out


def test_help_reads_the_defaults_from_the_consumer_config_and_settings(monkeypatch, capsys):
    from reviewsense.service.consumer import ConsumerConfig
    from reviewsense.settings import ServiceSettings

    monkeypatch.setattr(ConsumerConfig.model_fields["claim_idle_s"], "default", 47.5)
    monkeypatch.setattr(ConsumerConfig.model_fields["batch_size"], "default", 77)
    monkeypatch.setattr(ServiceSettings.model_fields["batch_max_texts"], "default", 13)
    with pytest.raises(SystemExit):
        main(["consume", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "pending this long (default 47.5)" in out
    # --batch-size is the entries per read; the forward-pass size is the service setting's.
    assert "stream entries per read (default 77)" in out
    assert "REVIEWSENSE_BATCH_MAX_TEXTS texts at a time (default 13)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--claim-idle", "-1"], "--claim-idle"),
        (["--threshold", "2"], "--threshold"),
        (["--redis", "redis://127.0.0.1:1/0", "--until-idle", "1"], "--redis"),
        (["--metrics-port", "70000"], "--metrics-port"),
        (["--metrics-port", "0"], "--metrics-port"),
    ],
)
def test_bad_options_are_one_line_errors(model_dir, tmp_path, capsys, args, message):
    base = ["consume", str(model_dir), "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    if "--redis" not in args:
        base += ["--redis", "redis://127.0.0.1:1/0"]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reviewsense consume: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_unusable_db_is_a_one_line_error_before_redis_and_the_model(model_dir, tmp_path, capsys):
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"this is not an SQLite file" * 100)
    args = ["consume", str(model_dir), "--db", f"sqlite:///{bad}"]
    assert main([*args, "--redis", "redis://127.0.0.1:1/0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reviewsense consume: error: --db: cannot open or migrate")
    assert len(err.strip().splitlines()) == 1


def test_metrics_port_in_use_is_a_one_line_error(model_dir, tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["consume", str(model_dir), "--db", f"sqlite:///{tmp_path / 'x.db'}"]
        args += ["--redis", "redis://127.0.0.1:1/0", "--metrics-port", str(port)]
        assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"reviewsense consume: error: --metrics-port: cannot listen on 127.0.0.1:{port}"
    )
    assert len(err.strip().splitlines()) == 1


def test_consume_until_idle_writes_stats(model_dir, redis_url, tmp_path):
    import redis

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.delete("cli-reviews", "cli-dead")
    for i in range(5):
        r.xadd("cli-reviews", {"data": json.dumps({"title_id": "t", "text": f"review {i}"})})
    r.xadd("cli-reviews", {"data": "not json"})
    stats = tmp_path / "stats.json"
    db = f"sqlite:///{tmp_path / 'c.db'}"
    port = free_port()
    args = ["consume", str(model_dir), "--redis", redis_url, "--db", db, "--stream"]
    args += ["cli-reviews", "--dead-stream", "cli-dead", "--until-idle", "0.5"]
    args += ["--metrics-port", str(port)]
    assert main([*args, "--stats-json", str(stats), "--num-threads", "1"]) == 0
    assert json.loads(stats.read_text()) == {
        "read": 6,
        "stored": 5,
        "duplicates": 0,
        "dead": 1,
        "acked": 6,
    }
    assert r.xlen("cli-dead") == 1
    r.close()
    # The counters served (from before the model loaded) are the consumer's own.
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'reviewsense_consumer_events_total{outcome="stored"} 5.0' in metrics
