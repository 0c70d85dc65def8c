"""Rewards endpoints of the member API (API.md "Rewards")."""
from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.views import API_ERROR as ERROR, IDEMPOTENCY_PARAMETER, TenantAPIView
from core.exceptions import InvalidInput
from core.identifiers import identifier_from_path
from coupons.api.serializers import CouponSerializer, coupon_payload
from coupons.api.views import CouponAPIView
from rewards import selectors, services
from rewards.api import serializers as s

GRANT_RESPONSE = inline_serializer("RewardGrantResponse", {"grant": s.GrantOutSerializer()})
MAX_ENTRIES = 200


class RewardTriggerView(TenantAPIView):
    @extend_schema(
        operation_id="reward_trigger", request=s.TriggerSerializer, parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: GRANT_RESPONSE, 200: GRANT_RESPONSE,
                   **{code: OpenApiResponse(ERROR) for code in (400, 409, 422)}},
        description="Report a reward trigger (R-REW-1/2). 201 with what was granted; 200 with the earlier grant "
                    "when (member_id, trigger, reference) was already granted — nothing is granted twice. 400 "
                    "unknown_trigger or invalid input (amount is required for purchase_confirmed and only allowed there; has_image "
                    "only for review); 422 no_active_rule. If the rule's coupon cannot be issued (e.g. sold_out) the "
                    "points are still granted and coupon_error names the reason; a rule without points then answers "
                    "that error (e.g. 422 sold_out) and records nothing, so the trigger can be sent again.")
    def post(self, request: Request) -> Response:
        serializer = s.TriggerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        grant, created = services.reward_trigger(
            tenant=self.tenant, member_id=data["member_id"], trigger=data["trigger"], reference=data["reference"],
            amount=data.get("amount"), has_image=data["has_image"], client=self.client)
        return Response({"grant": s.grant_payload(grant, timezone.now())},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MemberPointsView(TenantAPIView):
    @extend_schema(
        operation_id="member_points",
        parameters=[OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_ENTRIES},
                                     description=f"Newest entries to list (1–{MAX_ENTRIES}, default 50).")],
        responses={200: inline_serializer("MemberPoints", {
            "member_id": serializers.CharField(), "balance": serializers.IntegerField(),
            "entries": s.EntryOutSerializer(many=True)}), 400: OpenApiResponse(ERROR)},
        description="The member's spendable balance (unspent, unexpired credits) and newest ledger entries.")
    def get(self, request: Request, member_id: str) -> Response:
        member_id = identifier_from_path(member_id, name="member_id")
        raw = request.query_params.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_ENTRIES:
            raise InvalidInput(_("limit must be an integer from 1 to %(max)d.") % {"max": MAX_ENTRIES})
        entries = selectors.points_entries(tenant=self.tenant, member_id=member_id)[:int(raw)]
        return Response({
            "member_id": member_id,
            "balance": selectors.points_balance(tenant=self.tenant, member_id=member_id, now=timezone.now()),
            "entries": [s.entry_payload(e) for e in entries],
        })


def _member(member_id: str) -> str:
    return identifier_from_path(member_id, name="member_id")


def _balance(view: TenantAPIView, member_id: str) -> int:
    return selectors.points_balance(tenant=view.tenant, member_id=member_id, now=timezone.now())


SPEND_RESPONSE = inline_serializer("PointsSpendResult", {
    "spend": s.PointsSpendOutSerializer(), "payable": serializers.IntegerField(allow_null=True),
    "balance": serializers.IntegerField()})


class PointsSpendView(TenantAPIView):
    @extend_schema(
        operation_id="points_spend", request=s.PointsSpendSerializer, parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: SPEND_RESPONSE, 200: SPEND_RESPONSE,
                   **{code: OpenApiResponse(ERROR) for code in (400, 409, 422)}},
        description="Pay part of an order with points (issue #16): all of `points` or nothing, the credits that "
                    "expire first used first. One points payment per order: the same order and points again → 200 "
                    "with the first spend and nothing debited twice; other points → 409 points_already_spent. 422 "
                    "insufficient_points (`details.balance`), 422 points_exceed_payable.")
    def post(self, request: Request, member_id: str) -> Response:
        member_id = _member(member_id)
        serializer = s.PointsSpendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        debit, created = services.points_spend_order(
            tenant=self.tenant, member_id=member_id, order_id=data["order_id"], points=data["points"],
            payable=data.get("payable"), client=self.client)
        payable = data.get("payable")
        return Response({"spend": s.spend_payload(debit, services.spend_refund(debit)),
                         "payable": None if payable is None else payable + debit.amount,
                         "balance": _balance(self, member_id)},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PointsRefundView(TenantAPIView):
    @extend_schema(
        operation_id="points_refund", request=s.PointsRefundSerializer, parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: inline_serializer("PointsRefundResult", {
            "spend": s.PointsSpendOutSerializer(), "refunded": serializers.BooleanField(),
            "balance": serializers.IntegerField()}), **{code: OpenApiResponse(ERROR) for code in (400, 404)}},
        description="The order was refunded: the points spent on it come back, each part with the expiry of the "
                    "credit it came from. Once: a repeat answers the same spend with `refunded: false` and credits "
                    "nothing. 404 not_found when the member spent no points on the order.")
    def post(self, request: Request, member_id: str) -> Response:
        member_id = _member(member_id)
        serializer = s.PointsRefundSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        debit, refunded = services.points_refund_order(tenant=self.tenant, member_id=member_id,
                                                       order_id=serializer.validated_data["order_id"],
                                                       client=self.client)
        return Response({"spend": s.spend_payload(debit, services.spend_refund(debit)), "refunded": refunded,
                         "balance": _balance(self, member_id)})


class PointsExchangeView(CouponAPIView):
    @extend_schema(
        operation_id="points_exchange", request=s.PointsExchangeSerializer, parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: inline_serializer("PointsExchangeResult", {
            "coupon": CouponSerializer(), "points": serializers.IntegerField(),
            "balance": serializers.IntegerField()}), **{code: OpenApiResponse(ERROR) for code in (400, 403, 404, 409, 422)}},
        description="Exchange points for the next coupon of an inventory the tenant offers for points: the coupon and "
                    "the debit of its price happen together or not at all. Each call buys one coupon; send an "
                    "Idempotency-Key so a retry never buys twice. 422 not_exchangeable, insufficient_points, "
                    "sold_out, limit_reached; 404 not_found (no such inventory).")
    def post(self, request: Request, member_id: str) -> Response:
        member_id = _member(member_id)
        serializer = s.PointsExchangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coupon, debit = services.points_exchange(tenant=self.tenant, member_id=member_id,
                                                 inventory_public_id=serializer.validated_data["inventory"],
                                                 client=self.client, ctx=self.context({}))
        return Response({"coupon": coupon_payload(coupon, timezone.now()), "points": -debit.amount,
                         "balance": _balance(self, member_id)}, status=status.HTTP_201_CREATED)
