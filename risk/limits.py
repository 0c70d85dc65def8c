"""Daily frequency limits (R-RISK-1): check-and-increment counters per (tenant, scope, action, dimension, value, day).

Callers take counters before the work and ``release`` them when it fails, so the limits count successes.
Design: docs/design/claims-and-limits.md#risk-limits.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from risk.exceptions import FrequencyLimited
from core.redis import client as redis_client
from core import redis as core_redis
from risk.models import FrequencyLimit

# KEYS = counter keys, ARGV[1] = expiry (unix seconds), ARGV[1 + i] = limit of KEYS[i].
# Returns 0 when every counter was incremented, else the (1-based) index of the first counter at its limit.
_TAKE_LUA = """
for i, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key) or '0')
  if current >= tonumber(ARGV[i + 1]) then
    return i
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIREAT', key, ARGV[1])
end
return 0
"""

# Give taken counters back; never below zero, never re-creating an expired key.
_RELEASE_LUA = """
for i, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key) or '0')
  if current > 0 then
    redis.call('DECR', key)
  end
end
return 0
"""

_scripts: dict[tuple[str, int], object] = {}


def _script(name: str):
    client = redis_client()
    script = _scripts.get((name, id(client)))
    if script is None:
        script = _scripts[(name, id(client))] = client.register_script(_TAKE_LUA if name == "take" else _RELEASE_LUA)
    return script


@dataclass(frozen=True)
class Counter:
    key: str
    limit: int
    dimension: str


@dataclass(frozen=True)
class Taken:
    """Counters taken by one request, for ``release``."""

    counters: tuple[Counter, ...]
    day: date


def local_day(tz_name: str, now: datetime | None = None) -> tuple[date, int]:
    """The tenant's calendar day and the whole seconds until it ends (at least 1)."""
    local = (now or timezone.now()).astimezone(ZoneInfo(tz_name))
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=local.tzinfo)
    return local.date(), max(1, math.ceil((midnight - local).total_seconds()))


def _namespace() -> str:
    # The database's name keeps installations sharing one Redis apart — and the parallel test databases, whose
    # tenants and inventories have the same ids (a CI run once saw one worker's counters in another's test).
    return str(connection.settings_dict.get("NAME", ""))


def counter_key(*, tenant_id: int, scope: str, action: str, dimension: str, value: str, day: date) -> str:
    """Values are hashed: phone numbers and IPs never appear in Redis or in the fallback table. The hash tag keeps
    one tenant's counters in one cluster slot, so the script may touch several of them."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:24]
    return f"risk:{_namespace()}:{core_redis.hash_tag(tenant_id)}:{scope}:{action}:{dimension}:{digest}:{day:%Y%m%d}"


def forget_counters() -> int:
    """Delete this database's Redis counters (tests start from zero; ids restart with each test database)."""
    client = redis_client()
    keys = list(client.scan_iter(match=f"risk:{_namespace()}:*", count=1000))
    return client.delete(*keys) if keys else 0


def take(counters: list[Counter], *, day: date, seconds_left: int) -> Taken:
    """Increment every counter, or none of them and raise ``FrequencyLimited`` naming the first one at its limit."""
    if not counters:
        return Taken((), day)
    ordered = sorted(counters, key=lambda c: c.key)  # a fixed order: no deadlock between PostgreSQL fallbacks
    if settings.USE_REDIS:
        if core_redis.is_down():  # fail closed: a limit that cannot be counted is not waved through (issue #18)
            raise core_redis.fail_closed("a daily frequency limit")
        expire_at = int(timezone.now().timestamp()) + seconds_left + 60  # a minute of slack for clock skew
        try:
            refused = int(_script("take")(keys=[c.key for c in ordered],
                                          args=[expire_at, *[c.limit for c in ordered]]))
        except core_redis.error_types() as exc:
            core_redis.mark_down(exc)
            raise core_redis.fail_closed("a daily frequency limit") from exc
        if refused:
            _refuse(ordered[refused - 1], seconds_left)
    else:
        with transaction.atomic(), connection.cursor() as cursor:
            for counter in ordered:
                cursor.execute(
                    "INSERT INTO risk_frequencycounter (key, day, count) VALUES (%s, %s, 1) "
                    "ON CONFLICT (key, day) DO UPDATE SET count = risk_frequencycounter.count + 1 "
                    "WHERE risk_frequencycounter.count < %s RETURNING count",
                    [counter.key, day, counter.limit])
                if cursor.fetchone() is None:
                    _refuse(counter, seconds_left)  # raising rolls back the counters taken before this one
    return Taken(tuple(ordered), day)


def release(taken: Taken) -> None:
    """Give back the counters of a request whose work failed."""
    if not taken.counters:
        return
    if settings.USE_REDIS:
        _script("release")(keys=[c.key for c in taken.counters], args=[])
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for counter in taken.counters:
            cursor.execute("UPDATE risk_frequencycounter SET count = count - 1 WHERE key = %s AND day = %s "
                           "AND count > 0", [counter.key, taken.day])


def current(counter_key_: str, day: date) -> int:
    """A counter's value (tests, console)."""
    if settings.USE_REDIS:
        return int(redis_client().get(counter_key_) or 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count FROM risk_frequencycounter WHERE key = %s AND day = %s", [counter_key_, day])
        row = cursor.fetchone()
    return row[0] if row else 0


def purge_counters(*, before: date) -> int:
    """Delete fallback counter rows of days before ``before`` (Redis keys expire by themselves)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM risk_frequencycounter WHERE day < %s", [before])
        return cursor.rowcount


def _refuse(counter: Counter, seconds_left: int) -> None:
    raise FrequencyLimited(
        gettext("The daily limit of %(limit)s per %(dimension)s has been reached; try again in %(seconds)s seconds.")
        % {"limit": counter.limit, "dimension": FrequencyLimit.Dimension(counter.dimension).label,
           "seconds": seconds_left},
        details={"dimension": counter.dimension, "limit": counter.limit, "retry_after": seconds_left})
