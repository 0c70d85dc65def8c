"""Per-member serialisation of claims (R-ISS-3, seed 001: "issuance contention → Redis distributed lock").

With Redis: a lock key per (tenant, inventory, member) — SET NX PX with a token, released by a Lua compare-and-delete
(redis-py's Lock), held around the claim's transaction. Without Redis (the zero-setup default): a PostgreSQL
transaction-level advisory lock on a hash of the same key, taken as the transaction's first statement.
Either way the database constraints remain the last guard.

Inside an Idempotency-Key request the Redis lock is held until the wrapper's transaction has committed
(``core.locks.release_after_transaction``), so the member's next claim sees this one's issue row (issue #18).
Redis not answering fails closed: the claim is refused with ``503 dependency_unavailable`` (``core.redis``).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from core.locks import defer_release
from coupons.exceptions import MemberBusy

LOCK_TIMEOUT_SECONDS = 10  # a crashed holder frees the lock after this long
WAIT_SECONDS = 5


def redis_client():
    """The request path's Redis client (timeouts from settings, core.redis)."""
    from core import redis as core_redis

    return core_redis.client()


@contextmanager
def member_lock(key: str) -> Iterator[None]:
    """Hold the member's lock around a transaction. Without Redis this is a no-op and ``advisory_lock`` is used."""
    if not settings.USE_REDIS:
        yield
        return
    from core import redis as core_redis

    if core_redis.is_down():
        raise core_redis.fail_closed("a member lock")
    lock = redis_client().lock(f"coupons:lock:member:{key}", timeout=LOCK_TIMEOUT_SECONDS, blocking=True,
                               blocking_timeout=WAIT_SECONDS)
    try:
        got = lock.acquire()
    except core_redis.error_types() as exc:  # fail closed: no lock, no claim
        core_redis.mark_down(exc)
        raise core_redis.fail_closed("a member lock") from exc
    if not got:
        raise MemberBusy()

    def release() -> None:
        try:
            lock.release()
        except Exception:  # expired meanwhile: the transaction finished anyway, constraints guarded it
            pass

    try:
        yield
    finally:
        if not defer_release(release):
            release()


def advisory_lock(key: str) -> None:
    """Inside a transaction, without Redis: serialise on the key until commit/rollback."""
    if settings.USE_REDIS:
        return
    digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [digest])
