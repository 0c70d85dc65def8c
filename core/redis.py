"""Every Redis client of the request path, with timeouts, and what a Redis outage means (R-NFR-3, issue #18).

Design: docs/design/jobs-and-operations.md#core-redis.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.exceptions import DomainError
import redis.exceptions
from redis import Redis

logger = logging.getLogger("coupons.redis")

_clients: dict[tuple[str, float, float], Any] = {}
_lock = threading.Lock()
_down_until = 0.0


class DependencyUnavailable(DomainError):
    """PostgreSQL or Redis did not answer in time: nothing was changed; retry after ``Retry-After`` seconds."""

    code = "dependency_unavailable"
    status = 503
    transient = True
    default_message = _("A service this request needs is not answering; nothing was changed. Retry later.")

    def __init__(self, message: Any = None, *, dependency: str = "redis", retry_after: int | None = None) -> None:
        wait = retry_after if retry_after is not None else retry_after_seconds()
        super().__init__(message, details={"dependency": dependency, "retry_after": wait})


def retry_after_seconds() -> int:
    return max(1, int(getattr(settings, "COUPON_REDIS_RETRY_AFTER_SECONDS", 5)))


def error_types() -> tuple[type[BaseException], ...]:
    """What a Redis outage raises: redis-py's connection/timeout errors, django-redis's wrapper, socket errors."""
    types: list[type[BaseException]] = [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                                         redis.exceptions.BusyLoadingError, ConnectionError, TimeoutError]
    try:
        from django_redis.exceptions import ConnectionInterrupted  # noqa: PLC0415  (optional dependency)

        types.append(ConnectionInterrupted)
    except ImportError:  # pragma: no cover - a dependency
        pass
    return tuple(types)


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, error_types())


def client(*, timeout: float | None = None) -> Any:
    """A shared redis-py client for ``REDIS_URL`` with the configured connect and read timeouts."""
    connect = float(settings.COUPON_REDIS_CONNECT_TIMEOUT_SECONDS)
    read = float(timeout if timeout is not None else settings.COUPON_REDIS_TIMEOUT_SECONDS)
    key = (settings.REDIS_URL, connect, read)
    found = _clients.get(key)
    if found is None:
        with _lock:
            found = _clients.get(key)
            if found is None:
                found = _clients[key] = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=connect,
                                                       socket_timeout=read, retry_on_timeout=False)
    return found


def reset_clients() -> None:
    """Forget every client and the breaker (tests that point REDIS_URL elsewhere)."""
    global _down_until
    with _lock:
        for found in _clients.values():
            try:
                found.close()
            except Exception:
                pass
        _clients.clear()
        _down_until = 0.0


def is_down() -> bool:
    """True while the breaker is open: a Redis failure in this process less than the retry period ago."""
    return time.monotonic() < _down_until


def mark_down(exc: BaseException | None = None) -> None:
    global _down_until
    if not is_down():
        logger.warning("Redis is not answering (%s); not asking it for %s s", exc, retry_after_seconds())
    _down_until = time.monotonic() + retry_after_seconds()


def mark_up() -> None:
    global _down_until
    _down_until = 0.0


def fail_closed(what: str) -> DependencyUnavailable:
    """The refusal for a use that must not go ahead without Redis (``what`` names it in the log)."""
    logger.warning("refusing %s: Redis is not answering", what)
    return DependencyUnavailable(dependency="redis")
