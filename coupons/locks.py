"""Per-member serialisation of claims (R-ISS-3, seed 001: "issuance contention → Redis distributed lock").

With Redis: a lock key per (tenant, inventory, member) — SET NX PX with a token, released by a Lua compare-and-delete
(redis-py's Lock), held around the claim's transaction. Without Redis (the zero-setup default): a PostgreSQL
transaction-level advisory lock on a hash of the same key, taken as the transaction's first statement.
Either way the database constraints remain the last guard.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from coupons.exceptions import MemberBusy

LOCK_TIMEOUT_SECONDS = 10  # a crashed holder frees the lock after this long
WAIT_SECONDS = 5

_redis = None


def redis_client():
    global _redis
    if _redis is None:
        from redis import Redis

        _redis = Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    return _redis


@contextmanager
def member_lock(key: str) -> Iterator[None]:
    """Hold the member's lock around a transaction. Without Redis this is a no-op and ``advisory_lock`` is used."""
    if not settings.USE_REDIS:
        yield
        return
    lock = redis_client().lock(f"coupons:lock:member:{key}", timeout=LOCK_TIMEOUT_SECONDS, blocking=True,
                               blocking_timeout=WAIT_SECONDS)
    if not lock.acquire():
        raise MemberBusy()
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile: the transaction finished anyway, constraints guarded it
            pass


def advisory_lock(key: str) -> None:
    """Inside a transaction, without Redis: serialise on the key until commit/rollback."""
    if settings.USE_REDIS:
        return
    digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [digest])
