"""``GET /health/`` (R-OPS-3): database, Redis and queues; 503 naming what is down."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from redis import Redis
from redis.cluster import RedisCluster
from rq import Queue

from core import redis as core_redis
from core.metrics import operator_caller


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:  # any failure means "down"; the message names it
        return f"down: {exc.__class__.__name__}"


def _redis_and_queues() -> tuple[str, dict[str, Any]]:
    if not settings.USE_REDIS:
        return "not configured", {"mode": "in-process (no REDIS_URL)"}
    try:
        conn = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        conn.ping()
        if core_redis.is_cluster():  # the app's own keys on a Redis Cluster (issue #23): every primary answers
            core_redis.client(timeout=2).ping(target_nodes=RedisCluster.PRIMARIES)
        queues = {name: {"queued": Queue(name, connection=conn).count} for name in settings.JOB_QUEUES}
        return "ok", queues
    except Exception as exc:
        return f"down: {exc.__class__.__name__}", {}


def _trusted(request) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff) or operator_caller(request)


@never_cache
@require_GET
def health(request):
    """Anonymous callers (a load balancer, the internet) get the verdict only: ``ok`` or ``down`` per dependency.
    Queue lengths and the failure's exception class are for staff and for metrics callers (token or allowed
    address, ``core.metrics.operator_caller``) — issue #17: no queue internals for anonymous callers."""
    database = _database()
    redis, queues = _redis_and_queues()
    down = [name for name, value in (("database", database), ("redis", redis)) if value.startswith("down")]
    if _trusted(request):
        body: dict = {"database": database, "redis": redis, "queues": queues}
    else:
        body = {name: ("down" if value.startswith("down") else value) for name, value in
                (("database", database), ("redis", redis))}
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if down else 200)
