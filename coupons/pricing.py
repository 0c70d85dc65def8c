"""The single place where a coupon is priced against an order (lock, redeem; checkout with issue #5).

Until the full engine (scopes, stacking) lands this computes amount / threshold / percentage-with-cap / shipping /
sku_deduction on the order's non-virtual items, rounding down to the tenant's unit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.models import Tenant
from coupons.exceptions import NotApplicable
from coupons.models import CouponPolicy


@dataclass(frozen=True)
class Quote:
    discount: int
    order_amount: int  # items + shipping, what the shopper pays before discounts


def order_total(order: dict[str, Any]) -> int:
    return sum(line["unit_price"] * line["quantity"] for line in order["items"]) + order.get("shipping_fee", 0)


def quote(*, policy: CouponPolicy, order: dict[str, Any], tenant: Tenant) -> Quote:
    items = [line for line in order["items"] if not line.get("virtual")]
    applicable = sum(line["unit_price"] * line["quantity"] for line in items)
    shipping = order.get("shipping_fee", 0)
    total = order_total(order)
    if policy.channels and order.get("channel") not in policy.channels:
        raise NotApplicable("channel_not_allowed")
    if policy.payment_methods and order.get("payment_method") not in policy.payment_methods:
        raise NotApplicable("payment_method_not_allowed")
    if policy.threshold and applicable < policy.threshold:
        raise NotApplicable("below_threshold")
    kind = policy.kind
    if kind in ("amount", "threshold"):
        discount = min(policy.amount or 0, applicable)
    elif kind == "percentage":
        raw = applicable * (policy.rate or 0) // 100
        discount = min(raw - raw % tenant.rounding_unit, policy.cap or raw)
    elif kind == "shipping":
        if shipping <= 0:
            raise NotApplicable("no_shipping_fee")
        discount = min(shipping, policy.amount) if policy.amount else shipping
    else:  # sku_deduction
        lines = [line for line in items if line["sku"] == policy.sku_deduction_sku]
        if not lines:
            raise NotApplicable("sku_not_in_order")
        units, discount = policy.sku_deduction_units or 0, 0
        for line in lines:
            take = min(units, line["quantity"])
            discount += take * line["unit_price"]
            units -= take
    if discount <= 0 and kind != "shipping":
        raise NotApplicable("no_applicable_items")
    return Quote(discount=min(discount, total), order_amount=total)
