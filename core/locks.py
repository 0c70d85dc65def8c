"""PostgreSQL session advisory locks: one run at a time of work that must not overlap (cron commands and the sweeps
they call), across processes and machines.

``session_lock(key)`` holds the lock for a ``with`` block and yields whether it got it: at once False when another
session holds it (``wait=False``), or after waiting (``wait=True``). The server drops a session lock when the
holder's connection ends, so a killed run never leaves it behind. A key is a signed 64-bit integer, or a name hashed
to one (``lock_key``).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


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
