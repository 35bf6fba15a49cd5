"""`reviewsense serve`: flags, threshold resolution, start-up errors, a real server process."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from helpers import Server, build_tiny_model, make_key  # noqa: E402

from reviewsense.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def model_with_threshold(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("serve") / "model", threshold=0.73)


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ["--db", "--host", "--port", "--threshold", "--queue-size", "--batch-max"]:
        assert flag in out


def test_help_reads_the_defaults_from_the_settings(monkeypatch, capsys):
    from reviewsense.settings import ServiceSettings

    monkeypatch.setattr(ServiceSettings.model_fields["queue_size"], "default", 4321)
    monkeypatch.setattr(ServiceSettings.model_fields["batch_wait_ms"], "default", 7.5)
    monkeypatch.setattr(ServiceSettings.model_fields["batch_split"], "default", False)
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "before 503 (default 4321)" in out
    assert "under load (default 7.5; none when idle)" in out
    assert "answers go out (default off)" in out


def test_unusable_db_is_a_one_line_error(model_with_threshold, tmp_path, capsys):
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"this is not an SQLite file" * 100)
    assert main(["serve", str(model_with_threshold), "--db", f"sqlite:///{bad}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reviewsense serve: error: --db: cannot open or migrate the database")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "1.5"], "--threshold"),
        (["--db", "mysql://h/db"], "--db"),
        (["--db", "postgresql://u@127.0.0.1:1/x"], "--db"),
        (["--queue-size", "0"], "--queue-size"),
        (["--port", "70000"], "--port"),
    ],
)
def test_bad_options_are_one_line_errors(model_with_threshold, tmp_path, capsys, args, message):
    db = ["--db", f"sqlite:///{tmp_path / 'x.db'}"] if "--db" not in args else []
    assert main(["serve", str(model_with_threshold), *db, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reviewsense serve: error:") and message in err


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope"), "--db", f"sqlite:///{tmp_path}/x.db"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_flags_are_validated_by_the_settings_and_override_the_environment(monkeypatch):
    from reviewsense.cli.main import build_parser
    from reviewsense.cli.serve import build_settings
    from reviewsense.errors import ConfigError

    monkeypatch.setenv("REVIEWSENSE_QUEUE_SIZE", "7")
    monkeypatch.setenv("REVIEWSENSE_BATCH_MAX_TEXTS", "9")
    args = build_parser("serve").parse_args(["serve", "m", "--batch-max", "4"])
    settings = build_settings(args)
    assert (settings.queue_size, settings.batch_max_texts) == (7, 4)
    monkeypatch.setenv("REVIEWSENSE_QUEUE_SIZE", "0")
    with pytest.raises(ConfigError, match="REVIEWSENSE_QUEUE_SIZE"):
        build_settings(args)
    monkeypatch.delenv("REVIEWSENSE_QUEUE_SIZE")
    bad = build_parser("serve").parse_args(["serve", "m", "--num-threads", "0"])
    with pytest.raises(ConfigError, match="--num-threads"):
        build_settings(bad)


@pytest.mark.slow
def test_serve_process_reads_the_models_threshold_and_answers(model_with_threshold, tmp_path):
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    key = make_key(db, "ingest")
    srv = Server(model_with_threshold, db, tmp_path / "serve.log").wait_ready()
    try:
        ready = httpx.get(srv.url + "/readyz").json()
        assert ready["threshold"] == 0.73 and ready["threshold_source"] == "model"
        r = httpx.post(
            srv.url + "/v1/reviews",
            json={"title_id": "t", "text": "hello"},
            headers={"X-API-Key": key},
        )
        assert r.status_code == 201 and r.json()["threshold"] == 0.73
        assert httpx.get(srv.url + "/").status_code == 200
    finally:
        srv.stop()
    # Graceful shutdown on SIGTERM (uvicorn re-raises the signal after cleaning up).
    assert srv.proc.returncode in (0, -15)
    assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
