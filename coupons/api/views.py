"""Coupon endpoints of the member API (API.md "Getting coupons", "A member's coupons", "Lifecycle")."""
from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from core.addresses import connection_ip
from core.api.permissions import IsOperatorClient
from core.api.views import API_ERROR as ERROR, IDEMPOTENCY_PARAMETER, TenantAPIView
from core.exceptions import DomainError, InvalidInput
from core.identifiers import identifier_from_path
from coupons import pricing, selectors
from coupons.services import issue as issuing
from coupons.services import grant as grants
from coupons.services import lifecycle
from coupons.services import revocation as revocations
from coupons.api import serializers as s
from coupons.exceptions import CouponNotFound, OrderIdMismatch, refusal_message
from coupons.models import CouponGrant

COUPON_RESPONSE = inline_serializer("CouponResponse", {"coupon": s.CouponSerializer()})


def _errors(*statuses: int) -> dict[int, Any]:
    return {code: OpenApiResponse(ERROR) for code in statuses}


class CouponAPIView(TenantAPIView):
    def context(self, data: dict[str, Any]) -> issuing.RequestContext:
        """Who asks and from where; the body's risk context wins over the connection's address."""
        return issuing.RequestContext(
            client=self.client, channel=data.get("channel") or "", ip=data.get("ip") or connection_ip(self.request),
            device_id=data.get("device_id") or "", phone=data.get("phone") or "",
            postcode=data.get("postcode") or "")

    def valid(self, serializer_class: type[serializers.Serializer], data: Any = None) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def coupon(self, coupon: Any, http_status: int = 200, **extra: Any) -> Response:
        return Response({"coupon": s.coupon_payload(coupon, timezone.now()), **extra}, status=http_status)


class ClaimView(CouponAPIView):
    code_fields = ("code", "promo_code", "partner_code")  # R-RISK-4: claims by inventory are not code lookups

    @extend_schema(operation_id="claim", request=s.ClaimSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: COUPON_RESPONSE, **_errors(400, 403, 404, 409, 422, 429)},
                   description="Claim a coupon by inventory public id, shared promo code, unique code (a code of "
                               "ours, also one distributed to a partner) or partner code. Claims by inventory or "
                               "promo code fall in the event's participation window (422 event_closed outside it); "
                               "codes brought by the member fall in its registration window, which may run past the "
                               "event's end (422 registration_closed outside it). 409 already_claimed, 422 sold_out "
                               "/ limit_reached / not_eligible / budget_exhausted, 404 not_found, 403 "
                               "member_blocked, 429 rate_limited (daily frequency limit; Retry-After).")
    def post(self, request: Request) -> Response:
        data = self.valid(s.ClaimSerializer)
        coupon = issuing.coupon_claim(tenant=self.tenant, member_id=data["member_id"], ctx=self.context(data),
                                      inventory=data.get("inventory"), promo_code=data.get("promo_code"),
                                      code=data.get("code"), partner_code=data.get("partner_code"))
        return self.coupon(coupon, status.HTTP_201_CREATED)


class GrantView(CouponAPIView):
    permission_classes = [IsOperatorClient]

    @extend_schema(operation_id="grant", request=s.GrantSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: inline_serializer("GrantResult", {
                       "issued": s.CouponSerializer(many=True),
                       "failed": inline_serializer("GrantFailure", {"member_id": serializers.CharField(),
                                                                    "code": serializers.CharField()}, many=True)}),
                              202: inline_serializer("GrantJob", {
                                  "job": serializers.CharField(), "id": serializers.CharField(),
                                  "status": serializers.ChoiceField(choices=["pending", "awaiting_approval"]),
                                  "total": serializers.IntegerField()}),
                              **_errors(400, 403, 404)},
                   description="Grant an inventory to members (operator scope). Up to 1,000 ids: 201 with the "
                               "result; more: 202 with a job id to poll. To at least the tenant's approval threshold "
                               "of members: 202 with `status` `awaiting_approval`; nothing is issued until an "
                               "approver (not the requester) approves it in the console.")
    def post(self, request: Request) -> Response:
        data = self.valid(s.GrantSerializer)
        result = grants.grant_create(tenant=self.tenant, inventory_public_id=data["inventory"],
                                      member_ids=data["member_ids"], ctx=self.context({}))
        if result.grant.status in (CouponGrant.Status.PENDING, CouponGrant.Status.AWAITING_APPROVAL):
            return Response({"job": result.grant.public_id, "id": result.grant.public_id,
                             "status": result.grant.status.lower(), "total": result.grant.total},
                            status=status.HTTP_202_ACCEPTED)
        now = timezone.now()
        return Response({"issued": s.CouponSerializer(result.issued, many=True, context={"now": now}).data,
                         "failed": result.failed}, status=status.HTTP_201_CREATED)


class GrantStatusView(CouponAPIView):
    permission_classes = [IsOperatorClient]

    @extend_schema(operation_id="grant_status", responses={200: inline_serializer("GrantStatus", {
        "job": serializers.CharField(), "status": serializers.CharField(), "total": serializers.IntegerField(),
        "processed": serializers.IntegerField(), "issued": serializers.IntegerField(),
        "failed": serializers.IntegerField(), "progress": serializers.FloatField(),
        "failures": inline_serializer("GrantFailureRow", {"member_id": serializers.CharField(),
                                                          "code": serializers.CharField()}, many=True)}),
        **_errors(403, 404)})
    def get(self, request: Request, job: str) -> Response:
        grant = selectors.grant_by_job(tenant=self.tenant, job=job)
        if grant is None:
            raise DomainError(_("No such grant job."), code="not_found", status=404)
        failures = selectors.grant_failures(grant=grant, limit=1000)
        return Response({
            "job": grant.public_id, "status": grant.status, "total": grant.total, "processed": grant.processed,
            "issued": grant.issued, "failed": grant.failed,
            "progress": round(grant.processed / grant.total, 4) if grant.total else 1.0,
            "failures": [{"member_id": f["member_id"], "code": f["error_code"]} for f in failures],
        })


PRODUCT_PARAMETERS = [OpenApiParameter(name, {"type": "string", "maxLength": 64},
                                      description=f"Only coupons whose scope covers this {name}.")
                      for name in ("sku", "spu", "category", "shop")]


def _product(request: Request) -> dict[str, str]:
    product = {}
    for key in ("sku", "spu", "category", "shop"):
        value = request.query_params.get(key, "")
        if len(value) > 64:  # as given, like the schema's maxLength says; blanks around it are then ignored
            raise InvalidInput(_("%(key)s is at most 64 characters.") % {"key": key})
        value = value.strip()
        if value:
            product[key] = value
    return product


class CouponPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        # DRF silently falls back to the default for a bad page_size; the schema says 1..200, so say what is wrong.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise InvalidInput(_("page_size must be an integer from 1 to %(max)d.") % {"max": self.max_page_size})
        return super().get_page_size(request)


class MemberCouponsView(CouponAPIView):
    @extend_schema(operation_id="member_coupons", parameters=[
        OpenApiParameter("state", str, enum=selectors.MEMBER_STATES, default="all"),
        OpenApiParameter("page", {"type": "integer", "minimum": 1}),
        OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": 200}), *PRODUCT_PARAMETERS],
        responses={200: inline_serializer("PaginatedCoupons", {
            "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True), "results": s.CouponSerializer(many=True)}),
            **_errors(400)})
    def get(self, request: Request, member_id: str) -> Response:
        state = request.query_params.get("state", "all")
        if state not in selectors.MEMBER_STATES:
            raise InvalidInput(_("state must be one of %(choices)s.") % {"choices": ", ".join(selectors.MEMBER_STATES)},
                               code="invalid")
        member_id = identifier_from_path(member_id, name="member_id")
        now = timezone.now()
        qs = selectors.member_coupons(tenant=self.tenant, member_id=member_id, state=state, now=now,
                                      product=_product(request))
        paginator = CouponPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.CouponSerializer(page, many=True, context={"now": now}).data)


class CouponDetailView(CouponAPIView):
    code_fields = ("code",)

    @extend_schema(operation_id="coupon_detail", responses={200: s.CouponSerializer, **_errors(404, 429)})
    def get(self, request: Request, code: str) -> Response:
        coupon = selectors.coupon_by_code(tenant=self.tenant, raw_code=code)
        if coupon is None:
            raise CouponNotFound()
        return Response(s.CouponSerializer(coupon, context={"now": timezone.now()}).data)


def _usage_out(usage: Any) -> dict[str, Any]:
    return {"discount": usage.discount, "order_amount": usage.order_amount,
            "used_at": serializers.DateTimeField().to_representation(usage.used_at)}


class LockView(CouponAPIView):
    code_fields = ("code",)  # R-RISK-4: a lifecycle call by code is a code lookup (issue #17)

    @extend_schema(operation_id="coupon_lock", request=s.LockSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: inline_serializer("LockResult", {"coupon": s.CouponSerializer(),
                                                                    "discount": serializers.IntegerField()}),
                              **_errors(400, 403, 404, 409, 422)})
    def post(self, request: Request, code: str) -> Response:
        data = self.valid(s.LockSerializer)
        coupon, priced = lifecycle.coupon_lock(tenant=self.tenant, code=code, member_id=data["member_id"],
                                               order_id=data["order_id"], order=data["order"],
                                               ctx=self.context(data), buyer=s.buyer_of(data))
        return self.coupon(coupon, discount=priced.discount)


class ReleaseView(CouponAPIView):
    code_fields = ("code",)  # R-RISK-4: a lifecycle call by code is a code lookup (issue #17)

    @extend_schema(operation_id="coupon_release", request=s.ReleaseSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: COUPON_RESPONSE, **_errors(400, 404, 409)})
    def post(self, request: Request, code: str) -> Response:
        data = self.valid(s.ReleaseSerializer)
        return self.coupon(lifecycle.coupon_release(tenant=self.tenant, code=code, order_id=data["order_id"],
                                                    ctx=self.context({})))


class RedeemView(CouponAPIView):
    code_fields = ("code",)  # R-RISK-4: a lifecycle call by code is a code lookup (issue #17)

    @extend_schema(operation_id="coupon_redeem", request=s.RedeemSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: inline_serializer("RedeemResult", {
                       "coupon": s.CouponSerializer(),
                       "usage": inline_serializer("Usage", {"discount": serializers.IntegerField(),
                                                            "order_amount": serializers.IntegerField(),
                                                            "used_at": serializers.DateTimeField()})}),
                              **_errors(400, 403, 404, 409, 422, 429)},
                   description="ISSUED, or LOCKED by the same order → USED. 403 not_owner / member_blocked, "
                               "422 budget_exhausted, 429 rate_limited (daily use limit; Retry-After).")
    def post(self, request: Request, code: str) -> Response:
        data = self.valid(s.RedeemSerializer)
        coupon, usage = lifecycle.coupon_redeem(tenant=self.tenant, code=code, member_id=data["member_id"],
                                                order_id=data["order_id"], order=data["order"],
                                                ctx=self.context(data), buyer=s.buyer_of(data))
        return self.coupon(coupon, usage=_usage_out(usage))


class RefundView(CouponAPIView):
    code_fields = ("code",)  # R-RISK-4: a lifecycle call by code is a code lookup (issue #17)

    @extend_schema(operation_id="coupon_refund", request=s.RefundSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: inline_serializer("RefundResult", {"coupon": s.CouponSerializer(),
                                                                      "returned": serializers.BooleanField()}),
                              **_errors(400, 404, 409)})
    def post(self, request: Request, code: str) -> Response:
        data = self.valid(s.RefundSerializer)
        coupon, returned = lifecycle.coupon_refund(tenant=self.tenant, code=code, order_id=data["order_id"],
                                                   full=data["full_refund"], ctx=self.context({}))
        return self.coupon(coupon, returned=returned)


class RevokeView(CouponAPIView):
    code_fields = ("code",)  # R-RISK-4: a lifecycle call by code is a code lookup (issue #17)
    permission_classes = [IsOperatorClient]  # issue #16: taking a coupon back is the back office's decision

    @extend_schema(operation_id="coupon_revoke", request=s.RevokeSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: COUPON_RESPONSE, **_errors(400, 403, 404, 409)})
    def post(self, request: Request, code: str) -> Response:
        data = self.valid(s.RevokeSerializer)
        return self.coupon(lifecycle.coupon_revoke(tenant=self.tenant, code=code, reason=data["reason"],
                                                   member_id=data.get("member_id"), ctx=self.context({})))


class RevocationsView(CouponAPIView):
    permission_classes = [IsOperatorClient]

    @extend_schema(operation_id="revocation_create", request=s.RevocationSerializer,
                   parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: inline_serializer("RevocationResult", {"results": inline_serializer(
                       "RevocationMember", {
                           "member_id": serializers.CharField(), "ok": serializers.BooleanField(),
                           "revoked": serializers.ListField(child=serializers.CharField()),
                           "errors": inline_serializer("RevocationError", {
                               "coupon": serializers.CharField(allow_null=True), "code": serializers.CharField(),
                               "message": serializers.CharField()}, many=True)}, many=True)}),
                              **_errors(400, 403, 404)},
                   description="Revoke the coupons of an inventory (or of every inventory of a policy) held by up "
                               "to 1,000 members, with a reason (operator scope). Each coupon is its own "
                               "transaction; each member is reported: the codes `revoked` and the `errors` (a LOCKED "
                               "coupon → locked_by_other_order; no revocable coupon → not_found). `ok` is true when "
                               "something was revoked and nothing failed.")
    def post(self, request: Request) -> Response:
        data = self.valid(s.RevocationSerializer)
        report = revocations.coupons_revoke_for_members(
            tenant=self.tenant, member_ids=data["member_ids"], reason=data["reason"], ctx=self.context({}),
            inventory=data.get("inventory"), policy=data.get("policy"))
        return Response({"results": [r.as_dict() for r in report]})


BATCH_ACTIONS = ["lock", "release", "redeem", "refund", "revoke"]
_BATCH_REQUIRED = {"lock": ["member_id", "order_id", "order"], "release": ["order_id"],
                   "redeem": ["member_id", "order_id", "order"], "refund": ["order_id"], "revoke": ["reason"]}


class BatchActionView(CouponAPIView):
    def lookup_count(self, request: Request, kwargs: dict) -> int | None:
        items = self._body(request).get("items")
        if kwargs.get("action") not in BATCH_ACTIONS or not isinstance(items, list) or not items:
            return None
        return min(len(items), 500)

    @extend_schema(operation_id="coupon_batch", request=s.BatchSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: inline_serializer("BatchResult", {"results": inline_serializer("BatchItemResult", {
                       "code": serializers.CharField(), "ok": serializers.BooleanField(),
                       "error": inline_serializer("BatchItemError", {"code": serializers.CharField(),
                                                                     "message": serializers.CharField()},
                                                  required=False)}, many=True)}), **_errors(400, 404)},
                   description="Apply one action to many coupons; each item is its own transaction.")
    def post(self, request: Request, action: str) -> Response:
        if action not in BATCH_ACTIONS:
            raise CouponNotFound(_("Unknown batch action %(action)r; use one of %(choices)s.")
                                 % {"action": action, "choices": ", ".join(BATCH_ACTIONS)})
        if action == "revoke" and not IsOperatorClient().has_permission(request, self):
            self.permission_denied(request, message=IsOperatorClient.message)  # issue #16: operator scope only
        items = self.valid(s.BatchSerializer)["items"]
        for index, item in enumerate(items):  # every item checked before any is applied: a bad one changes nothing
            try:
                s.check_buyer(item, where=f"items[{index}].")
            except serializers.ValidationError as exc:
                raise InvalidInput(_("items[%(index)d]: a guest has no tier.") % {"index": index},
                                   details={"index": index, "fields": exc.detail}) from exc
            if action in ("lock", "redeem") and item.get("order"):
                try:
                    s.resolve_order_id(item, required=False, where=f"items[{index}].")
                except OrderIdMismatch as exc:
                    exc.details["index"] = index
                    raise
            missing = [f for f in _BATCH_REQUIRED[action] if not item.get(f)]
            if missing:
                raise InvalidInput(_("items[%(index)d] needs %(fields)s for %(action)s.")
                                   % {"index": index, "fields": ", ".join(missing), "action": action},
                                   details={"index": index, "missing": missing})
        ctx = self.context({})
        results = []
        allowance = len(items) if self.lookup_allowance is None else self.lookup_allowance
        for index, item in enumerate(items):
            if index >= allowance:  # past the lookups left to this member/device/client/connection: not evaluated
                results.append({"code": item["code"], "ok": False, "error": {"code": "rate_limited", "message": _(
                    "Not looked at: the lookups allowed for now are used up; retry after a while.")}})
                continue
            try:
                self._one(action, item, ctx)
                results.append({"code": item["code"], "ok": True})
            except DomainError as exc:
                results.append({"code": item["code"], "ok": False,
                                "error": {"code": exc.code, "message": exc.message}})
        return Response({"results": results})

    def _one(self, action: str, item: dict[str, Any], ctx: issuing.RequestContext) -> None:
        t, code = self.tenant, item["code"]
        if action == "lock":
            lifecycle.coupon_lock(tenant=t, code=code, member_id=item["member_id"], order_id=item["order_id"],
                                  order=item["order"], ctx=ctx, buyer=s.buyer_of(item))
        elif action == "release":
            lifecycle.coupon_release(tenant=t, code=code, order_id=item["order_id"], ctx=ctx)
        elif action == "redeem":
            lifecycle.coupon_redeem(tenant=t, code=code, member_id=item["member_id"], order_id=item["order_id"],
                                    order=item["order"], ctx=ctx, buyer=s.buyer_of(item))
        elif action == "refund":
            lifecycle.coupon_refund(tenant=t, code=code, order_id=item["order_id"], full=item["full_refund"],
                                    ctx=ctx)
        else:
            lifecycle.coupon_revoke(tenant=t, code=code, reason=item["reason"], member_id=item.get("member_id"),
                                    ctx=ctx)


def _checkout_out(result: Any) -> dict[str, Any]:
    """The engine's result, each refused code with a sentence in the request's language beside its reason (#19)."""
    out = result.as_dict()
    out["rejected"] = [{**r, "message": refusal_message(r["reason"])} for r in out["rejected"]]
    return out


class CheckoutValidateView(CouponAPIView):
    def lookup_count(self, request: Request, kwargs: dict) -> int | None:
        codes = self._body(request).get("codes")
        return min(len(codes), 500) if isinstance(codes, list) and codes else None

    @extend_schema(operation_id="checkout_validate", request=s.CheckoutValidateSerializer,
                   parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: s.CheckoutResultSerializer, **_errors(400, 429)},
                   description="Dry run (R-USE-1): apply the codes in the given order (R-POL-6 stacking) and answer "
                               "the discount, the lines each coupon took, and why any code was rejected.")
    def post(self, request: Request) -> Response:
        data = self.valid(s.CheckoutValidateSerializer)
        codes = data["codes"]
        allowance = len(codes) if self.lookup_allowance is None else self.lookup_allowance
        result = _checkout_out(pricing.check_codes(tenant=self.tenant, member_id=data["member_id"],
                                                   codes=codes[:allowance], order=data["order"], now=timezone.now(),
                                                   buyer=s.buyer_of(data)))
        if allowance < len(codes):  # the rest is not evaluated at all (issue #17): no answer about them either way
            result["valid"] = False
            result["rejected"] += [{"code": code, "reason": "rate_limited", "message": refusal_message("rate_limited")}
                                   for code in codes[allowance:]]
        return Response(result)


class CheckoutBestView(CouponAPIView):
    def lookup_count(self, request: Request, kwargs: dict) -> int | None:
        return 0  # takes no code, but a member or device out of guesses is refused here too (issue #17)

    @extend_schema(operation_id="checkout_best", request=s.CheckoutBestSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={200: s.CheckoutResultSerializer, **_errors(400)},
                   description="The best combination of the member's usable coupons for the order (R-POL-7): the "
                               "largest total discount; ties by earliest expiry, kind, product- then "
                               "channel-restriction.")
    def post(self, request: Request) -> Response:
        data = self.valid(s.CheckoutBestSerializer)
        result = pricing.best_for_member(tenant=self.tenant, member_id=data["member_id"], order=data["order"],
                                         now=timezone.now(), buyer=s.buyer_of(data))
        return Response(_checkout_out(result))


class ClaimableView(CouponAPIView):
    @extend_schema(operation_id="claimable", parameters=[
        *PRODUCT_PARAMETERS,
        OpenApiParameter("member_id", {"type": "string", "maxLength": 64},
                         description="Also say how many the member holds; inventories where the member is at the "
                                     "limit are left out."),
        OpenApiParameter("page", {"type": "integer", "minimum": 1}),
        OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": 200})],
        responses={200: inline_serializer("PaginatedClaimable", {
            "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True), "results": s.ClaimableSerializer(many=True)}),
            **_errors(400)},
        description="Coupons a member can claim on a product or shop page (R-QRY-2): open events, active "
                    "inventories with codes left, whose scope covers the product.")
    def get(self, request: Request) -> Response:
        member_id = request.query_params.get("member_id") or None
        if member_id is not None:
            member_id = identifier_from_path(member_id, name="member_id")
        rows = selectors.claimable_inventories(tenant=self.tenant, product=_product(request), member_id=member_id,
                                               now=timezone.now())
        paginator = CouponPagination()  # paginated like every other list (#19)
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(s.ClaimableSerializer(page, many=True).data)
