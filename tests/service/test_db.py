"""Engine set-up, URL handling and Alembic migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect, text

from reviewsense.errors import ConfigError
from reviewsense.service.db import Base, make_engine, normalize_url, run_migrations


def test_normalize_url_maps_postgres_to_psycopg3():
    assert normalize_url("postgresql://u:p@h/db").startswith("postgresql+psycopg://u:p@h/db")
    assert normalize_url("postgres://h/db").startswith("postgresql+psycopg://")
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("url", ["mysql://h/db", "not a url"])
def test_unsupported_or_bad_url_is_a_config_error(url):
    with pytest.raises(ConfigError, match="--db"):
        normalize_url(url)


def test_sqlite_in_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        make_engine(f"sqlite:///{tmp_path / 'nope' / 'x.db'}")


def test_sqlite_is_wal_with_full_sync(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_migrations_create_every_table_and_are_idempotent(db_url):
    engine = make_engine(db_url)
    run_migrations(engine)
    run_migrations(engine)  # second run: nothing to do
    tables = set(inspect(engine).get_table_names())
    assert {
        "api_keys",
        "titles",
        "reviews",
        "flags",
        "idempotency_keys",
        "alembic_version",
    } <= tables
    engine.dispose()


def test_models_match_the_migration(db_url):
    """The ORM models and 0001_initial.py describe the same schema (no autogenerate diff)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(db_url)
    run_migrations(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_concurrent_migrations_do_not_fail(db_url):
    """Replicas starting together: the migration lock lets exactly one do the work."""
    errors = []

    def _migrate():
        engine = make_engine(db_url)
        try:
            run_migrations(engine)
        except Exception as e:  # collected and asserted below
            errors.append(e)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=_migrate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_replicas_opening_a_fresh_sqlite_file_together_all_connect(tmp_path):
    """Switching a new file to WAL bypasses SQLite's busy wait; every opener must still succeed.

    One round of the race failed ~6% of the time before the retry, so 30 rounds catch a
    regression in most runs; each round is a new file (the switch happens once per file).
    """
    errors = []

    def _open(url):
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        except Exception as e:  # collected and asserted below
            errors.append(e)
        finally:
            engine.dispose()

    for i in range(30):
        url = f"sqlite:///{tmp_path / f'r{i}.sqlite'}"
        threads = [threading.Thread(target=_open, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
