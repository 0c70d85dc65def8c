"""Input validation and output shapes of the coupon API (API.md). Input → service → output; no logic here."""
from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any

from django.core.validators import MaxLengthValidator, MinLengthValidator
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.shared_fields import SharedFieldsMixin
from core.identifiers import IdentifierField, member_id_field as identifier_member_field, normalise_identifier
from coupons.discounts import (MAX_CODES, CodesInvalid, Order, OrderInvalid, validate_codes_payload,
                               validate_order_payload)

from coupons.exceptions import REFUSAL_MESSAGES, OrderIdMismatch
from coupons.models import CHANNELS, PAYMENT_METHODS, CouponCode
from coupons.validity import effective_status
from coupons.pricing import Buyer

MAX_MONEY = 10**12
MAX_LINES = 1000

# One identifier rule for member_id, order_id, device_id (core.identifiers, issue #17): trimmed, NFC, no control or
# format characters; member_id is a URL path segment too.
member_id_field = identifier_member_field()
order_id_field = IdentifierField(max_length=64)


class StrictIntegerField(serializers.IntegerField):
    """Only JSON integers: no strings, floats or booleans sneaking in as numbers."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
class IPField(serializers.IPAddressField):
    """An IPv4 or IPv6 address (the schema says so; DRF's field documents a bare string)."""


class RiskContextSerializer(serializers.Serializer):
    device_id = IdentifierField(max_length=128, required=False, allow_blank=True)
    ip = IPField(required=False)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    postcode = serializers.CharField(max_length=16, required=False, allow_blank=True)
    channel = serializers.ChoiceField(choices=CHANNELS, required=False)


class BoundedListSerializer(serializers.ListSerializer):
    """A ``many=True`` list whose min_length / max_length the OpenAPI schema states too (minItems / maxItems).
    DRF checks a list serializer's bounds without validators, and drf-spectacular reads array bounds from validators
    only; these validators repeat checks DRF has already passed, so they never answer differently."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bounds = []
        if self.min_length is not None:
            bounds.append(MinLengthValidator(self.min_length))
        if self.max_length is not None:
            bounds.append(MaxLengthValidator(self.max_length))
        self.validators = [*self.validators, *bounds]


class OrderLineSerializer(serializers.Serializer):
    """Documents the order line for the schema; validation is coupons.discounts.validate_order_payload."""

    class Meta:
        list_serializer_class = BoundedListSerializer

    sku = serializers.CharField(max_length=64, help_text="Required.")
    spu = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True,
                                help_text="Optional; empty when left out (a scope on it then does not match).")
    category = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True,
                                     help_text="Optional; empty when left out (a scope on it then does not match).")
    shop = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True,
                                 help_text="Optional; empty when left out (a scope on it then does not match).")
    unit_price = StrictIntegerField(min_value=1, max_value=MAX_MONEY, help_text="Minor units; required.")
    quantity = StrictIntegerField(min_value=1, max_value=1_000_000, help_text="Required.")
    virtual = serializers.BooleanField(required=False, allow_null=True, default=False,
                                       help_text="Optional, default false: a virtual line (gift card, …) is paid "
                                                 "for but takes no discount.")


class OrderSerializer(serializers.Serializer):
    """Documents the order for the schema; validation is coupons.discounts.validate_order_payload."""

    order_id = IdentifierField(max_length=64, required=False,
                               help_text="The order's id; may be given at the request's top level instead "
                                         "(both given: they must be equal, else 400 order_id_mismatch).")
    items = OrderLineSerializer(many=True, allow_empty=False, min_length=1, max_length=MAX_LINES)
    shipping_fee = StrictIntegerField(min_value=0, max_value=MAX_MONEY, required=False, default=0,
                                      help_text="Minor units; default 0.")
    channel = serializers.ChoiceField(choices=CHANNELS, required=False, allow_null=True, default=None)
    payment_method = serializers.ChoiceField(choices=PAYMENT_METHODS, required=False, allow_null=True, default=None)


@extend_schema_field(OrderSerializer)
class OrderField(serializers.Field):
    """docs/API.md's Order object, checked by the discount engine's own validator (one set of rules everywhere)."""

    def to_internal_value(self, data: Any) -> Order:
        try:
            order = validate_order_payload(data)
        except OrderInvalid as exc:
            raise serializers.ValidationError(exc.details.get("fields") or exc.message) from exc
        if not order.order_id:  # optional here: it may come at the request's top level instead (#19)
            return order
        try:  # the identifier rule of every order_id (issue #17)
            order_id = normalise_identifier(order.order_id, max_length=64)
        except ValueError as exc:
            raise serializers.ValidationError({"order_id": [str(exc)]}) from exc
        return dataclasses.replace(order, order_id=order_id) if order_id != order.order_id else order

    def to_representation(self, value: Any) -> Any:
        return value


def resolve_order_id(attrs: dict[str, Any], *, required: bool, where: str = "") -> dict[str, Any]:
    """One order id (#19, R-USE-3): ``order_id`` at the top level or in ``order``; both given must be equal.

    Sets ``attrs["order_id"]`` and the order's own id to the one that holds. A mismatch is refused as a whole
    request (400 order_id_mismatch) before anything is written; a missing one where the action needs it, as a
    validation error naming the field."""
    order = attrs.get("order")
    top = attrs.get("order_id") or ""
    inner = order.order_id if isinstance(order, Order) else ""
    if top and inner and top != inner:
        raise OrderIdMismatch(details={"field": f"{where}order_id", "order_id": top, "order.order_id": inner})
    order_id = top or inner
    if required and not order_id:
        raise serializers.ValidationError({f"{where}order_id": [
            _("Give the order id as order_id or as order.order_id.")]})
    attrs["order_id"] = order_id
    if isinstance(order, Order) and order.order_id != order_id:
        attrs["order"] = replace(order, order_id=order_id)
    return attrs


@extend_schema_field({"type": "array", "minItems": 1, "maxItems": MAX_CODES, "uniqueItems": True,
                      "items": {"type": "string", "pattern": "^[ -]*[A-Za-z0-9][A-Za-z0-9 -]*$"}})
class CodesField(serializers.Field):
    def to_internal_value(self, data: Any) -> tuple[str, ...]:
        try:
            return validate_codes_payload(data)
        except CodesInvalid as exc:
            raise serializers.ValidationError(exc.details.get("fields", {}).get("codes") or exc.message) from exc

    def to_representation(self, value: Any) -> Any:
        return list(value)


BUYERS = ("member", "guest")


class BuyerSerializer(serializers.Serializer):
    """Who pays (issue #16): a member — optionally of a tier or segment — or a guest. Members-only and tier-scoped
    coupons refuse a guest (``members_only``), tier-scoped ones a member of another tier (``tier_not_allowed``)."""

    buyer = serializers.ChoiceField(choices=BUYERS, required=False, default="member",
                                    help_text="`member` (default) or `guest`.")
    tier = IdentifierField(max_length=64, required=False,
                           help_text="The member's tier or segment (e.g. `gold`), for tier-scoped coupons; "
                                     "members only.")


def check_buyer(attrs: dict[str, Any], *, where: str = "") -> dict[str, Any]:
    if attrs.get("buyer") == "guest" and attrs.get("tier"):
        raise serializers.ValidationError({f"{where}tier": [_("A guest has no tier; leave tier out or send "
                                                               "buyer \"member\".")]})
    return attrs


def buyer_of(attrs: dict[str, Any]) -> Any:
    return Buyer(is_member=attrs.get("buyer", "member") != "guest", tier=attrs.get("tier") or "")


class ClaimSerializer(SharedFieldsMixin, RiskContextSerializer):
    member_id = member_id_field
    inventory = serializers.CharField(max_length=16, required=False)
    promo_code = serializers.CharField(max_length=64, required=False)
    code = serializers.CharField(max_length=64, required=False)
    partner_code = serializers.CharField(max_length=128, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("inventory", "promo_code", "code", "partner_code") if attrs.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError(_("Give exactly one of inventory, promo_code, code or partner_code."))
        return attrs


class GrantSerializer(serializers.Serializer):
    inventory = serializers.CharField(max_length=16)
    member_ids = serializers.ListField(child=identifier_member_field(), allow_empty=False,
                                       min_length=1, max_length=1_000_000)


class LockSerializer(RiskContextSerializer, BuyerSerializer):
    member_id = member_id_field
    order_id = IdentifierField(max_length=64, required=False,
                               help_text="The order's id, here or as order.order_id (equal if both).")
    order = OrderField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return resolve_order_id(check_buyer(attrs), required=True)


class RedeemSerializer(SharedFieldsMixin, LockSerializer):
    pass


class ReleaseSerializer(serializers.Serializer):
    order_id = order_id_field


class RefundSerializer(serializers.Serializer):
    order_id = order_id_field
    full_refund = serializers.BooleanField(required=False, default=True,
                                           help_text="A partial refund (false) leaves the coupon used (R-LIFE-5).")


class RevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)
    member_id = identifier_member_field(required=False,
                                        help_text="Optional: the member who holds the coupon; another member's "
                                                  "coupon is refused with 403 not_owner and stays as it is.")


class RevocationSerializer(serializers.Serializer):
    inventory = serializers.CharField(min_length=1, max_length=16, required=False,
                                      help_text="Public id of the inventory whose coupons are revoked (or policy).")
    policy = serializers.CharField(min_length=1, max_length=16, required=False,
                                   help_text="Public id of the policy: the coupons of all its inventories.")
    member_ids = serializers.ListField(child=identifier_member_field(), allow_empty=False, min_length=1,
                                       max_length=1000)
    reason = serializers.CharField(max_length=500)


class PolicyOutSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    name = serializers.CharField()
    kind = serializers.CharField()
    amount = serializers.IntegerField(allow_null=True)
    rate = serializers.IntegerField(allow_null=True)
    threshold = serializers.IntegerField(allow_null=True)
    cap = serializers.IntegerField(allow_null=True)
    stacking_group = serializers.CharField()
    audience = serializers.ChoiceField(choices=["all", "members", "whitelist"],
                                       help_text="Who may use it: everyone (guests too), members, listed members.")
    tiers = serializers.ListField(child=serializers.CharField(), source="audience_tiers",
                                  help_text="Member tiers the coupon is for; empty = every tier.")


class CouponSerializer(serializers.Serializer):
    """The Coupon object of API.md. Status is effective: past valid_until it reads EXPIRED (R-LIFE-3)."""

    code = serializers.CharField()
    status = serializers.SerializerMethodField()
    member_id = serializers.CharField(allow_null=True)
    policy = PolicyOutSerializer(source="inventory.policy")
    inventory = serializers.CharField(source="inventory.public_id")
    batch_code = serializers.CharField(source="batch.batch_code")
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.SerializerMethodField()
    issued_at = serializers.DateTimeField(allow_null=True)
    locked_order_id = serializers.CharField(allow_null=True)
    used_at = serializers.DateTimeField(allow_null=True)

    def get_status(self, coupon: CouponCode) -> str:
        return effective_status(coupon, coupon.inventory.policy, self.context.get("now") or timezone.now())

    def get_valid_until(self, coupon: CouponCode) -> str | None:
        end = coupon.valid_until or coupon.inventory.policy.valid_until
        return serializers.DateTimeField().to_representation(end) if end else None


_iso = serializers.DateTimeField().to_representation


def coupon_payload(coupon: CouponCode, now: Any) -> dict[str, Any]:
    """CouponSerializer's output, built directly: the claim and redeem paths are hot, and DRF builds ~30 field
    objects per serializer instance. tests/coupons/test_coupon_payload.py keeps the two identical."""
    policy = coupon.inventory.policy
    end = coupon.valid_until or policy.valid_until
    return {
        "code": coupon.code,
        "status": effective_status(coupon, policy, now),
        "member_id": coupon.member_id,
        "policy": {"id": policy.public_id, "name": policy.name, "kind": policy.kind, "amount": policy.amount,
                   "rate": policy.rate, "threshold": policy.threshold, "cap": policy.cap,
                   "stacking_group": policy.stacking_group, "audience": policy.audience,
                   "tiers": list(policy.audience_tiers)},
        "inventory": coupon.inventory.public_id,
        "batch_code": coupon.batch.batch_code,
        "valid_from": _iso(coupon.valid_from) if coupon.valid_from else None,
        "valid_until": _iso(end) if end else None,
        "issued_at": _iso(coupon.issued_at) if coupon.issued_at else None,
        "locked_order_id": coupon.locked_order_id,
        "used_at": _iso(coupon.used_at) if coupon.used_at else None,
    }


class BatchItemSerializer(BuyerSerializer):
    class Meta:
        list_serializer_class = BoundedListSerializer

    code = serializers.CharField(max_length=64)
    member_id = identifier_member_field(required=False)
    order_id = IdentifierField(max_length=64, required=False)
    order = OrderField(required=False)
    reason = serializers.CharField(max_length=500, required=False)
    full_refund = serializers.BooleanField(required=False, default=True)


class BatchSerializer(serializers.Serializer):
    items = BatchItemSerializer(many=True, allow_empty=False, min_length=1, max_length=500)


class CheckoutValidateSerializer(BuyerSerializer):
    member_id = member_id_field
    codes = CodesField()
    order_id = serializers.CharField(max_length=64, required=False,
                                     help_text="Optional: the order's id, here or as order.order_id (equal if both). "
                                               "With it, coupons locked to this order count as usable.")
    order = OrderField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return resolve_order_id(check_buyer(attrs), required=False)


class CheckoutBestSerializer(BuyerSerializer):
    member_id = member_id_field
    order_id = serializers.CharField(max_length=64, required=False,
                                     help_text="Optional: the order's id, here or as order.order_id (equal if both). "
                                               "With it, coupons locked to this order are candidates too.")
    order = OrderField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return resolve_order_id(check_buyer(attrs), required=False)


class LineOutSerializer(serializers.Serializer):
    line = serializers.JSONField(help_text="Index of the order line (integer), or \"shipping\".")
    sku = serializers.CharField(allow_null=True)
    discount = serializers.IntegerField()


class AppliedOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    discount = serializers.IntegerField()
    lines = LineOutSerializer(many=True)


class RejectedOutSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The refused coupon code.")
    reason = serializers.ChoiceField(choices=sorted(REFUSAL_MESSAGES),
                                     help_text="Why, as a stable code (docs/API.md \"Refusal reasons\").")
    message = serializers.CharField(help_text="Why, as a sentence in the request's language.")


class CheckoutResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    codes = serializers.ListField(child=serializers.CharField())
    discount = serializers.IntegerField()
    applied = AppliedOutSerializer(many=True)
    rejected = RejectedOutSerializer(many=True)
    payable = serializers.IntegerField()


class ClaimableSerializer(serializers.Serializer):
    inventory = serializers.CharField(source="public_id")
    name = serializers.CharField()
    policy = PolicyOutSerializer()
    valid_until = serializers.DateTimeField(source="policy.valid_until", allow_null=True)
    per_member_limit = serializers.IntegerField()
    claimed = serializers.IntegerField(allow_null=True, help_text="How many the member holds (with member_id).")
