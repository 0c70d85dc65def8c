"""Anti-enumeration limits for the requests that look up a code (R-RISK-4, issue #17).

One atomic reservation over every budget a request touches, before any code is evaluated.
Design: docs/design/claims-and-limits.md#core-api-limits.
"""
from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext, gettext_lazy as _

from core.addresses import connection_ip
from core.exceptions import DomainError
from core.redis import client as redis_client
from core import redis as core_redis
from core.identifiers import normalise_identifier

logger = logging.getLogger("coupons.limits")


def setting(name: str) -> Any:
    return getattr(settings, name)


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429
    default_message = _("Too many requests; retry after the time in Retry-After.")


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``count/period`` (django-ratelimit's syntax: ``120/m``, ``20/10s``) → (count, window seconds); '' → None."""
    if not rate:
        return None
    count, _sep, period = rate.partition("/")
    unit = period[-1:].lower()
    multiplier = period[:-1] or "1"
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit] * int(multiplier)
    return int(count), seconds


# --- sliding-window logs -------------------------------------------------------------------------------------------

# KEYS = budgets; ARGV = now_ms, wanted, token, then limit_i, window_ms_i per key.
# Returns {granted, blocked_index (1-based, 0 = none), retry_ms}. ``wanted`` = 0 only asks "is anything left?".
_RESERVE_LUA = """
local now = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local token = ARGV[3]
local grant = wanted
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 + 2 * i])
  local window = tonumber(ARGV[3 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local free = limit - redis.call('ZCARD', key)
  if free <= 0 then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local retry = window
    if oldest[2] then retry = tonumber(oldest[2]) + window - now end
    return {0, i, retry}
  end
  if free < grant then grant = free end
end
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[3 + 2 * i])
  for j = 1, grant do
    redis.call('ZADD', key, now, token .. ':' .. j)
  end
  redis.call('PEXPIRE', key, window + 1000)
end
return {grant, 0, 0}
"""

# KEYS = budgets to give back to; ARGV = token, first, last (the entries token:first .. token:last).
_REFUND_LUA = """
for _, key in ipairs(KEYS) do
  for j = tonumber(ARGV[2]), tonumber(ARGV[3]) do
    redis.call('ZREM', key, ARGV[1] .. ':' .. j)
  end
end
return 0
"""

_local_logs: dict[str, list[tuple[float, str]]] = {}
_local_lock = threading.Lock()


def _script(name: str) -> Any:
    # Registered on the current client each time (a sha1 of the text): core.redis may have replaced the client
    # after an outage, and a Script object stays bound to the client it was made with.

    return redis_client().register_script(_RESERVE_LUA if name == "reserve" else _REFUND_LUA)


def now_ms() -> int:
    """The limiter's clock (tests move it to prove the window slides)."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Budget:
    key: str
    limit: int
    window_seconds: int
    reason: str  # details.reason of the 429: client_rate, ip_rate, failed_guesses_member, failed_guesses_device
    refundable: bool  # failed-guess budgets get back the lookups that found a code


@dataclass
class Reservation:
    granted: int
    token: str = ""
    budgets: tuple[Budget, ...] = ()
    refunded: bool = field(default=False)
    local: bool = False  # counted in this process's windows (no Redis, or Redis not answering)


def _reserve_local(budgets: list[Budget], wanted: int, token: str, now: int) -> tuple[int, int, float]:
    with _local_lock:
        grant = wanted
        for index, budget in enumerate(budgets, start=1):
            window = budget.window_seconds * 1000
            log = [entry for entry in _local_logs.get(budget.key, []) if entry[0] > now - window]
            _local_logs[budget.key] = log
            free = budget.limit - len(log)
            if free <= 0:
                return 0, index, (min(e[0] for e in log) + window - now) if log else window
            grant = min(grant, free)
        for budget in budgets:
            _local_logs[budget.key].extend((now, f"{token}:{j}") for j in range(1, grant + 1))
        return grant, 0, 0


def _redis_reserve(keys: list[str], args: list[Any]) -> tuple[int, int, int] | None:
    """The reservation script; None when Redis does not answer (or answered nothing a moment ago: core.redis).

    Then the caller counts in this process's own sliding windows instead (issue #18 × #17): the limits still hold —
    per process rather than across the fleet, so at most processes × the allowance while Redis is out — and the
    requests that need no Redis otherwise, redemptions above all, keep being answered. Failing closed here would
    stop every redemption with Redis; failing open would stop counting guesses."""
    if core_redis.is_down():
        return None
    try:
        granted, blocked, retry_ms = (int(v) for v in _script("reserve")(keys=keys, args=args))
    except core_redis.error_types() as exc:
        core_redis.mark_down(exc)
        logger.warning("code-lookup limits counted per process while Redis does not answer: %s", exc)
        return None
    return granted, blocked, retry_ms


def reserve(budgets: list[Budget], wanted: int) -> Reservation:
    """Take up to ``wanted`` lookups from every budget at once, or raise ``RateLimited`` naming the budget that has
    nothing left. ``wanted`` = 0 only checks that every budget has something left."""
    budgets = [b for b in budgets if b.limit > 0]
    if not budgets:
        return Reservation(granted=wanted)
    token, now = uuid.uuid4().hex[:16], now_ms()
    answer = None
    if settings.USE_REDIS:
        args: list[Any] = [now, wanted, token]
        for budget in budgets:
            args += [budget.limit, budget.window_seconds * 1000]
        answer = _redis_reserve([b.key for b in budgets], args)
    local = answer is None
    granted, blocked, retry_ms = _reserve_local(budgets, wanted, token, now) if answer is None else answer
    if blocked:
        raise _refusal(budgets[blocked - 1], max(1, math.ceil(retry_ms / 1000)))
    return Reservation(granted=granted, token=token, budgets=tuple(budgets), local=local)


def refund(reservation: Reservation, count: int) -> None:
    """Give the last ``count`` granted lookups back to the refundable (failed-guess) budgets."""
    count = min(count, reservation.granted)
    keys = [b.key for b in reservation.budgets if b.refundable]
    if count <= 0 or not keys or reservation.refunded:
        return
    reservation.refunded = True
    first, last = reservation.granted - count + 1, reservation.granted
    if not reservation.local:
        try:
            _script("refund")(keys=keys, args=[reservation.token, first, last])
        except core_redis.error_types() as exc:  # the lookups stay counted: errs on the side of the limit
            core_redis.mark_down(exc)
        return
    drop = {f"{reservation.token}:{j}" for j in range(first, last + 1)}
    with _local_lock:
        for key in keys:
            _local_logs[key] = [e for e in _local_logs.get(key, []) if e[1] not in drop]


def used(budget: Budget) -> int:
    """Entries in a budget's current window (tests, console)."""
    now, window = now_ms(), budget.window_seconds * 1000
    if settings.USE_REDIS:
        return int(redis_client().zcount(budget.key, now - window + 1, "+inf"))
    with _local_lock:
        return sum(1 for e in _local_logs.get(budget.key, []) if e[0] > now - window)


def _refusal(budget: Budget, retry_after: int) -> RateLimited:
    messages = {
        "client_rate": gettext("Too many code lookups; retry after the time in Retry-After."),
        "ip_rate": gettext("Too many code lookups; retry after the time in Retry-After."),
        "failed_guesses_member": gettext(
            "Too many unknown codes tried by this member; retry after the time in Retry-After."),
        "failed_guesses_device": gettext(
            "Too many unknown codes tried by this device; retry after the time in Retry-After."),
        "failed_guesses_client": gettext("Too many code lookups; retry after the time in Retry-After."),
    }
    return RateLimited(messages[budget.reason], details={"retry_after": retry_after, "reason": budget.reason})


# --- the budgets of one API request --------------------------------------------------------------------------------

def _namespace() -> str:
    # The per-test prefix (tests/conftest.py) and the database name keep separate installations (and parallel test
    # databases) apart in a shared Redis.
    prefix = getattr(settings, "RATELIMIT_CACHE_PREFIX", "rl:")
    return f"{prefix}sec:{connection.settings_dict.get('NAME', '')}"


def identifier_key(value: Any) -> str:
    """The member or device id as the limiter counts it: the identifier rule's normal form (so ``m-1`` and
    ``m-1 `` or a decomposed Hangul spelling share one allowance); a value that is not an identifier is ''."""
    if not isinstance(value, str):
        return ""
    try:
        return normalise_identifier(value)[:128]
    except ValueError:
        return ""


def request_budgets(*, request: Any, client_id: int, tenant_id: int, members: list[str],
                    devices: list[str]) -> list[Budget]:
    ns = _namespace()
    tag = core_redis.hash_tag(tenant_id)  # one Redis Cluster slot per tenant: the script touches several keys
    budgets = []
    for name, key, reason in (("COUPON_RATE_CODE_LOOKUP_CLIENT", f"client:{client_id}", "client_rate"),
                              ("COUPON_RATE_CODE_LOOKUP_IP", f"ip:{connection_ip(request)}", "ip_rate")):
        rate = parse_rate(setting(name))
        if rate:
            budgets.append(Budget(f"{ns}:{tag}:{key}", rate[0], rate[1], reason, refundable=False))
    limit, window = setting("COUPON_FAILED_GUESS_LIMIT"), setting("COUPON_FAILED_GUESS_WINDOW_SECONDS")
    client_limit = setting("COUPON_FAILED_GUESS_CLIENT_LIMIT")
    if client_limit > 0:  # a client rotating member and device ids still runs out of failures, not of traffic
        budgets.append(Budget(f"{ns}:{tag}:guess:c:{client_id}", client_limit, window, "failed_guesses_client",
                              refundable=True))
    if limit > 0:
        budgets += [Budget(f"{ns}:{tag}:guess:m:{m}", limit, window, "failed_guesses_member", refundable=True)
                    for m in dict.fromkeys(members) if m]
        budgets += [Budget(f"{ns}:{tag}:guess:d:{d}", limit, window, "failed_guesses_device", refundable=True)
                    for d in dict.fromkeys(devices) if d]
    return budgets


# Answers that tell a guesser something about a code it does not hold: they cost a failed guess.
FAILED_GUESS_CODES = frozenset({"not_found", "not_owner"})


def failed_guesses(response: Any) -> int:
    """How many codes this answer refused as unknown (or not the member's)."""
    data = getattr(response, "data", None)
    if not isinstance(data, dict):
        return 0
    status = getattr(response, "status_code", 0)
    if status in (403, 404):
        return 1 if data.get("code") in FAILED_GUESS_CODES else 0
    if status != 200:
        return 0
    rejected = data.get("rejected")
    if isinstance(rejected, list):  # checkout/validate
        return sum(1 for r in rejected if isinstance(r, dict) and r.get("reason") in FAILED_GUESS_CODES)
    results = data.get("results")
    if isinstance(results, list):  # coupons/batch/*
        return sum(1 for r in results if isinstance(r, dict) and not r.get("ok")
                   and isinstance(r.get("error"), dict) and r["error"].get("code") in FAILED_GUESS_CODES)
    return 0
