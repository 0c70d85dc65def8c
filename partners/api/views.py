"""Operator endpoints for partner uploads and distributions (API.md "Operator endpoints")."""
from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.parsers import MultiPartParser
from core.api.permissions import IsOperatorClient
from core.api.views import API_ERROR as ERROR, IDEMPOTENCY_PARAMETER, TenantAPIView
from core.audit import Actor
from core.exceptions import InvalidInput
from core.identifiers import IdentifierField
from coupons.api.views import CouponPagination
from partners import distribution, selectors, services
from partners.exceptions import UploadNotFound
from partners.models import Distribution, PartnerUpload, PartnerUploadFailure

UPLOAD_ACCEPTED = inline_serializer("PartnerUploadAccepted", {"id": serializers.CharField(),
                                                              "status": serializers.CharField()})


def _errors(*statuses: int) -> dict[int, Any]:
    return {code: OpenApiResponse(ERROR) for code in statuses}


class UploadRequest(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    partner = IdentifierField(max_length=32, help_text="The partner's code.")
    inventory = IdentifierField(max_length=32, help_text="The inventory's public id.")


class CorrectionSerializer(serializers.Serializer):
    line = serializers.IntegerField(min_value=1)
    value = serializers.CharField(allow_blank=True, max_length=1024, trim_whitespace=False)


class ReprocessRequest(serializers.Serializer):
    rows = CorrectionSerializer(many=True, required=False)


class FailureSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    value = serializers.CharField()
    reason = serializers.ChoiceField(choices=PartnerUploadFailure.Reason.choices)
    message = serializers.CharField()


class FailurePagination(CouponPagination):
    """Strict like every list of the API: a page_size outside 1..1000 is a 400, not silently the default."""

    page_size = 100
    max_page_size = 1000


class PartnerUploadAPIView(TenantAPIView):
    permission_classes = [IsOperatorClient]

    def upload(self, upload_id: str) -> PartnerUpload:
        upload = selectors.upload_by_public_id(tenant=self.tenant, public_id=upload_id)
        if upload is None:
            raise UploadNotFound()
        return upload


class UploadCreateView(PartnerUploadAPIView):
    parser_classes = [MultiPartParser]  # the one endpoint that takes a file; every other body is JSON

    @extend_schema(operation_id="partner_upload_create", request={"multipart/form-data": UploadRequest},
                   parameters=[IDEMPOTENCY_PARAMETER], responses={202: UPLOAD_ACCEPTED, **_errors(400, 403, 404)},
                   description="Upload a CSV or XLSX of partner codes (one column, optional header partner_code) for "
                               "an inventory. Processed by a worker; the same file again → the earlier upload.")
    def post(self, request: Request) -> Response:
        data = UploadRequest(data=request.data)
        data.is_valid(raise_exception=True)
        upload, _created = services.partner_upload_create(
            tenant=self.tenant, partner_code=data.validated_data["partner"],
            inventory_public_id=data.validated_data["inventory"], uploaded=data.validated_data["file"],
            actor=Actor.api_client(self.client), client=self.client)
        upload.refresh_from_db(from_queryset=PartnerUpload.objects.filter(tenant=self.tenant))  # #23
        return Response({"id": upload.public_id, "status": upload.status}, status=status.HTTP_202_ACCEPTED)


class UploadDetailView(PartnerUploadAPIView):
    @extend_schema(operation_id="partner_upload_status", responses={200: inline_serializer("PartnerUploadStatus", {
        "id": serializers.CharField(), "status": serializers.CharField(), "rows": serializers.IntegerField(),
        "mapped": serializers.IntegerField(), "failed": serializers.IntegerField(),
        "progress": serializers.FloatField(), "error": serializers.CharField()}), **_errors(403, 404)})
    def get(self, request: Request, upload_id: str) -> Response:
        upload = self.upload(upload_id)
        return Response({"id": upload.public_id, "status": upload.status, "rows": upload.rows,
                         "mapped": upload.mapped, "failed": upload.failed, "progress": upload.progress,
                         "error": upload.error})


class UploadFailuresView(PartnerUploadAPIView):
    @extend_schema(operation_id="partner_upload_failures", parameters=[
        OpenApiParameter("reason", str, enum=PartnerUploadFailure.Reason.values),
        OpenApiParameter("page", {"type": "integer", "minimum": 1}),
        OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": 1000})],
        responses={200: inline_serializer("PaginatedFailures", {
            "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True), "results": FailureSerializer(many=True)}),
            **_errors(400, 403, 404)})
    def get(self, request: Request, upload_id: str) -> Response:
        upload = self.upload(upload_id)
        reason = request.query_params.get("reason")
        if reason is not None and reason not in PartnerUploadFailure.Reason.values:
            # the schema's enum: say so rather than list nothing
            raise InvalidInput(_("reason must be one of %(choices)s.")
                               % {"choices": ", ".join(PartnerUploadFailure.Reason.values)})
        qs = selectors.upload_failures(upload=upload, reason=reason)
        paginator = FailurePagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(FailureSerializer(page, many=True).data)


class UploadReprocessView(PartnerUploadAPIView):
    @extend_schema(operation_id="partner_upload_reprocess", request=ReprocessRequest,
                   parameters=[IDEMPOTENCY_PARAMETER], responses={202: UPLOAD_ACCEPTED, **_errors(400, 403, 404, 409)},
                   description="Retry the failed rows; optional corrected values replace those of their lines.")
    def post(self, request: Request, upload_id: str) -> Response:
        data = ReprocessRequest(data=request.data)
        data.is_valid(raise_exception=True)
        upload = services.partner_upload_reprocess(upload=self.upload(upload_id), actor=Actor.api_client(self.client),
                                                   corrections=[dict(r) for r in data.validated_data.get("rows", [])])
        upload.refresh_from_db(from_queryset=PartnerUpload.objects.filter(tenant=self.tenant))  # #23
        return Response({"id": upload.public_id, "status": upload.status}, status=status.HTTP_202_ACCEPTED)


# --- Distributions: our codes handed to a partner (flow 1, R-PART-4) ------------------------------------------------

class DistributionRequest(serializers.Serializer):
    inventory = serializers.RegexField(r"^[A-Za-z0-9]{16}$", help_text="The inventory's 16-character public id.")
    partner = serializers.RegexField(r"^\s*[A-Za-z0-9_-]{1,32}\s*$", help_text="The partner's code (e.g. GS25).")
    quantity = serializers.IntegerField(min_value=1, max_value=distribution.MAX_QUANTITY, required=False,
                                        help_text="How many AVAILABLE codes to reserve. Required without `batch`; "
                                                  "with `batch` and no quantity, every available code of the batch.")
    batch = serializers.CharField(min_length=1, max_length=64, required=False,
                                  help_text="Optional batch code of the inventory: take the codes from it only.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("quantity") is None and not attrs.get("batch"):
            raise serializers.ValidationError({"quantity": [gettext("Give a quantity, or a batch to distribute all "
                                                                    "of its available codes.")]})
        return attrs


class DistributionSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    status = serializers.CharField()
    partner = serializers.CharField(source="partner.code")
    inventory = serializers.CharField(source="inventory.public_id")
    batch = serializers.CharField(source="batch.batch_code", allow_null=True, default=None)
    quantity = serializers.IntegerField()
    created_at = serializers.DateTimeField()


DISTRIBUTION_ANSWER = inline_serializer("Distribution", {
    "id": serializers.CharField(), "status": serializers.ChoiceField(choices=Distribution.Status.values),
    "partner": serializers.CharField(), "inventory": serializers.CharField(),
    "batch": serializers.CharField(allow_null=True), "quantity": serializers.IntegerField(),
    "created_at": serializers.DateTimeField(),
    "codes": inline_serializer("DistributionCounts", {
        "reserved": serializers.IntegerField(), "waiting": serializers.IntegerField(),
        "registered": serializers.IntegerField(), "used": serializers.IntegerField()}),
    "file": serializers.CharField(),
})


def _distribution_answer(request: Request, dist: Any) -> dict[str, Any]:
    stats = distribution.distribution_stats(dist)
    return {**DistributionSerializer(dist).data,
            "codes": {"reserved": stats.reserved, "waiting": stats.waiting, "registered": stats.registered,
                      "used": stats.used},
            "file": request.build_absolute_uri(f"/api/v1/distributions/{dist.public_id}/codes")}


class DistributionCreateView(TenantAPIView):
    permission_classes = [IsOperatorClient]

    @extend_schema(operation_id="distribution_create", request=DistributionRequest, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: DISTRIBUTION_ANSWER, 202: DISTRIBUTION_ANSWER, **_errors(400, 403, 404, 422)},
                   description="Reserve `quantity` AVAILABLE codes of an inventory (of one `batch` if given; a whole "
                               "batch without `quantity`) for a partner (flow 1). The codes "
                               "leave the pool at once, in one transaction, and are never distributed twice nor "
                               "claimed from the pool; members register them with `POST /claims {\"code\"}`. Fewer "
                               "available codes than asked → 422 `not_enough_codes`, nothing reserved. Unknown "
                               "inventory or partner → 404. Download the codes from `file`. At or above the tenant's "
                               "approval threshold: 202 with `status` `awaiting_approval` and nothing reserved until "
                               "an approver (not the requester) approves it in the console.")
    def post(self, request: Request) -> Response:
        data = DistributionRequest(data=request.data)
        data.is_valid(raise_exception=True)
        inventory = distribution.inventory_by_public_id(self.tenant, data.validated_data["inventory"])
        batch_code = data.validated_data.get("batch")
        dist = distribution.distribution_create(
            tenant=self.tenant, inventory=inventory,
            partner=distribution.partner_by_code(self.tenant, data.validated_data["partner"]),
            batch=distribution.batch_by_code(inventory, batch_code) if batch_code else None,
            quantity=data.validated_data.get("quantity"), actor=Actor.api_client(self.client), client=self.client)
        waiting = dist.status == Distribution.Status.AWAITING_APPROVAL
        return Response(_distribution_answer(request, dist),
                        status=status.HTTP_202_ACCEPTED if waiting else status.HTTP_201_CREATED)


class DistributionDetailView(TenantAPIView):
    permission_classes = [IsOperatorClient]

    @extend_schema(operation_id="distribution_status", responses={200: DISTRIBUTION_ANSWER, **_errors(403, 404)},
                   description="A distribution with how many of its codes are still with the partner (`waiting`), "
                               "registered by members and used.")
    def get(self, request: Request, distribution_id: str) -> Response:
        dist = distribution.distribution_get(tenant=self.tenant, public_id=distribution_id)
        return Response(_distribution_answer(request, dist))


class DistributionCodesView(TenantAPIView):
    permission_classes = [IsOperatorClient]

    @extend_schema(operation_id="distribution_codes",
                   responses={(200, "text/csv"): OpenApiResponse(
                       {"type": "string"}, description="`code` header, then one code per line, in id order."),
                       **_errors(403, 404, 409)},
                   description="The distribution's codes as CSV, streamed. The same file at every download. A "
                               "distribution awaiting approval or rejected has none: 409 "
                               "`distribution_not_distributed`.")
    def get(self, request: Request, distribution_id: str) -> Any:
        dist = distribution.distribution_get(tenant=self.tenant, public_id=distribution_id)
        distribution.distribution_downloaded(distribution=dist, actor=Actor.api_client(self.client))
        response = StreamingHttpResponse(distribution.distribution_csv(dist), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{distribution.distribution_filename(dist)}"'
        return response
