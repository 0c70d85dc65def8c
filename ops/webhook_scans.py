"""Time-driven webhook events (issue #16; docs/WEBHOOKS.md): ``coupon.expiring``, ``points.expiring`` and
``coupon.expired``, each at most once per coupon (or points credit) and endpoint.

Design: docs/design/webhooks.md#ops-webhook-scans.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from coupons.models import CouponCode
from coupons.services.webhook_events import coupon_data
from rewards.models import PointsEntry
from risk.models import WebhookDelivery, WebhookEndpoint
from risk.webhooks import event_time, outbox_add

CHUNK = 500
# coupon.expired looks this far back (a scan that did not run for a while still catches up; older ends are not
# re-read on every run).
EXPIRED_LOOKBACK = timedelta(days=7)


def _keys_sent(endpoint: WebhookEndpoint, keys: list[str]) -> set[str]:
    return set(WebhookDelivery.objects.filter(endpoint=endpoint, event_key__in=keys)
               .values_list("event_key", flat=True))


def _emit_each(endpoint: WebhookEndpoint, event: str, rows: list[tuple[str, dict[str, Any]]]) -> int:
    """One event per (key, data) not sent to this endpoint yet; each in its own short transaction."""
    sent = _keys_sent(endpoint, [key for key, _ in rows])
    count = 0
    for key, data in rows:
        if key in sent:
            continue
        with transaction.atomic():
            count += len(outbox_add(tenant_id=endpoint.tenant_id, event=event, data=data, key=key,
                                    endpoints=[endpoint]))
    return count


def _coupon_rows(endpoint: WebhookEndpoint, event: str, query: Any, zone: str) -> int:
    total, last_id = 0, 0
    while True:
        chunk = list(query.filter(id__gt=last_id).select_related("inventory__policy").order_by("id")[:CHUNK])
        if not chunk:
            return total
        last_id = chunk[-1].id
        total += _emit_each(endpoint, event, [(f"{event}:{c.pk}", coupon_data(c, c.inventory, zone))
                                              for c in chunk])


def scan_coupons(endpoint: WebhookEndpoint, now: datetime, zone: str) -> dict[str, int]:
    S = CouponCode.Status
    counts = {"coupon.expiring": 0, "coupon.expired": 0}
    mine = CouponCode.objects.filter(tenant_id=endpoint.tenant_id, member_id__isnull=False)
    if "coupon.expiring" in endpoint.events:
        horizon = now + timedelta(days=endpoint.notice_days)
        counts["coupon.expiring"] = _coupon_rows(endpoint, "coupon.expiring", mine.filter(
            status__in=[S.ISSUED, S.LOCKED], valid_until__gt=max(now, endpoint.created_at),
            valid_until__lte=horizon), zone)
    if "coupon.expired" in endpoint.events:
        # Past its end it is expired at once (R-LIFE-3), whether or not the expiry job has marked it yet.
        counts["coupon.expired"] = _coupon_rows(endpoint, "coupon.expired", mine.filter(
            status__in=[S.ISSUED, S.EXPIRED], valid_until__lte=now,
            valid_until__gt=max(endpoint.created_at, now - EXPIRED_LOOKBACK)), zone)
    return counts


def scan_points(endpoint: WebhookEndpoint, now: datetime, zone: str) -> int:
    horizon = now + timedelta(days=endpoint.notice_days)
    query = PointsEntry.objects.filter(tenant_id=endpoint.tenant_id, amount__gt=0, remaining__gt=0,
                                       expires_at__gt=max(now, endpoint.created_at), expires_at__lte=horizon)
    total, last_id = 0, 0
    while True:
        chunk = list(query.filter(id__gt=last_id).order_by("id")[:CHUNK])
        if not chunk:
            return total
        last_id = chunk[-1].id
        total += _emit_each(endpoint, "points.expiring", [
            (f"points.expiring:{e.pk}", {"member_id": e.member_id, "points": e.remaining,
                                         "expires_at": event_time(e.expires_at, zone), "reference": e.reference})
            for e in chunk])


def webhook_events_scan(*, now: datetime | None = None, dry_run: bool = False) -> dict[str, int]:
    """Every active endpoint taking a time-driven event: write the events now due. Safe to run twice and in
    parallel. ``dry_run`` counts the endpoints only."""
    now = now or timezone.now()
    timed = ["coupon.expiring", "coupon.expired", "points.expiring"]
    endpoints = list(WebhookEndpoint.objects.select_related("tenant").filter(is_active=True, events__overlap=timed)
                     .order_by("pk"))
    outcome = {"endpoints": len(endpoints), "coupon.expiring": 0, "coupon.expired": 0, "points.expiring": 0}
    if dry_run:
        return outcome
    for endpoint in endpoints:
        zone = endpoint.tenant.time_zone
        for event, count in scan_coupons(endpoint, now, zone).items():
            outcome[event] += count
        if "points.expiring" in endpoint.events:
            outcome["points.expiring"] += scan_points(endpoint, now, zone)
    return outcome
