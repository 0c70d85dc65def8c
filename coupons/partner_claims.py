"""Claim by partner code (flow 2, R-ISS-1): partner code → its CouponMapping → the mapped internal code, MAPPED →
ISSUED to the member, once.

The same helpers as ``issue_specific_code`` (per-member lock, ``_next_slot``, a conditional update from MAPPED,
``_record_issue``): the per-member limit and UNIQUE(inventory, member, slot) apply exactly as for any claim. An unknown
partner code, another tenant's, or one whose code is no longer claimable answers the same 404 as an unknown code.
"""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from coupons.exceptions import AlreadyClaimed, CouponNotFound
from coupons.issuing import _check_claimable, _limit_error, _next_slot, _record_issue, normalise_code
from coupons.locks import advisory_lock, member_lock
from coupons.models import CouponCode, CouponIssue
from coupons.validity import validity_at_issue


def claim_partner_code(*, tenant: Any, partner_code: str, member_id: str, ctx: Any) -> CouponCode:
    from partners.models import PARTNER_CODE_MAX, CouponMapping

    code = normalise_code(partner_code)
    if not code or len(code) > PARTNER_CODE_MAX:
        raise CouponNotFound()
    mapping = CouponMapping.objects.select_related(
        "coupon__inventory__policy", "coupon__inventory__event", "coupon__inventory__tenant").filter(
        tenant=tenant, partner_code=code).first()
    if mapping is None:
        raise CouponNotFound()
    coupon = mapping.coupon
    if coupon.status != CouponCode.Status.MAPPED:
        if coupon.status in (CouponCode.Status.ISSUED, CouponCode.Status.LOCKED, CouponCode.Status.USED):
            raise AlreadyClaimed("This partner code has already been registered.")
        raise CouponNotFound()  # EXPIRED, REVOKED: not registrable, say nothing more
    inventory = coupon.inventory
    now = timezone.now()
    _check_claimable(inventory, member_id, now)
    valid_from, valid_until = validity_at_issue(inventory.policy, now)
    lock_key = f"{inventory.tenant_id}:{inventory.pk}:{member_id}"
    try:
        with member_lock(lock_key), transaction.atomic():
            advisory_lock(lock_key)
            slot = _next_slot(inventory, member_id)
            taken = CouponCode.objects.filter(pk=coupon.pk, status=CouponCode.Status.MAPPED).update(
                status=CouponCode.Status.ISSUED, member_id=member_id, issued_at=now, valid_from=valid_from,
                valid_until=valid_until)
            if not taken:
                raise AlreadyClaimed("This partner code has already been registered.")
            return _record_issue(inventory=inventory, coupon_id=coupon.pk, member_id=member_id, slot=slot,
                                 via=CouponIssue.Via.PARTNER_CODE, ctx=ctx, now=now)
    except IntegrityError as exc:
        if "issue_unique_member_slot" in str(exc):
            raise _limit_error(inventory) from exc
        raise
