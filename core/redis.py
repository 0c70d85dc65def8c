"""Every Redis client of the request path, with timeouts, and what a Redis outage means (R-NFR-3, issue #18).

With ``REDIS_CLUSTER_URL`` the clients made here talk to a Redis Cluster (issue #23): every multi-key operation of the
app keeps its keys in one hash slot (``hash_tag``); RQ's queues and the cache stay on ``REDIS_URL``.

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
from redis.cluster import RedisCluster

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
                                         redis.exceptions.BusyLoadingError, ConnectionError, TimeoutError,
                                         # a cluster without a quorum, or a slot whose node is gone (issue #23)
                                         redis.exceptions.ClusterDownError, redis.exceptions.SlotNotCoveredError]
    try:
        from django_redis.exceptions import ConnectionInterrupted  # noqa: PLC0415  (optional dependency)

        types.append(ConnectionInterrupted)
    except ImportError:  # pragma: no cover - a dependency
        pass
    return tuple(types)


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, error_types())


def hash_tag(tenant_id: int) -> str:
    """The Redis Cluster hash tag of a tenant's keys: ``{t<id>}``. Every key one command, script or transaction
    touches carries the same tag, so they are in one slot (issue #23; the list: docs/design/redis-cluster.md)."""
    return f"{{t{int(tenant_id)}}}"


def url() -> str:
    """Where the app's own keys live: ``REDIS_CLUSTER_URL`` (a seed node of a Redis Cluster) or ``REDIS_URL``."""
    return str(getattr(settings, "REDIS_CLUSTER_URL", "") or settings.REDIS_URL)


def is_cluster() -> bool:
    return bool(getattr(settings, "REDIS_CLUSTER_URL", ""))


class _Cluster(RedisCluster):
    """RedisCluster whose "no node answers" is the ConnectionError every caller already treats as an outage.

    redis-py raises ``RedisClusterException`` when it cannot reach any node to re-read the slots after a connection
    error; that class also means a programming error (keys in several slots), which must stay loud, so only the
    unreachable case is translated."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)
        except redis.exceptions.RedisClusterException as exc:
            if _unreachable(exc):
                raise redis.exceptions.ConnectionError(str(exc)) from exc
            raise


def _unreachable(exc: redis.exceptions.RedisClusterException) -> bool:
    return isinstance(exc.__cause__, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)) or \
        "cannot be connected" in str(exc)


def new_client(*, read_timeout: float, **options: Any) -> Any:
    """A redis-py client for ``url()``: a cluster client with ``REDIS_CLUSTER_URL``, else a plain one. Raises
    redis-py's ConnectionError when a cluster has no node to answer."""
    connect = float(settings.COUPON_REDIS_CONNECT_TIMEOUT_SECONDS)
    if is_cluster():
        options.pop("health_check_interval", None)  # not a cluster client option
        try:
            return _Cluster.from_url(url(), socket_connect_timeout=connect, socket_timeout=read_timeout,
                                     retry_on_timeout=False, **options)
        except redis.exceptions.RedisClusterException as exc:
            if _unreachable(exc):
                raise redis.exceptions.ConnectionError(str(exc)) from exc
            raise
    return Redis.from_url(url(), socket_connect_timeout=connect, socket_timeout=read_timeout, retry_on_timeout=False,
                          **options)


def client(*, timeout: float | None = None) -> Any:
    """A shared redis-py client for ``url()`` with the configured connect and read timeouts."""
    connect = float(settings.COUPON_REDIS_CONNECT_TIMEOUT_SECONDS)
    read = float(timeout if timeout is not None else settings.COUPON_REDIS_TIMEOUT_SECONDS)
    key = (url(), connect, read)
    found = _clients.get(key)
    if found is None:
        with _lock:
            found = _clients.get(key)
            if found is None:
                found = _clients[key] = new_client(read_timeout=read)
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
