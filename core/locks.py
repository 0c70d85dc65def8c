"""PostgreSQL session advisory locks: one run at a time of work that must not overlap (cron commands and the sweeps
they call), across processes and machines.

Design: docs/design/jobs-and-operations.md#core-locks.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from core import redis as core_redis
from core.exceptions import MemberBusy

logger = logging.getLogger("coupons.locks")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def advisory_acquire(key: int | str, *, wait: bool = True, shared: bool = False) -> bool:
    """Take a session advisory lock on this connection; with ``wait=False`` answer at once whether it was free."""
    key = lock_key(key) if isinstance(key, str) else key
    kind = "_shared" if shared else ""
    with connection.cursor() as cursor:
        if wait:
            cursor.execute(f"SELECT pg_advisory_lock{kind}(%s)", [key])
            return True
        cursor.execute(f"SELECT pg_try_advisory_lock{kind}(%s)", [key])
        return bool(cursor.fetchone()[0])


def advisory_release(key: int | str, *, shared: bool = False) -> None:
    """Give back a session advisory lock. A lost connection has released its locks already: logged, not raised."""
    key = lock_key(key) if isinstance(key, str) else key
    kind = "_shared" if shared else ""
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_unlock{kind}(%s)", [key])
    except Exception:
        logger.warning("could not release advisory lock %s", key, exc_info=True)


@contextmanager
def session_lock(key: int | str, *, wait: bool = False, shared: bool = False) -> Iterator[bool]:
    """Hold the lock for the block; yields whether it was got (always True with ``wait``). ``shared``: many holders
    at once, none while an exclusive holder has it (the Bloom filter's writers and its rebuild)."""
    got = advisory_acquire(key, wait=wait, shared=shared)
    try:
        yield got
    finally:
        if got:
            advisory_release(key, shared=shared)


def xact_lock(key: int | str) -> None:
    """Inside a transaction: wait for the key, hold it until commit or rollback."""
    key = lock_key(key) if isinstance(key, str) else key
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


# --- locks held until the request's transaction ends ------------------------------------------------------------
# A lock taken inside a service (the per-member Redis claim lock) is released when the service's block ends. When an
# outer transaction wraps the service — the Idempotency-Key wrapper stores the answer in the same transaction as the
# effect (core.api.idempotency) — that is before the effect commits: the next request of the member would take the
# lock, not see the uncommitted issue, pick the same slot and be refused by the unique index (a false
# ``limit_reached``, issue #18). Inside ``release_after_transaction()`` such releases wait until the block (and so
# the wrapper's transaction, committed or rolled back) has ended.

_deferred = threading.local()


@contextmanager
def release_after_transaction() -> Iterator[None]:
    """Releases registered with ``defer_release`` inside the block run when the block ends (last taken, first freed).
    Wrap the outermost ``transaction.atomic()`` of a request in it."""
    stack = _deferred.__dict__.setdefault("stack", [])
    stack.append([])
    try:
        yield
    finally:
        for release in reversed(stack.pop()):
            try:
                release()
            except Exception:  # a lock that expired or a Redis that went away: the constraints guarded the work
                logger.warning("could not release a lock after the transaction", exc_info=True)


def defer_release(release: Callable[[], None]) -> bool:
    """Hand ``release`` to the enclosing ``release_after_transaction`` block; False (caller releases now) if none."""
    stack = getattr(_deferred, "stack", None)
    if not stack:
        return False
    stack[-1].append(release)
    return True


def session_lock_held(key: int | str) -> bool:
    """True while another session holds the lock (e.g. a live worker on that piece of work). A killed holder's lock
    goes with its connection, so False means nobody is working on it now."""
    with session_lock(key) as got:
        return not got


# --- per-member serialisation of claims (R-ISS-3, seed 001: "issuance contention → Redis distributed lock") -----
# With Redis: a lock key per (tenant, inventory, member) — SET NX PX with a token, released by a Lua compare-and-delete
# (redis-py's Lock), held around the claim's transaction; inside an Idempotency-Key request until the wrapper's
# transaction has ended (``release_after_transaction``). Redis not answering fails closed (503). Without Redis (the
# zero-setup default): a transaction-level advisory lock on the same key. The database constraints stay the last guard.

LOCK_TIMEOUT_SECONDS = 10  # a crashed holder frees the lock after this long
WAIT_SECONDS = 5


@contextmanager
def member_lock(key: str) -> Iterator[None]:
    """Hold the member's lock around a transaction. Without Redis this is a no-op and ``advisory_lock`` is used."""
    if not settings.USE_REDIS:
        yield
        return
    if core_redis.is_down():
        raise core_redis.fail_closed("a member lock")
    lock = core_redis.client().lock(f"coupons:lock:member:{key}", timeout=LOCK_TIMEOUT_SECONDS, blocking=True,
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
        except core_redis.error_types() as exc:
            # No answer: the lock expires by its TTL, but this thread has just waited a whole Redis timeout — open
            # the breaker, or the next request on this thread (a redemption queued behind it) waits another one.
            core_redis.mark_down(exc)
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
    xact_lock(key)
