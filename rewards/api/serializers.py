"""Input and output shapes of the rewards API (API.md "Rewards"). Input → service → output; no logic here."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.identifiers import IdentifierField
from coupons.api.serializers import CouponSerializer, StrictIntegerField, coupon_payload, member_id_field
from rewards.models import PointsEntry, RewardGrant, Trigger

MAX_AMOUNT = 10**12


@extend_schema_field({"type": "string", "enum": list(Trigger.values)})
class TriggerField(serializers.CharField):
    """A plain string to DRF, so the service answers an unknown trigger with its own code (unknown_trigger); the
    schema states the values it accepts."""


class TriggerSerializer(serializers.Serializer):
    member_id = member_id_field
    trigger = TriggerField(max_length=32, help_text=f"One of {', '.join(Trigger.values)}.")
    reference = IdentifierField(min_length=1, max_length=128,
                                      help_text="Order number, review id, … — once per (member, trigger, reference).")
    amount = StrictIntegerField(min_value=0, max_value=MAX_AMOUNT, required=False,
                                help_text="Payment amount (minor units); required for purchase_confirmed only.")
    has_image = serializers.BooleanField(required=False, default=False, help_text="review only.")


class GrantOutSerializer(serializers.Serializer):
    """Documents the grant object; rendered by ``grant_payload``."""

    member_id = serializers.CharField()
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    reference = serializers.CharField()
    points = serializers.IntegerField()
    points_expire_at = serializers.DateTimeField(allow_null=True)
    coupon = CouponSerializer(allow_null=True)
    coupon_error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class EntryOutSerializer(serializers.Serializer):
    amount = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=PointsEntry.Reason.choices)
    reference = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


def _iso(value: datetime | None) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value else None


def grant_payload(grant: RewardGrant, now: datetime) -> dict[str, Any]:
    entry = getattr(grant, "points_entry", None) if grant.points else None
    return {"member_id": grant.member_id, "trigger": grant.trigger, "reference": grant.reference,
            "points": grant.points, "points_expire_at": _iso(entry.expires_at) if entry else None,
            "coupon": coupon_payload(grant.coupon, now) if grant.coupon is not None else None,
            "coupon_error": grant.coupon_error or None, "created_at": _iso(grant.created_at)}


def entry_payload(entry: PointsEntry) -> dict[str, Any]:
    return {"amount": entry.amount, "reason": entry.reason, "reference": entry.reference,
            "expires_at": _iso(entry.expires_at), "created_at": _iso(entry.created_at)}


# --- points as money (issue #16) --------------------------------------------------------------------------------------

class PointsSpendSerializer(serializers.Serializer):
    order_id = IdentifierField(max_length=64, help_text="The order the points pay for; one points payment per order.")
    points = StrictIntegerField(min_value=1, max_value=MAX_AMOUNT, help_text="All of these points, or nothing.")
    payable = StrictIntegerField(min_value=0, max_value=MAX_AMOUNT, required=False,
                                 help_text="Optional: what is left to pay after coupons (minor units); the points "
                                           "may not exceed it, and the answer's payable is what is left after them.")


class PointsRefundSerializer(serializers.Serializer):
    order_id = IdentifierField(max_length=64, help_text="The refunded order whose points come back.")


class PointsExchangeSerializer(serializers.Serializer):
    inventory = serializers.CharField(min_length=1, max_length=16,
                                      help_text="Public id of an inventory offered for points.")


class PointsSpendOutSerializer(serializers.Serializer):
    """Documents the spend object; rendered by ``spend_payload``."""

    member_id = serializers.CharField()
    order_id = serializers.CharField()
    points = serializers.IntegerField()
    spent_at = serializers.DateTimeField()
    refunded_at = serializers.DateTimeField(allow_null=True)


def spend_payload(debit: PointsEntry, refund: PointsEntry | None) -> dict[str, Any]:
    return {"member_id": debit.member_id, "order_id": debit.order_id, "points": -debit.amount,
            "spent_at": _iso(debit.created_at), "refunded_at": _iso(refund.created_at) if refund else None}
