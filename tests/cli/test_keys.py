"""`reviewsense keys create|revoke|list`."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from reviewsense.cli.main import main


@pytest.fixture()
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'keys.db'}"


def create(db, role, capsys):
    assert main(["keys", "create", "--role", role, "--db", db]) == 0
    out = capsys.readouterr()
    return out.out.strip(), out.err


def test_create_prints_the_key_once_and_stores_only_its_hash(db, capsys):
    key, err = create(db, "ingest", capsys)
    assert key.startswith("rsk_") and "\n" not in key
    assert "only now" in err
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key_id, key_hash, role FROM api_keys")).all()
    assert len(rows) == 1 and rows[0].role == "ingest"
    assert key not in rows[0].key_hash and rows[0].key_id in key
    assert main(["keys", "list", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert rows[0].key_id in listing and "active" in listing and key not in listing


def test_revoke_by_prefix_id_or_full_key(db, capsys):
    from reviewsense.service.db import make_engine, make_sessionmaker
    from reviewsense.service.security import KeyVerifier

    key, _ = create(db, "support", capsys)
    key_id = key.split("_")[1]
    verifier = KeyVerifier(make_sessionmaker(make_engine(db)), cache_s=0)
    assert verifier.verify(key) is not None
    assert main(["keys", "revoke", key_id[:6], "--db", db]) == 0
    assert "revoked support key" in capsys.readouterr().out
    assert verifier.verify(key) is None
    assert main(["keys", "revoke", key, "--db", db]) == 0
    assert "already revoked" in capsys.readouterr().out
    assert main(["keys", "list", "--db", db]) == 0
    assert "revoked" in capsys.readouterr().out


def test_revoke_errors(db, capsys):
    key1, _ = create(db, "read", capsys)
    assert main(["keys", "revoke", "zzzzzz", "--db", db]) == 2
    assert "no key id starts with" in capsys.readouterr().err
    assert main(["keys", "revoke", "ab", "--db", db]) == 2
    assert "at least 4" in capsys.readouterr().err
    # An ambiguous prefix: make two keys share one by rewriting an id.
    key2, _ = create(db, "read", capsys)
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_keys SET key_id = 'abcd00000001' WHERE id = 1"))
        conn.execute(text("UPDATE api_keys SET key_id = 'abcd00000002' WHERE id = 2"))
    assert main(["keys", "revoke", "abcd", "--db", db]) == 2
    assert "matches several keys" in capsys.readouterr().err


def test_db_url_from_the_environment(tmp_path, monkeypatch, capsys):
    db = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("REVIEWSENSE_DB_URL", db)
    assert main(["keys", "create", "--role", "read"]) == 0
    capsys.readouterr()
    assert (tmp_path / "env.db").exists()


def test_bad_role_and_bad_db(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["keys", "create", "--role", "admin", "--db", "sqlite:///x.db"])
    assert main(["keys", "create", "--role", "read", "--db", "mysql://h/db"]) == 2
    assert "--db" in capsys.readouterr().err
    bad = f"sqlite:///{tmp_path / 'missing' / 'x.db'}"
    assert main(["keys", "list", "--db", bad]) == 2


def test_bad_environment_variable_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REVIEWSENSE_QUEUE_SIZE", "0")
    assert main(["keys", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reviewsense keys: error: REVIEWSENSE_QUEUE_SIZE:")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "reviewsense.db").exists()


def test_create_help_names_the_roles_and_the_default_db(monkeypatch, capsys):
    from reviewsense.service.db import ROLES
    from reviewsense.settings import ServiceSettings

    monkeypatch.setattr(ServiceSettings.model_fields["db_url"], "default", "sqlite:///k.db")
    with pytest.raises(SystemExit):
        main(["keys", "create", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--role {" + ",".join(ROLES) + "} what the key may do" in out
    assert "REVIEWSENSE_DB_URL, else sqlite:///k.db" in out
