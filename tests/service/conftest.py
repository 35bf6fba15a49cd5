"""Shared fixtures of the service tests: a tiny random BERT model folder, apps, keys, servers."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pg.py and helpers.py

from helpers import FixedPredictor, Server, build_tiny_model, make_key  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def predictor(tiny_model_dir):
    from reviewsense.inference.predictor import Predictor

    return Predictor.from_pretrained(tiny_model_dir, backend="torch", num_threads=1)


@pytest.fixture()
def fixed_predictor(predictor) -> FixedPredictor:
    return FixedPredictor(predictor)


@pytest.fixture()
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture()
def make_client(fixed_predictor):
    """Factory: a TestClient for an app on ``db_url`` plus one key per role."""
    from fastapi.testclient import TestClient

    from reviewsense.service.app import create_app
    from reviewsense.settings import ServiceSettings

    stack = contextlib.ExitStack()

    def _make(db_url: str, **overrides):
        settings = ServiceSettings(db_url=db_url, **overrides)
        app = create_app(settings, predictor=overrides.pop("predictor", fixed_predictor))
        client = stack.enter_context(TestClient(app))
        keys = {r: make_key(db_url, r) for r in ("ingest", "support", "read")}
        return client, keys

    yield _make
    stack.close()


@pytest.fixture()
def client_keys(make_client, sqlite_url):
    return make_client(sqlite_url)


@pytest.fixture()
def start_server(tmp_path) -> Iterator:
    servers: list[Server] = []

    def _start(model_dir: Path, db_url: str, *extra: str, wait: bool = True) -> Server:
        srv = Server(model_dir, db_url, tmp_path / f"server{len(servers)}.log", *extra)
        servers.append(srv)
        return srv.wait_ready() if wait else srv

    yield _start
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL cluster for the session.

    Skips (with the reason) only when PostgreSQL is not installed; an installed server that
    does not start raises ``PgStartError``, so every test using it errors instead of skipping.
    """
    from pg import PgUnavailable, start_cluster

    try:
        cluster = start_cluster()
    except PgUnavailable as e:
        print(f"PostgreSQL tests skipped: {e}")  # shown with -s / in the CI log
        pytest.skip(f"PostgreSQL unavailable: {e}")
    yield cluster
    cluster.stop()


@pytest.fixture()
def pg_url(pg_cluster) -> str:
    """A fresh, empty database on the session's cluster."""
    return pg_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Each DB test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture()
def thread_server(fixed_predictor):
    """Factory: serve a new app on ``db_url`` over real HTTP; returns (server, keys)."""
    from helpers import ThreadServer

    from reviewsense.service.app import create_app
    from reviewsense.settings import ServiceSettings

    servers = []

    def _make(db_url: str, **overrides):
        app = create_app(ServiceSettings(db_url=db_url, **overrides), predictor=fixed_predictor)
        keys = {r: make_key(db_url, r) for r in ("ingest", "support", "read")}
        srv = ThreadServer(app)
        servers.append(srv)
        return srv, keys

    yield _make
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A redis-server for the session; skips (with the reason) only when none can start."""
    from redis_server import RedisUnavailable, start_redis

    try:
        server = start_redis()
    except RedisUnavailable as e:
        pytest.skip(f"Redis unavailable: {e}")
    yield server
    server.stop()


@pytest.fixture()
def redis_url(redis_server) -> Iterator[str]:
    """The session's server, emptied before each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url
