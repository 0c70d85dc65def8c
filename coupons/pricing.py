"""The single place where stored coupons meet the discount engine (``coupons.discounts``, pure).

Lock and redeem price one coupon against the order with ``quote``; checkout validates a list of codes or finds the
best combination of a member's coupons with ``check_codes`` / ``best_for_member``. Everything the engine needs is
read here (policies, validity, audience), so the engine itself never touches the database.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q

from core.models import Tenant
from core.tenancy import joined_in_tenant
from coupons.discounts import (CombinationResult, Context, CouponTerms, Order, Rejection, apply_combination,
                               best_combination, evaluate)
from coupons.exceptions import NotApplicable
from coupons.models import AudienceEntry, CouponCode, CouponPolicy
from coupons.validity import effective_status
from coupons import bloom_check


@dataclass(frozen=True)
class Quote:
    discount: int
    order_amount: int  # items + shipping, what the shopper pays before discounts


def terms_of(coupon: CouponCode) -> CouponTerms:
    return CouponTerms.from_policy(coupon.inventory.policy, code=coupon.code, valid_from=coupon.valid_from,
                                   valid_until=coupon.valid_until)


@dataclass(frozen=True)
class Buyer:
    """Who pays, as the request states it (issue #16): a member (optionally of a tier or segment) or a guest.
    A request that does not say is a member without a tier — what every request was before buyers were stated."""

    is_member: bool = True
    tier: str = ""


MEMBER = Buyer()


def _context(tenant: Tenant, now: datetime, buyer: Buyer) -> Context:
    # Whitelist membership is per inventory, so callers drop coupons whose whitelist does not hold the member before
    # the engine sees them (``_audience_refusal``); the engine checks members-only and tiers against the buyer.
    return Context(now=now, rounding_unit=tenant.rounding_unit, is_member=buyer.is_member,
                   whitelisted=buyer.is_member, tier=buyer.tier)


def _audience_refusal(coupon: CouponCode, member_id: str, buyer: Buyer = MEMBER) -> str | None:
    policy = coupon.inventory.policy
    if not buyer.is_member and (policy.audience != CouponPolicy.Audience.ALL or policy.audience_tiers):
        return "members_only"
    if policy.audience == CouponPolicy.Audience.WHITELIST and not _whitelisted(coupon, member_id):
        return "audience_not_allowed"
    if policy.audience_tiers and buyer.tier not in policy.audience_tiers:
        return "tier_not_allowed"
    return None


def _whitelisted(coupon: CouponCode, member_id: str) -> bool:
    return AudienceEntry.objects.filter(inventory_id=coupon.inventory_id, member_id=member_id).exists()


def quote(*, coupon: CouponCode, order: Order, tenant: Tenant, now: datetime, buyer: Buyer = MEMBER) -> Quote:
    """Price one coupon on an order or raise NotApplicable with the engine's reason."""
    refusal = _audience_refusal(coupon, coupon.member_id or "", buyer)
    if refusal:
        raise NotApplicable(refusal)
    result = evaluate(terms_of(coupon), order, _context(tenant, now, buyer))
    if not result.ok:
        raise NotApplicable(result.reason or "not_applicable")
    return Quote(discount=result.discount, order_amount=order.total)


def _refusal(coupon: CouponCode, member_id: str, order_id: str | None, now: datetime) -> str | None:
    """Why a stored coupon cannot take part in this member's checkout, before any arithmetic."""
    if coupon.member_id != member_id:
        return "not_owner"
    status = effective_status(coupon, coupon.inventory.policy, now)
    if status == CouponCode.Status.LOCKED and coupon.locked_order_id == order_id and order_id:
        return None
    return {CouponCode.Status.ISSUED: None, CouponCode.Status.EXPIRED: "expired",
            CouponCode.Status.USED: "already_used", CouponCode.Status.REVOKED: "revoked",
            CouponCode.Status.LOCKED: "locked_by_other_order"}.get(status, "not_issued")


def check_codes(*, tenant: Tenant, member_id: str, codes: tuple[str, ...], order: Order,
                now: datetime, buyer: Buyer = MEMBER) -> CombinationResult:
    """/checkout/validate: apply the given codes in order (R-USE-1); unknown or unusable ones are rejected."""
    # Codes the Bloom filter rejects for this tenant never reach the database (R-RISK-4, issue #17).
    maybe = [code for code in codes if bloom_check.might_exist(code, tenant.pk)]
    found = {c.code: c for c in CouponCode.objects.select_related("inventory__policy").filter(
        tenant=tenant, code__in=maybe, **joined_in_tenant(tenant, "inventory", "inventory__policy"))} if maybe else {}
    usable, rejected = [], []
    for code in codes:
        coupon = found.get(code)
        reason = "not_found" if coupon is None else (_refusal(coupon, member_id, order.order_id, now)
                                                     or _audience_refusal(coupon, member_id, buyer))
        if reason:
            rejected.append(Rejection(code=code, reason=reason))
        else:
            usable.append(coupon)
    result = apply_combination([terms_of(c) for c in usable], order, _context(tenant, now, buyer))
    return _with_rejected(result, rejected)


def _with_rejected(result: CombinationResult, rejected: list[Rejection]) -> CombinationResult:
    if not rejected:
        return result
    return CombinationResult(discount=result.discount, applied=result.applied,
                             rejected=tuple(rejected) + result.rejected, order_total=result.order_total,
                             payable=result.payable)


def usable_coupons(*, tenant: Tenant, member_id: str, now: datetime, order_id: str | None = None,
                   limit: int = 200) -> list[CouponCode]:
    """A member's coupons that could apply now: ISSUED inside validity, or LOCKED to this very order."""
    inside = (Q(valid_until__isnull=True) | Q(valid_until__gt=now)) & (Q(valid_from__isnull=True)
                                                                        | Q(valid_from__lte=now))
    state = Q(status=CouponCode.Status.ISSUED)
    if order_id:
        state |= Q(status=CouponCode.Status.LOCKED, locked_order_id=order_id)
    return list(CouponCode.objects.select_related("inventory__policy").filter(
        inside, state, tenant=tenant, member_id=member_id,
        **joined_in_tenant(tenant, "inventory", "inventory__policy")).order_by("valid_until", "id")[:limit])


def best_for_member(*, tenant: Tenant, member_id: str, order: Order, now: datetime,
                    buyer: Buyer = MEMBER) -> CombinationResult:
    """/checkout/best: the best combination of the member's usable coupons (R-POL-7, R-USE-2). A coupon the buyer
    may not use (members only, a whitelist, a tier) is listed as rejected with its reason (issue #16)."""
    coupons = usable_coupons(tenant=tenant, member_id=member_id, now=now, order_id=order.order_id)
    eligible, rejected = [], []
    for coupon in coupons:
        refusal = _audience_refusal(coupon, member_id, buyer)
        if refusal:
            rejected.append(Rejection(code=coupon.code, reason=refusal))
        else:
            eligible.append(coupon)
    return _with_rejected(best_combination([terms_of(c) for c in eligible], order, _context(tenant, now, buyer)),
                          rejected)


def scope_filter(prefix: str, **product: Any) -> Q:
    """Rows whose policy scope covers the given sku/spu/category/shop (empty include list = everything)."""
    query = Q()
    for key, plural in (("sku", "skus"), ("spu", "spus"), ("category", "categories"), ("shop", "shops")):
        value = product.get(key)
        if value:
            include, exclude = f"{prefix}include_{plural}", f"{prefix}exclude_{plural}"
            query &= (Q(**{include: []}) | Q(**{f"{include}__contains": [value]})) & ~Q(
                **{f"{exclude}__contains": [value]})
    return query
