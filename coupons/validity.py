"""Validity of a coupon instance (R-POL-2, R-LIFE-3)."""
from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from coupons.models import CouponCode, CouponPolicy

EXPIRABLE = {CouponCode.Status.AVAILABLE, CouponCode.Status.MAPPED, CouponCode.Status.DISTRIBUTED,
             CouponCode.Status.ISSUED, CouponCode.Status.LOCKED}
# Validity types whose end is a calendar boundary: they need the tenant's time zone.
CALENDAR_TYPES = frozenset({CouponPolicy.ValidityType.END_OF_DAY, CouponPolicy.ValidityType.END_OF_MONTH})


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The last instant of ``day`` in ``zone``: 23:59:59.999999 local (a day is half-open, so this is its end)."""
    return datetime.combine(day, time.max, tzinfo=zone)


def validity_at_issue(policy: CouponPolicy, now: datetime,
                      time_zone: str | None = None) -> tuple[datetime | None, datetime | None]:
    """Fixed: the policy's period. Otherwise from issue: N hours; the end of the day of issue + N days; the end of
    the month of issue — days and months of the tenant's ``time_zone`` (an IANA name) — never past the policy's
    end (R-POL-2)."""
    kind = policy.validity_type
    if kind == CouponPolicy.ValidityType.FIXED:
        return policy.valid_from, policy.valid_until
    if kind in CALENDAR_TYPES:
        zone = ZoneInfo(time_zone or "UTC")
        local = now.astimezone(zone).date()
        if kind == CouponPolicy.ValidityType.END_OF_DAY:
            until = end_of_day(local + timedelta(days=policy.validity_days or 0), zone)
        else:
            until = end_of_day(local.replace(day=calendar.monthrange(local.year, local.month)[1]), zone)
    else:
        until = now + timedelta(hours=policy.validity_hours or 0)
    if policy.valid_until is not None and policy.valid_until < until:
        until = policy.valid_until
    return now, until


def expires_at(code: CouponCode, policy: CouponPolicy) -> datetime | None:
    """When the coupon stops being usable: its own end once issued, else its policy's end."""
    return code.valid_until if code.valid_until is not None else policy.valid_until


def effective_status(code: CouponCode, policy: CouponPolicy, now: datetime) -> str:
    """A coupon past its validity reads EXPIRED at once, even before the expiry job has run (R-LIFE-3)."""
    end = expires_at(code, policy)
    if code.status in EXPIRABLE and end is not None and end <= now:
        return CouponCode.Status.EXPIRED
    return code.status
