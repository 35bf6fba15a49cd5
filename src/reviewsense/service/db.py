"""Database models and engine: SQLite (embedded default) or PostgreSQL (by URL).

All state of the service lives here, so several replicas can share one PostgreSQL.
Timestamps are stored as naive UTC datetimes: SQLite has no time zones and mixing aware and
naive values across backends is a classic source of off-by-hours bugs.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from reviewsense.errors import ConfigError

ROLES = ("ingest", "support", "read")
FLAG_STATUSES = ("open", "resolved")

# Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE (see below).
SQLITE_WRITE = "reviewsense_sqlite_write"
# How long a SQLite connection waits for another writer (busy timeout, WAL switch) [s].
SQLITE_BUSY_TIMEOUT_S = 30


def utcnow() -> dt.datetime:
    """Current UTC time as a naive datetime (the storage convention of this module)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """An API key: only its SHA-256 hash is stored; ``key_id`` is the public part of the key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Title(Base):
    """A show or film reviews are about; created on its first review."""

    __tablename__ = "titles"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class Review(Base):
    """A stored review with the model's prediction at ingestion time."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title_id: Mapped[str] = mapped_column(ForeignKey("titles.id"), nullable=False)
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    rating: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    label: Mapped[str] = mapped_column(String(16), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    prob_negative: Mapped[float] = mapped_column(Float, nullable=False)
    truncated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    model_version: Mapped[str] = mapped_column(String(200), nullable=False)
    # Where an event-fed review came from ("stream:<stream id>" or "key:<idempotency_key>"):
    # unique, so a redelivered event cannot be stored twice. NULL for reviews posted over HTTP.
    event_key: Mapped[str | None] = mapped_column(String(250), nullable=True, unique=True)

    __table_args__ = (
        # Per-title aggregates (counts, 7-day trend, daily series) scan by title and time.
        Index("ix_reviews_title_created", "title_id", "created_at"),
        # The support view groups by viewer and lists one viewer's reviews newest first.
        Index("ix_reviews_user_created", "user_id", "created_at"),
    )


class Flag(Base):
    """A review whose P(negative) reached the threshold: the support team's queue."""

    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), unique=True, nullable=False)
    title_id: Mapped[str] = mapped_column(String(200), nullable=False)
    prob_negative: Mapped[float] = mapped_column(Float, nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_flags_status_id", "status", "id"),)


class IdempotencyRecord(Base):
    """The stored response of a request sent with an ``Idempotency-Key`` header.

    Written in the same transaction as the reviews, so a retry either finds the complete
    response or finds nothing stored at all.
    """

    __tablename__ = "idempotency_keys"

    # Scoped per API key: two clients cannot collide on (or read) each other's keys.
    api_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    response_json: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


def normalize_url(url: str) -> str:
    """Map user-facing URLs to SQLAlchemy ones (``postgresql://`` → psycopg 3 driver).

    Raises:
        ConfigError: for an unparsable URL or an unsupported database.
    """
    try:
        u = make_url(url)
    except Exception as e:  # SQLAlchemy raises ArgumentError; any parse failure is a user error
        raise ConfigError(f"--db: cannot parse database URL {url!r}: {e}") from None
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"--db: unsupported database {u.drivername!r} (use sqlite or postgresql)")
    return u.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL + ``synchronous=FULL`` (no acknowledged write lost).

    Raises:
        ConfigError: bad URL or SQLite file in a missing folder.
    """
    url = normalize_url(url)
    u = make_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db and db != ":memory:":
            parent = Path(db).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError(f"--db: folder {parent} of the SQLite file does not exist")
        # Threads of the server share the pool; SQLite waits for another writer.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    else:
        kwargs.update(pool_size=10, max_overflow=20, pool_recycle=1800)
    engine = create_engine(url, **kwargs)
    if is_sqlite(engine):
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's implicit
        # transactions start too late and as DEFERRED).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY at once
        # (no busy wait) when another connection writes meanwhile; write transactions take the
        # write lock up front instead and simply queue behind each other.
        if conn.get_execution_options().get(SQLITE_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _enable_wal(cur: sqlite3.Cursor) -> None:
    """Switch the file to WAL once; retry while another connection holds the lock.

    Changing the journal mode needs an exclusive lock and SQLite does not run its busy handler
    for it, so replicas opening a fresh file together would get "database is locked" at once.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay_s = 0.005
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + delay_s > deadline:
                raise
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.2)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant: the PostgreSQL advisory lock that serialises replicas' migrations.
_PG_MIGRATION_LOCK = 7_215_443_001


def run_migrations(engine: Engine) -> None:
    """Create or upgrade the schema to the newest Alembic revision.

    Safe when several replicas start at once: PostgreSQL takes an advisory lock and SQLite a
    write lock (BEGIN IMMEDIATE) for the whole upgrade, so the second one finds it done.
    """
    from alembic import command
    from alembic.config import Config

    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        # Alembic's per-plugin INFO lines drown the service's own start-up messages.
        alembic_log.setLevel(logging.WARNING)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect().execution_options(**{SQLITE_WRITE: True}) as conn:
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
