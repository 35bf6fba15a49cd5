"""API keys: format, hashing, verification, revocation and the short cache."""

from __future__ import annotations

from sqlalchemy import select

from reviewsense.service import crud
from reviewsense.service.db import ApiKey, make_engine, make_sessionmaker, run_migrations
from reviewsense.service.security import KeyVerifier, generate_key, hash_key, parse_key_id


def _sm(url):
    engine = make_engine(url)
    run_migrations(engine)
    return make_sessionmaker(engine)


def test_generated_keys_are_unique_and_parse():
    ids = set()
    for _ in range(50):
        key_id, key = generate_key()
        assert parse_key_id(key) == key_id
        assert len(key) > 40
        ids.add(key_id)
    assert len(ids) == 50


def test_malformed_keys_do_not_parse():
    for bad in ["", "abc", "rsk_xyz_abc", "rsk_0123456789ab_", "xx_0123456789ab_secret"]:
        assert parse_key_id(bad) is None


def test_only_the_hash_is_stored(sqlite_url):
    sm = _sm(sqlite_url)
    with sm() as s:
        key_id, key = crud.create_api_key(s, role="ingest")
        s.commit()
        row = s.scalars(select(ApiKey)).one()
    assert row.key_hash == hash_key(key) and key not in row.key_hash
    assert row.key_id == key_id and row.role == "ingest"


def test_verify_accepts_valid_and_rejects_unknown_wrong_and_revoked(sqlite_url):
    sm = _sm(sqlite_url)
    with sm() as s:
        key_id, key = crud.create_api_key(s, role="support")
        s.commit()
    v = KeyVerifier(sm, cache_s=0.0)
    p = v.verify(key)
    assert p is not None and p.role == "support" and p.key_id == key_id
    assert v.verify(None) is None
    assert v.verify(key + "x") is None  # right id, wrong secret
    assert v.verify(generate_key()[1]) is None  # unknown id
    with sm() as s:
        (row,) = crud.find_api_keys(s, key_id_or_prefix=key_id[:6])
        assert crud.revoke_api_key(s, key=row)
        assert not crud.revoke_api_key(s, key=row)  # already revoked
        s.commit()
    assert v.verify(key) is None


def test_revocation_takes_effect_after_the_cache_expires(sqlite_url):
    sm = _sm(sqlite_url)
    with sm() as s:
        key_id, key = crud.create_api_key(s, role="read")
        s.commit()
    now = [100.0]  # a fake monotonic clock the test steps by hand
    v = KeyVerifier(sm, cache_s=5.0, clock=lambda: now[0])
    assert v.cached(key) is None  # never verified: the route goes to the database
    assert v.verify(key) is not None
    with sm() as s:
        (row,) = crud.find_api_keys(s, key_id_or_prefix=key)  # a full key works too
        crud.revoke_api_key(s, key=row)
        s.commit()
    assert v.cached(key) is not None  # within cache_s the revoked key still passes
    now[0] += 4.0
    assert v.cached(key) is not None  # still inside the window
    assert v.verify(key) is not None  # served from the cache, no database check
    now[0] += 1.0  # exactly cache_s after verification: the entry has expired
    assert v.cached(key) is None
    assert v.verify(key) is None


def test_prefix_search_treats_like_wildcards_literally(sqlite_url):
    sm = _sm(sqlite_url)
    with sm() as s:
        crud.create_api_key(s, role="read")
        s.commit()
        assert crud.find_api_keys(s, key_id_or_prefix="%") == []
        assert crud.find_api_keys(s, key_id_or_prefix="____") == []
