"""Anti-enumeration limits for the requests that look up a code (R-RISK-4).

Two guards, both counted in the Django cache with django-ratelimit (``cache.add`` + atomic ``cache.incr`` over fixed
windows), so every process shares them when the cache is Redis (``REDIS_URL`` set):

- request rates per API client and per IP (the member's ``ip`` from the body or query, else the connection address
  — see ``client_ip``): every code lookup counts, an excess answers ``429 rate_limited`` with ``Retry-After``;
- failed guesses per member and per device: a lookup that answers "no such code" counts one failure for the
  request's ``member_id`` and ``device_id``; once either has ``COUPON_FAILED_GUESS_LIMIT`` failures in the current
  window, further lookups by it are refused with ``429`` before the code is looked at — even a valid code.

A view marks itself a code lookup with ``code_fields`` (``core.api.views.TenantAPIView``); a request counts only when
it actually carries one of those fields (a claim by inventory public id is not a code lookup).

Settings (coupon_project/settings.py, from the environment; read at call time so tests can override them):
``COUPON_RATE_CODE_LOOKUP_CLIENT``, ``COUPON_RATE_CODE_LOOKUP_IP`` (``count/period`` as in django-ratelimit, e.g.
``3000/m``, ``20/10s``; empty disables), ``COUPON_FAILED_GUESS_LIMIT`` (0 disables),
``COUPON_FAILED_GUESS_WINDOW_SECONDS`` and ``COUPON_TRUSTED_PROXY_COUNT``.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext, gettext_lazy as _
from django_ratelimit.core import get_usage

from core.exceptions import DomainError

def setting(name: str) -> Any:
    return getattr(settings, name)


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429
    default_message = _("Too many requests; retry after the time in Retry-After.")


def connection_ip(request: Any) -> str:
    """The address of the peer: REMOTE_ADDR, or — only behind COUPON_TRUSTED_PROXY_COUNT trusted proxies — the
    address those proxies saw, taken from the right of X-Forwarded-For (entries further left are client-supplied
    and could be forged)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = setting("COUPON_TRUSTED_PROXY_COUNT")
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < proxies:
        return remote  # fewer hops than trusted proxies: the header did not come through our proxies
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _namespace() -> str:
    # The database name keeps separate installations (and parallel test databases) apart in a shared Redis.
    return f"sec:{connection.settings_dict.get('NAME', '')}"


def _value(request: Any, name: str) -> str:
    data = request.data if hasattr(request, "data") and isinstance(request.data, dict) else {}
    value = data.get(name) if name in data else request.query_params.get(name) if hasattr(
        request, "query_params") else None
    return value.strip()[:128] if isinstance(value, str) else ""


def member_ip(request: Any) -> str:
    """The member's address as the integrator reports it (risk context ``ip``), else the connection's."""
    reported = _value(request, "ip")
    try:
        return str(ipaddress.ip_address(reported))
    except ValueError:
        return connection_ip(request)


def _usage(request: Any, **kwargs: Any) -> dict[str, Any] | None:
    """django-ratelimit's count, failing closed when the cache (Redis) does not answer: 503 with Retry-After — a limit
    that cannot be counted is not waved through (issue #18)."""
    from core import redis as core_redis

    if settings.USE_REDIS and core_redis.is_down():
        raise core_redis.fail_closed("a code-lookup limit")
    try:
        return get_usage(request, **kwargs)
    except core_redis.error_types() as exc:
        core_redis.mark_down(exc)
        raise core_redis.fail_closed("a code-lookup limit") from exc


def _retry_after(usage: dict[str, Any]) -> int:
    return max(1, int(usage.get("time_left") or 1))


def _refuse(usage: dict[str, Any], message: str, reason: str) -> RateLimited:
    return RateLimited(message, details={"retry_after": _retry_after(usage), "reason": reason})


def check_request_rates(request: Any, *, client_id: int, tenant_id: int) -> None:
    """Count one code lookup for the client and for the IP; raise 429 past either rate."""
    ns = _namespace()
    checks = (("COUPON_RATE_CODE_LOOKUP_CLIENT", f"{ns}:client:{client_id}", "client_rate"),
              ("COUPON_RATE_CODE_LOOKUP_IP", f"{ns}:ip:{tenant_id}:{member_ip(request)}", "ip_rate"))
    for name, key, reason in checks:
        rate = setting(name)
        if not rate:
            continue
        usage = _usage(request, group=f"{ns}:{reason}", key=lambda _g, _r, k=key: k, rate=rate, increment=True)
        if usage is not None and usage["should_limit"]:
            raise _refuse(usage, gettext("Too many code lookups; retry after the time in Retry-After."), reason)


def _guess_keys(request: Any, tenant_id: int) -> list[tuple[str, str]]:
    ns = _namespace()
    keys = []
    member, device = _value(request, "member_id"), _value(request, "device_id")
    if member:
        keys.append(("member", f"{ns}:guess:m:{tenant_id}:{member}"))
    if device:
        keys.append(("device", f"{ns}:guess:d:{tenant_id}:{device}"))
    return keys


def _guess_usage(request: Any, key: str, increment: bool) -> dict[str, Any] | None:
    limit = setting("COUPON_FAILED_GUESS_LIMIT")
    window = setting("COUPON_FAILED_GUESS_WINDOW_SECONDS")
    return _usage(request, group="failed_guesses", key=lambda _g, _r: key, rate=(limit, window),
                     increment=increment)


def check_failed_guesses(request: Any, *, tenant_id: int) -> None:
    """Refuse a lookup by a member or device that has used up its failed guesses — before the code is looked at."""
    limit = setting("COUPON_FAILED_GUESS_LIMIT")
    if limit <= 0:
        return
    for who, key in _guess_keys(request, tenant_id):
        usage = _guess_usage(request, key, increment=False)
        if usage is not None and usage["count"] >= limit:
            message = (gettext("Too many unknown codes tried by this member; retry after the time in Retry-After.")
                       if who == "member" else
                       gettext("Too many unknown codes tried by this device; retry after the time in Retry-After."))
            raise _refuse(usage, message, f"failed_guesses_{who}")


def record_failed_guesses(request: Any, *, tenant_id: int, failures: int) -> None:
    if failures <= 0 or setting("COUPON_FAILED_GUESS_LIMIT") <= 0:
        return
    for _who, key in _guess_keys(request, tenant_id):
        for _ in range(failures):
            _guess_usage(request, key, increment=True)
