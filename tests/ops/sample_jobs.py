"""Job functions the RQ worker in tests/ops imports by dotted path. State lives in Redis (the worker may be another
process), under keys the tests clean up."""
from __future__ import annotations

from django.conf import settings
from django.db import OperationalError
from redis import Redis

from core.exceptions import InvalidInput

PREFIX = "tests:ops:"


def redis() -> Redis:
    return Redis.from_url(settings.REDIS_URL)


def flaky(name: str, failures: int) -> str:
    """Fails with a lost-connection error ``failures`` times, then succeeds (a transient failure)."""
    attempt = redis().incr(f"{PREFIX}{name}:attempts")
    if attempt <= failures:
        raise OperationalError("server closed the connection unexpectedly")
    redis().set(f"{PREFIX}{name}:done", "1")
    return "ok"


def refused_until_fixed(name: str) -> str:
    """Fails with a domain error (a permanent failure) until the test 'fixes' the cause by setting a flag."""
    redis().incr(f"{PREFIX}{name}:attempts")
    if not redis().get(f"{PREFIX}{name}:fixed"):
        raise InvalidInput("The batch SECRET-CAUSE refers to a policy that is not approved.", code="not_approved")
    redis().set(f"{PREFIX}{name}:done", "1")
    return "ok"


def attempts(name: str) -> int:
    return int(redis().get(f"{PREFIX}{name}:attempts") or 0)


def done(name: str) -> bool:
    return redis().get(f"{PREFIX}{name}:done") == b"1"
