"""The address of the peer of a request, proxies considered (issue #17)."""
from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings


def connection_ip(request: Any) -> str:
    """The address of the peer: REMOTE_ADDR, or — only behind COUPON_TRUSTED_PROXY_COUNT trusted proxies — the
    address those proxies saw, taken from the right of X-Forwarded-For (entries further left are client-supplied
    and could be forged)."""
    meta = getattr(request, "META", {})
    remote = meta.get("REMOTE_ADDR", "") or ""
    proxies = settings.COUPON_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < proxies:
        return remote  # fewer hops than trusted proxies: the header did not come through our proxies
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
