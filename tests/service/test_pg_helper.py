"""The PostgreSQL test helper skips only when PostgreSQL is missing, never when it is broken."""

from __future__ import annotations

import stat
import types

import pg
import pytest


def test_missing_binaries_are_unavailable(monkeypatch):
    monkeypatch.setattr(pg, "glob", types.SimpleNamespace(glob=lambda pattern: []))
    with pytest.raises(pg.PgUnavailable, match="initdb"):
        pg.start_cluster()


def test_an_installed_server_that_does_not_start_is_an_error(monkeypatch, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("initdb", "pg_ctl"):
        tool = bindir / name
        tool.write_text("#!/bin/sh\necho broken >&2\nexit 1\n")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setattr(pg, "_bindir", lambda: bindir)
    with pytest.raises(pg.PgStartError, match="cannot start PostgreSQL") as info:
        pg.start_cluster(attempts=1)
    assert not isinstance(info.value, pg.PgUnavailable)  # pg_cluster must not skip on it
