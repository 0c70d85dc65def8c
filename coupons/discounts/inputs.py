"""Plain, frozen inputs of the discount engine: an order, one coupon's terms, the evaluation context.

Nothing here touches the database. ``CouponTerms.from_policy`` is the only bridge to the model and reads attributes
only, so the engine can run on an unsaved policy, a cached one, or terms built by hand in a test.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Mirrors coupons.models (kept here so the engine imports no Django model; a test keeps the copies equal).
CHANNELS: tuple[str, ...] = ("android", "ios", "pc_web", "mobile_web", "wechat", "mini_program")
PAYMENT_METHODS: tuple[str, ...] = ("cod", "online")
KINDS: tuple[str, ...] = ("amount", "threshold", "percentage", "shipping", "sku_deduction")
AUDIENCES: tuple[str, ...] = ("all", "members", "whitelist")
# R-POL-6: the order coupons are applied in; later groups see what the earlier ones left.
GROUP_ORDER: tuple[str, ...] = ("merchant", "platform", "shipping", "super")

_SCOPE_FIELDS = ("include_skus", "exclude_skus", "include_spus", "exclude_spus", "include_categories",
                 "exclude_categories", "include_shops", "exclude_shops", "channels", "payment_methods", "tiers")


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    spu: str
    category: str
    shop: str
    unit_price: int
    quantity: int
    virtual: bool = False

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    items: tuple[OrderLine, ...]
    shipping_fee: int = 0
    channel: str | None = None
    payment_method: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.items, tuple):
            object.__setattr__(self, "items", tuple(self.items))

    @property
    def items_total(self) -> int:
        """Every line, virtual ones included: what the customer pays for goods before discounts."""
        return sum(line.total for line in self.items)

    @property
    def total(self) -> int:
        return self.items_total + self.shipping_fee


@dataclass(frozen=True, slots=True)
class Context:
    """What the evaluation needs besides the order: the time, the tenant's rounding unit, who the member is.

    ``is_member`` and ``whitelisted`` default to False, so a members-only or whitelist coupon is refused unless the
    caller states the member qualifies (fail closed).
    """

    now: datetime
    rounding_unit: int = 1
    is_member: bool = False
    whitelisted: bool = False
    tier: str = ""  # the member's tier or segment as the request states it ("" = none given)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("Context.now must be timezone-aware.")
        if isinstance(self.rounding_unit, bool) or not isinstance(self.rounding_unit, int) or self.rounding_unit < 1:
            raise ValueError("Context.rounding_unit must be an integer ≥ 1.")


def _frozen(values: Iterable[str] | None) -> frozenset[str]:
    if values is None:
        return frozenset()
    if isinstance(values, str):
        raise ValueError("scope lists must be lists of strings, not a string")
    return frozenset(values)


def _money(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"CouponTerms.{name} must be a non-negative integer (minor units) or None, got {value!r}.")


@dataclass(frozen=True, slots=True)
class CouponTerms:
    """One usable coupon: its policy's rule plus the coupon instance's code and validity window.

    Empty include lists mean "everything"; an exclude list always wins over an include list. Empty ``channels`` /
    ``payment_methods`` mean every channel / payment method. ``valid_from`` / ``valid_until`` of None mean unbounded
    on that side; the window is half-open: valid while ``valid_from <= now < valid_until``.
    """

    code: str
    kind: str
    stacking_group: str = "platform"
    exclusive: bool = False
    amount: int | None = None
    rate: int | None = None
    threshold: int | None = None
    cap: int | None = None
    sku_deduction_sku: str = ""
    sku_deduction_units: int | None = None
    include_skus: frozenset[str] = field(default_factory=frozenset)
    exclude_skus: frozenset[str] = field(default_factory=frozenset)
    include_spus: frozenset[str] = field(default_factory=frozenset)
    exclude_spus: frozenset[str] = field(default_factory=frozenset)
    include_categories: frozenset[str] = field(default_factory=frozenset)
    exclude_categories: frozenset[str] = field(default_factory=frozenset)
    include_shops: frozenset[str] = field(default_factory=frozenset)
    exclude_shops: frozenset[str] = field(default_factory=frozenset)
    channels: frozenset[str] = field(default_factory=frozenset)
    payment_methods: frozenset[str] = field(default_factory=frozenset)
    audience: str = "all"
    tiers: frozenset[str] = field(default_factory=frozenset)  # empty = every tier; else members of these only
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def __post_init__(self) -> None:
        # Terms come from approved policies (already validated) or from code; a bad one is a programming error, so
        # it fails loudly here rather than yielding a silently wrong discount.
        for name in _SCOPE_FIELDS:
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        if not isinstance(self.code, str) or not self.code:
            raise ValueError("CouponTerms.code must be a non-empty string.")
        if self.kind not in KINDS:
            raise ValueError(f"CouponTerms.kind must be one of {', '.join(KINDS)}, got {self.kind!r}.")
        if self.stacking_group not in GROUP_ORDER:
            raise ValueError(f"CouponTerms.stacking_group must be one of {', '.join(GROUP_ORDER)}.")
        if self.audience not in AUDIENCES:
            raise ValueError(f"CouponTerms.audience must be one of {', '.join(AUDIENCES)}.")
        for name in ("amount", "threshold", "cap"):
            _money(getattr(self, name), name)
        if self.kind in ("amount", "threshold") and not self.amount:
            raise ValueError(f"A {self.kind} coupon needs a positive amount.")
        if self.kind == "percentage":
            if isinstance(self.rate, bool) or not isinstance(self.rate, int) or not 1 <= self.rate <= 100:
                raise ValueError("A percentage coupon needs a rate from 1 to 100.")
            if not self.cap:
                raise ValueError("A percentage coupon needs a positive cap (R-POL-1).")
        if self.kind == "sku_deduction" and (not self.sku_deduction_sku or not self.sku_deduction_units
                                             or self.sku_deduction_units < 1):
            raise ValueError("A sku_deduction coupon needs a SKU and at least one unit.")
        for name in ("valid_from", "valid_until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"CouponTerms.{name} must be timezone-aware.")

    @property
    def product_restricted(self) -> bool:
        """Limited to some products (seed 004 tie-break): any SKU/SPU/category list, or a SKU deduction."""
        return self.kind == "sku_deduction" or bool(
            self.include_skus or self.exclude_skus or self.include_spus or self.exclude_spus
            or self.include_categories or self.exclude_categories)

    @property
    def channel_restricted(self) -> bool:
        return bool(self.channels)

    @classmethod
    def from_policy(cls, policy: Any, *, code: str, valid_from: datetime | None,
                    valid_until: datetime | None) -> CouponTerms:
        """Terms of one coupon instance of ``policy`` (a CouponPolicy; attributes are read, nothing is queried).

        The instance window is intersected with the policy's own window when the policy has one, so a coupon never
        outlives its policy (R-POL-2) even if the instance row carries no dates.
        """
        start, end = valid_from, valid_until
        if policy.valid_from is not None and (start is None or policy.valid_from > start):
            start = policy.valid_from
        if policy.valid_until is not None and (end is None or policy.valid_until < end):
            end = policy.valid_until
        return cls(
            code=code, kind=policy.kind, stacking_group=policy.stacking_group, exclusive=bool(policy.exclusive),
            amount=policy.amount, rate=policy.rate, threshold=policy.threshold, cap=policy.cap,
            sku_deduction_sku=policy.sku_deduction_sku or "", sku_deduction_units=policy.sku_deduction_units,
            include_skus=frozenset(policy.include_skus or ()), exclude_skus=frozenset(policy.exclude_skus or ()),
            include_spus=frozenset(policy.include_spus or ()), exclude_spus=frozenset(policy.exclude_spus or ()),
            include_categories=frozenset(policy.include_categories or ()),
            exclude_categories=frozenset(policy.exclude_categories or ()),
            include_shops=frozenset(policy.include_shops or ()), exclude_shops=frozenset(policy.exclude_shops or ()),
            channels=frozenset(policy.channels or ()), payment_methods=frozenset(policy.payment_methods or ()),
            audience=policy.audience, tiers=frozenset(getattr(policy, "audience_tiers", None) or ()),
            valid_from=start, valid_until=end,
        )
