"""Single-coupon evaluation and the application of a chosen combination (R-POL-1, 3, 4, 6; R-USE-1).

Money is integer minor units throughout; no float is ever formed. The state threaded through a combination is the
amount still payable on each order line (after the coupons applied before) plus the shipping fee still payable.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, UTC
from enum import StrEnum
from typing import Any

from coupons.discounts.inputs import GROUP_ORDER, Context, CouponTerms, Order

SHIPPING_LINE = "shipping"
"""Key of the shipping fee in allocations and in ``already_discounted`` (order lines are keyed by index)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_EXPIRY = 1 << 62  # "never expires" sorts after every real instant
_MICROSECOND = timedelta(microseconds=1)
# R-POL-7 / seed 004: threshold before percentage before amount. The seed ranks only those three; the other kinds
# follow its reasoning ("the more restricted coupon is used first") and stay ahead of the cash voucher, which the
# seed puts last explicitly.
KIND_RANK: dict[str, int] = {"threshold": 0, "percentage": 1, "sku_deduction": 2, "shipping": 3, "amount": 4}


class Reason(StrEnum):
    """Why a coupon is not applied. Stable codes: the API returns them as ``reason``."""

    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    AUDIENCE_NOT_ALLOWED = "audience_not_allowed"
    MEMBERS_ONLY = "members_only"
    TIER_NOT_ALLOWED = "tier_not_allowed"
    CHANNEL_NOT_ALLOWED = "channel_not_allowed"
    PAYMENT_METHOD_NOT_ALLOWED = "payment_method_not_allowed"
    NO_SHIPPING_FEE = "no_shipping_fee"
    SKU_NOT_IN_ORDER = "sku_not_in_order"
    NO_APPLICABLE_ITEMS = "no_applicable_items"
    BELOW_THRESHOLD = "below_threshold"
    # In scope and above any threshold, but nothing is left to take (rounding to the unit, or earlier coupons took
    # everything): a coupon that saves nothing is not spent.
    ZERO_DISCOUNT = "zero_discount"
    STACKING_CONFLICT = "stacking_conflict"
    EXCLUSIVE_CONFLICT = "exclusive_conflict"
    DUPLICATE_CODE = "duplicate_code"


@dataclass(frozen=True, slots=True)
class LineDiscount:
    line: int | str  # index into Order.items, or SHIPPING_LINE
    sku: str | None
    discount: int

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "sku": self.sku, "discount": self.discount}


@dataclass(frozen=True, slots=True)
class Evaluation:
    code: str
    ok: bool
    discount: int
    reason: str | None
    applicable_amount: int  # in-scope, non-virtual, after earlier coupons; what thresholds are compared with
    lines: tuple[LineDiscount, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "ok": self.ok, "discount": self.discount, "reason": self.reason,
                "applicable_amount": self.applicable_amount, "lines": [line.as_dict() for line in self.lines]}


@dataclass(frozen=True, slots=True)
class AppliedCoupon:
    code: str
    stacking_group: str
    kind: str
    discount: int
    lines: tuple[LineDiscount, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "discount": self.discount, "lines": [line.as_dict() for line in self.lines]}


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CombinationResult:
    discount: int
    applied: tuple[AppliedCoupon, ...]  # in application order (R-POL-6)
    rejected: tuple[Rejection, ...]
    order_total: int  # items (virtual included) + shipping
    payable: int

    @property
    def valid(self) -> bool:
        """Every submitted code applied (what /checkout/validate reports as ``valid``)."""
        return not self.rejected

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(a.code for a in self.applied)

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "codes": list(self.codes), "discount": self.discount,
                "applied": [a.as_dict() for a in self.applied], "rejected": [r.as_dict() for r in self.rejected],
                "payable": self.payable}


# --- preparation: everything that depends on the order and the coupon but not on earlier discounts -------------

class _OrderView:
    """An order reduced to what the arithmetic needs, computed once per call."""

    __slots__ = ("order", "totals", "discountable", "items_total", "by_sku")

    def __init__(self, order: Order) -> None:
        self.order = order
        self.totals = [line.unit_price * line.quantity for line in order.items]
        self.discountable = tuple(i for i, line in enumerate(order.items) if not line.virtual)
        self.items_total = sum(self.totals)
        by_sku: dict[str, list[int]] = {}
        for i, line in enumerate(order.items):
            by_sku.setdefault(line.sku, []).append(i)
        self.by_sku = by_sku

    def fresh_state(self, already: dict[int | str, int] | None = None) -> tuple[list[int], int]:
        """Remaining payable per line (0 for virtual lines: never discountable) and remaining shipping fee."""
        rem = [0] * len(self.totals)
        for i in self.discountable:
            rem[i] = self.totals[i]
        fee = self.order.shipping_fee
        if already:
            for key, taken in already.items():
                if key == SHIPPING_LINE:
                    fee = max(0, fee - taken)
                elif isinstance(key, int) and 0 <= key < len(rem):
                    rem[key] = max(0, rem[key] - taken)
        return rem, fee


def _in_scope(terms: CouponTerms, line: Any) -> bool:
    if line.sku in terms.exclude_skus or line.spu in terms.exclude_spus \
            or line.category in terms.exclude_categories or line.shop in terms.exclude_shops:
        return False
    return ((not terms.include_skus or line.sku in terms.include_skus)
            and (not terms.include_spus or line.spu in terms.include_spus)
            and (not terms.include_categories or line.category in terms.include_categories)
            and (not terms.include_shops or line.shop in terms.include_shops))


def _instant(value: datetime | None) -> int:
    if value is None:
        return _NO_EXPIRY
    return (value - _EPOCH) // _MICROSECOND


class _Prepared:
    """One coupon against one order: static refusal (if any), the in-scope lines, tie-break values."""

    __slots__ = ("terms", "static_reason", "scope", "full_scope", "sku_lines", "touches_fee", "group_rank",
                 "expiry", "kind_rank", "product_flag", "channel_flag")

    def __init__(self, terms: CouponTerms, view: _OrderView, ctx: Context) -> None:
        self.terms = terms
        self.touches_fee = terms.kind == "shipping"
        self.group_rank = GROUP_ORDER.index(terms.stacking_group)
        self.expiry = _instant(terms.valid_until)
        self.kind_rank = KIND_RANK[terms.kind]
        self.product_flag = 0 if terms.product_restricted else 1
        self.channel_flag = 0 if terms.channel_restricted else 1
        self.scope: tuple[int, ...] = ()
        self.full_scope = False
        self.sku_lines: tuple[int, ...] = ()
        self.static_reason = self._static_reason(terms, view, ctx)

    def _static_reason(self, terms: CouponTerms, view: _OrderView, ctx: Context) -> str | None:
        if terms.valid_from is not None and ctx.now < terms.valid_from:
            return Reason.NOT_YET_VALID
        if terms.valid_until is not None and ctx.now >= terms.valid_until:
            return Reason.EXPIRED
        # A guest is refused by any audience narrower than "all" (a tier or a whitelist names members); a member
        # outside the whitelist or the tiers, by that rule.
        if (terms.audience != "all" or terms.tiers) and not ctx.is_member:
            return Reason.MEMBERS_ONLY
        if terms.audience == "whitelist" and not ctx.whitelisted:
            return Reason.AUDIENCE_NOT_ALLOWED
        if terms.tiers and ctx.tier not in terms.tiers:
            return Reason.TIER_NOT_ALLOWED
        order = view.order
        if terms.channels and order.channel not in terms.channels:
            return Reason.CHANNEL_NOT_ALLOWED
        if terms.payment_methods and order.payment_method not in terms.payment_methods:
            return Reason.PAYMENT_METHOD_NOT_ALLOWED
        if terms.kind == "shipping" and order.shipping_fee <= 0:
            return Reason.NO_SHIPPING_FEE
        if terms.kind == "sku_deduction" and terms.sku_deduction_sku not in view.by_sku:
            return Reason.SKU_NOT_IN_ORDER
        unrestricted = not (terms.include_skus or terms.exclude_skus or terms.include_spus or terms.exclude_spus
                            or terms.include_categories or terms.exclude_categories or terms.include_shops
                            or terms.exclude_shops)
        if unrestricted:
            self.scope = view.discountable
            self.full_scope = True
        else:
            items = order.items
            self.scope = tuple(i for i in view.discountable if _in_scope(terms, items[i]))
        if terms.kind == "sku_deduction":
            scope = set(self.scope)
            lines = [i for i in view.by_sku[terms.sku_deduction_sku] if i in scope]
            # The free units go to the dearest matching lines first (the customer's advantage), then line order.
            lines.sort(key=lambda i: (-order.items[i].unit_price, i))
            self.sku_lines = tuple(lines)
            if not lines:
                return Reason.NO_APPLICABLE_ITEMS
        # Virtual items never count (R-POL-3), not even for a shipping coupon: an all-virtual order gets nothing.
        if not self.scope:
            return Reason.NO_APPLICABLE_ITEMS
        return None


def _applicable(p: _Prepared, rem: list[int]) -> int:
    if p.full_scope:
        return sum(rem)  # virtual lines hold 0
    return sum([rem[i] for i in p.scope])


def _discount(p: _Prepared, view: _OrderView, rem: list[int], fee: int, unit: int) -> tuple[str | None, int, int]:
    """(reason or None, discount, applicable amount) of ``p`` on the state (rem, fee). The discount is > 0 if ok."""
    if p.static_reason is not None:
        return p.static_reason, 0, 0
    terms = p.terms
    applicable = _applicable(p, rem)
    if terms.threshold and applicable < terms.threshold:
        return Reason.BELOW_THRESHOLD, 0, applicable
    kind = terms.kind
    if kind == "amount" or kind == "threshold":
        discount = min(terms.amount or 0, applicable)
    elif kind == "percentage":
        # Integer arithmetic only; capped, then rounded down to the tenant unit (R-POL-4, seed 003: 1001 -> 1000).
        discount = min(applicable * (terms.rate or 0) // 100, terms.cap or 0)
        discount -= discount % unit
    elif kind == "shipping":
        if fee <= 0:
            return Reason.NO_SHIPPING_FEE, 0, applicable
        discount = fee if terms.amount is None else min(terms.amount, fee)
    else:  # sku_deduction
        units = terms.sku_deduction_units or 0
        discount = 0
        items = view.order.items
        for i in p.sku_lines:
            if units <= 0:
                break
            take = min(units, items[i].quantity)
            units -= take
            discount += min(take * items[i].unit_price, rem[i])
    if discount <= 0:
        return Reason.ZERO_DISCOUNT, 0, applicable
    return None, discount, applicable


def _allocate(p: _Prepared, view: _OrderView, rem: list[int], discount: int) -> list[tuple[int | str, int]]:
    """Split ``discount`` over lines so the parts sum to it exactly and no line goes below zero."""
    if p.touches_fee:
        return [(SHIPPING_LINE, discount)]
    if p.terms.kind == "sku_deduction":
        out: list[tuple[int | str, int]] = []
        units = p.terms.sku_deduction_units or 0
        items = view.order.items
        for i in p.sku_lines:
            if units <= 0:
                break
            take = min(units, items[i].quantity)
            units -= take
            part = min(take * items[i].unit_price, rem[i])
            if part:
                out.append((i, part))
        return out
    # Proportional to what each in-scope line still owes (largest remainder): every part ≤ its line because
    # discount ≤ applicable; leftover units go to the largest remainders, ties to the lower line index.
    weights = [(i, rem[i]) for i in p.scope if rem[i] > 0]
    total = sum(w for _, w in weights)
    if discount == total:
        return list(weights)
    parts: list[list[int]] = []
    given = 0
    for i, w in weights:
        q, r = divmod(discount * w, total)
        parts.append([i, q, r])
        given += q
    left = discount - given
    if left:
        for part in sorted(parts, key=lambda x: (-x[2], x[0]))[:left]:
            part[1] += 1
    return [(i, q) for i, q, _ in parts if q]


def _line_discounts(view: _OrderView, allocation: list[tuple[int | str, int]]) -> tuple[LineDiscount, ...]:
    items = view.order.items
    return tuple(LineDiscount(line=key, sku=None if key == SHIPPING_LINE else items[key].sku, discount=amount)
                 for key, amount in allocation)


def _take(rem: list[int], fee: int, allocation: list[tuple[int | str, int]]) -> tuple[list[int], int]:
    rem = rem.copy()
    for key, amount in allocation:
        if key == SHIPPING_LINE:
            fee -= amount
        else:
            rem[key] -= amount  # type: ignore[index]
    return rem, fee


# --- public ------------------------------------------------------------------------------------------------------

def evaluate(terms: CouponTerms, order: Order, ctx: Context, *,
             already_discounted: dict[int | str, int] | None = None) -> Evaluation:
    """One coupon against an order (R-USE-1).

    ``already_discounted`` maps a line index (or ``SHIPPING_LINE``) to what coupons applied before this one took from
    it; the applicable amount and the threshold check use what is left (R-POL-4/6).
    """
    view = _OrderView(order)
    prepared = _Prepared(terms, view, ctx)
    rem, fee = view.fresh_state(already_discounted)
    reason, discount, applicable = _discount(prepared, view, rem, fee, ctx.rounding_unit)
    if reason is not None:
        return Evaluation(code=terms.code, ok=False, discount=0, reason=str(reason), applicable_amount=applicable)
    lines = _line_discounts(view, _allocate(prepared, view, rem, discount))
    return Evaluation(code=terms.code, ok=True, discount=discount, reason=None, applicable_amount=applicable,
                      lines=lines)


def _run(prepared: list[_Prepared], view: _OrderView, unit: int
         ) -> tuple[list[AppliedCoupon], list[Rejection], int]:
    """Apply coupons (at most one per group, already checked) in group order, each on what the earlier ones left."""
    rem, fee = view.fresh_state()
    applied: list[AppliedCoupon] = []
    rejected: list[Rejection] = []
    total = 0
    for p in sorted(prepared, key=lambda x: x.group_rank):
        reason, discount, _ = _discount(p, view, rem, fee, unit)
        if reason is not None:
            rejected.append(Rejection(p.terms.code, str(reason)))
            continue
        allocation = _allocate(p, view, rem, discount)
        rem, fee = _take(rem, fee, allocation)
        total += discount
        applied.append(AppliedCoupon(code=p.terms.code, stacking_group=p.terms.stacking_group, kind=p.terms.kind,
                                     discount=discount, lines=_line_discounts(view, allocation)))
    return applied, rejected, total


def _result(view: _OrderView, applied: list[AppliedCoupon], rejected: list[Rejection], total: int
            ) -> CombinationResult:
    order_total = view.items_total + view.order.shipping_fee
    return CombinationResult(discount=total, applied=tuple(applied), rejected=tuple(rejected),
                             order_total=order_total, payable=order_total - total)


def apply_combination(terms_list: list[CouponTerms] | tuple[CouponTerms, ...], order: Order, ctx: Context
                      ) -> CombinationResult:
    """The coupons a customer chose, together on one order (R-POL-6, /checkout/validate).

    Each coupon is first checked on its own; one refused on its own is rejected with its reason and blocks nothing.
    Among the rest, the first listed wins a conflict: a second coupon of a group is rejected with
    ``stacking_conflict``, and an exclusive coupon with anything else with ``exclusive_conflict``. The survivors are
    applied merchant → platform → shipping → super, each on what the earlier ones left; one that no longer qualifies
    (e.g. below its threshold after the merchant discount) is rejected with that reason. Every line discount is
    bounded by what that line still owes, so the total never exceeds items + shipping and payable ≥ 0.
    """
    view = _OrderView(order)
    unit = ctx.rounding_unit
    rem, fee = view.fresh_state()
    position: dict[str, int] = {}
    rejected: list[tuple[int, Rejection]] = []
    chosen: list[_Prepared] = []
    groups_taken: set[str] = set()
    for pos, terms in enumerate(terms_list):
        if terms.code in position:
            rejected.append((pos, Rejection(terms.code, Reason.DUPLICATE_CODE)))
            continue
        position[terms.code] = pos
        p = _Prepared(terms, view, ctx)
        reason, _, _ = _discount(p, view, rem, fee, unit)
        if reason is not None:
            rejected.append((pos, Rejection(terms.code, str(reason))))
        elif chosen and (terms.exclusive or any(c.terms.exclusive for c in chosen)):
            rejected.append((pos, Rejection(terms.code, Reason.EXCLUSIVE_CONFLICT)))
        elif terms.stacking_group in groups_taken:
            rejected.append((pos, Rejection(terms.code, Reason.STACKING_CONFLICT)))
        else:
            chosen.append(p)
            groups_taken.add(terms.stacking_group)
    applied, late, total = _run(chosen, view, unit)
    rejected.extend((position[r.code], r) for r in late)
    rejected.sort(key=lambda item: item[0])  # report in the order the codes were submitted
    return _result(view, applied, [r for _, r in rejected], total)
