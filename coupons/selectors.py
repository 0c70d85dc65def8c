"""Reads used by the API, the console and exports."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from core.models import Tenant
from coupons.issuing import normalise_code
from coupons.models import CouponCode

MEMBER_STATES = ["usable", "used", "locked", "invalid", "all"]


def member_coupons(*, tenant: Tenant, member_id: str, state: str, now: datetime) -> QuerySet[CouponCode]:
    """A member's coupons by state (API.md): usable = ISSUED inside validity; invalid = EXPIRED or REVOKED,
    including coupons past validity the expiry job has not reached yet (R-LIFE-3)."""
    qs = (CouponCode.objects.filter(tenant=tenant, member_id=member_id)
          .select_related("inventory__policy", "batch").order_by("-issued_at", "-id"))
    not_past = Q(valid_until__isnull=True) | Q(valid_until__gt=now)
    past = Q(valid_until__lte=now)
    if state == "usable":
        return qs.filter(not_past, status=CouponCode.Status.ISSUED).filter(
            Q(valid_from__isnull=True) | Q(valid_from__lte=now))
    if state == "used":
        return qs.filter(status=CouponCode.Status.USED)
    if state == "locked":
        return qs.filter(not_past, status=CouponCode.Status.LOCKED)
    if state == "invalid":
        return qs.filter(Q(status__in=[CouponCode.Status.EXPIRED, CouponCode.Status.REVOKED])
                         | Q(past, status__in=[CouponCode.Status.ISSUED, CouponCode.Status.LOCKED]))
    return qs


def coupon_by_code(*, tenant: Tenant, raw_code: str) -> CouponCode | None:
    code = normalise_code(raw_code)
    if not code:
        return None
    from coupons.bloom_check import might_exist

    if not might_exist(code):
        return None
    return CouponCode.objects.select_related("inventory__policy", "batch").filter(tenant=tenant, code=code).first()
