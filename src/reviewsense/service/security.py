"""API keys: generated once, stored as a SHA-256 hash, checked in constant time.

A key looks like ``rsk_<key_id>_<secret>``. ``key_id`` (12 hex digits) is public: it names
the key in logs, ``keys revoke`` and the database, and lets us find the one row to compare
against without scanning. Only ``sha256(key)`` is stored; the key itself is printed once by
``reviewsense keys create``. Keys carry high entropy (256 random bits), so a fast hash is
appropriate here (unlike passwords, there is nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from reviewsense.service.db import ApiKey

KEY_PREFIX = "rsk"
KEY_ID_HEX = 12


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public id and its role."""

    key_id: str
    role: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> tuple[str, str]:
    """Return ``(key_id, full_key)`` for a new random key."""
    key_id = secrets.token_hex(KEY_ID_HEX // 2)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def parse_key_id(key: str) -> str | None:
    """The public id inside a key, or None when the key is not well-formed."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != KEY_ID_HEX:
        return None
    if not all(c in "0123456789abcdef" for c in parts[1]) or not parts[2]:
        return None
    return parts[1]


class KeyVerifier:
    """Checks ``X-API-Key`` values against the database, with a short positive cache.

    The cache (keyed by the key's hash, never the key) saves one query per request; a revoked
    key stops working on every replica within ``cache_s`` seconds. ``clock`` (seconds,
    monotonic) is injectable so tests can step time instead of sleeping.
    """

    def __init__(
        self,
        sessionmaker,
        *,
        cache_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._cache_s = cache_s
        self._clock = clock
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str | None) -> Principal | None:
        """The principal when the key was verified less than ``cache_s`` ago (no database)."""
        return self._cached(hash_key(key)) if key else None

    def _cached(self, digest: str) -> Principal | None:
        with self._lock:
            hit = self._cache.get(digest)
        return hit[0] if hit is not None and hit[1] > self._clock() else None

    def verify(self, key: str | None) -> Principal | None:
        """Return the key's principal, or None for a missing, unknown or revoked key."""
        if not key:
            return None
        key_id = parse_key_id(key)
        if key_id is None:
            return None
        digest = hash_key(key)  # once per call: the cache and the database both use it
        hit = self._cached(digest)
        if hit is not None:
            return hit
        now = self._clock()
        with self._sessionmaker() as session:
            row = session.execute(
                select(ApiKey.key_hash, ApiKey.role, ApiKey.revoked_at).where(
                    ApiKey.key_id == key_id
                )
            ).first()
        # Constant-time comparison of the hashes: timing reveals nothing about the stored one.
        if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at:
            with self._lock:
                self._cache.pop(digest, None)
            return None
        principal = Principal(key_id=key_id, role=row.role)
        with self._lock:
            if len(self._cache) > 10_000:  # bound memory under a flood of distinct keys
                self._cache.clear()
            self._cache[digest] = (principal, now + self._cache_s)
        return principal
