"""Validity of a coupon instance (R-POL-2, R-LIFE-3)."""
from __future__ import annotations

from datetime import datetime, timedelta

from coupons.models import CouponCode, CouponPolicy

EXPIRABLE = {CouponCode.Status.AVAILABLE, CouponCode.Status.MAPPED, CouponCode.Status.DISTRIBUTED,
             CouponCode.Status.ISSUED, CouponCode.Status.LOCKED}


def validity_at_issue(policy: CouponPolicy, now: datetime) -> tuple[datetime | None, datetime | None]:
    """Fixed: the policy's period. Dynamic: N hours from issue, never past the policy's end (R-POL-2)."""
    if policy.validity_type == CouponPolicy.ValidityType.FIXED:
        return policy.valid_from, policy.valid_until
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
