"""A throwaway PostgreSQL cluster from Debian's binaries, for tests and benchmarks.

``initdb`` refuses to run as root, so as root the cluster runs as the ``postgres`` user (created
by Debian's postgresql package) in a fresh temporary folder; as any other user it runs as that
user. It listens on a free loopback port only. :func:`start_cluster` raises
:class:`PgUnavailable` when the binaries are missing (tests skip with that reason) and
:class:`PgStartError` when PostgreSQL is installed but does not start (tests fail: a broken
server must not silently skip every PostgreSQL test).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


class PgUnavailable(RuntimeError):
    """PostgreSQL is not installed here (the message says what to install)."""


class PgStartError(RuntimeError):
    """PostgreSQL is installed but the cluster did not start (the message has its log)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not found:
        raise PgUnavailable(
            "no /usr/lib/postgresql/*/bin/initdb (apt-get install -y postgresql; see "
            ".ci/service-deps.sh)"
        )
    return Path(found[-1]).parent


class PgCluster:
    """A running cluster; ``url(dbname)`` gives SQLAlchemy URLs, ``create_database()`` new DBs."""

    def __init__(self, *, fsync: bool = False) -> None:
        bindir = _bindir()
        self.port = _free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="reviewsense-pg-"))
        self.data = self.tmp / "data"
        self.user = "postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise PgStartError(
                    "running as root and there is no 'postgres' user (Debian's postgresql "
                    "package creates it)"
                ) from None
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        log = self.tmp / "server.log"
        try:
            self._run(
                [str(bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust"]
                + ["-E", "UTF8", "--no-sync", "--locale=C"]
            )
            opts = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.tmp} "
                f"-c fsync={'on' if fsync else 'off'} -c max_connections=200 "
                "-c shared_buffers=128MB"
            )
            if not fsync:
                opts += " -c synchronous_commit=off -c full_page_writes=off"
            self._run(
                [str(bindir / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "60"]
                + ["-o", opts, "start"]
            )
        except (subprocess.CalledProcessError, OSError) as e:
            detail = getattr(e, "stderr", b"") or b""
            text = detail.decode(errors="replace").strip() if isinstance(detail, bytes) else detail
            if log.exists():
                text += "\n" + log.read_text(errors="replace")[-1000:]
            self.stop()
            raise PgStartError(f"cannot start PostgreSQL: {e}: {text}") from None
        self._bindir = bindir

    def _run(self, cmd: list[str]) -> None:
        subprocess.run(self._as + cmd, check=True, capture_output=True, timeout=120)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database; returns its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is generated here, not user input
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run(
                    [str(_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
                )
            except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_cluster(*, fsync: bool = False, attempts: int = 2) -> PgCluster:
    """Start a cluster (retrying once: the free port can be taken in between).

    Raises :class:`PgUnavailable` at once when the binaries are missing, and
    :class:`PgStartError` when every attempt to start an installed server failed.
    """
    last: PgStartError | None = None
    for _ in range(attempts):
        try:
            return PgCluster(fsync=fsync)
        except PgStartError as e:
            last = e
            time.sleep(0.5)
    assert last is not None
    raise last
