"""PostgreSQL session advisory locks: one run at a time of work that must not overlap (cron commands and the sweeps
they call), across processes and machines.

``session_lock(key)`` holds the lock for a ``with`` block and yields whether it got it: at once False when another
session holds it (``wait=False``), or after waiting (``wait=True``). The server drops a session lock when the
holder's connection ends, so a killed run never leaves it behind. A key is a signed 64-bit integer, or a name hashed
to one (``lock_key``).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection

logger = logging.getLogger("coupons.locks")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def session_lock(key: int | str, *, wait: bool = False) -> Iterator[bool]:
    key = lock_key(key) if isinstance(key, str) else key
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            got = True
        else:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


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
