"""Claim by partner code (flow 2, R-ISS-1): partner code → its CouponMapping → the mapped internal code, MAPPED →
ISSUED to the member, once.

The same path as ``issue_specific_code`` (``coupons.services.issue.issue_this_code``: per-member lock, slot, a conditional
update from MAPPED): the per-member limit and UNIQUE(inventory, member, slot) apply exactly as for any claim. An unknown
partner code, another tenant's, or one whose code is no longer claimable answers the same 404 as an unknown code.
"""
from __future__ import annotations

from typing import Any

from coupons.exceptions import CouponNotFound
from coupons.codes import normalise_code
from coupons.services.issue import issue_this_code
from core.tenancy import joined_in_tenant
from coupons.models import CouponCode, CouponIssue
from partners.models import PARTNER_CODE_MAX, CouponMapping


def claim_partner_code(*, tenant: Any, partner_code: str, member_id: str, ctx: Any) -> CouponCode:
    """``coupons.services.issue.coupon_claim`` with a ``partner_code`` (registered by ``PartnersConfig.ready``)."""
    code = normalise_code(partner_code)
    if not code or len(code) > PARTNER_CODE_MAX:
        raise CouponNotFound()
    mapping = CouponMapping.objects.select_related(
        "coupon__inventory__policy", "coupon__inventory__event", "coupon__inventory__tenant").filter(
        tenant=tenant, partner_code=code,
        **joined_in_tenant(tenant, "coupon", "coupon__inventory", "coupon__inventory__policy",
                           "coupon__inventory__event")).first()
    if mapping is None:
        raise CouponNotFound()
    return issue_this_code(coupon=mapping.coupon, from_status=CouponCode.Status.MAPPED, member_id=member_id,
                           via=CouponIssue.Via.PARTNER_CODE, ctx=ctx,
                           taken_message="This partner code has already been registered.")
