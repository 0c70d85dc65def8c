"""Operator endpoints for partner uploads (API.md "Operator endpoints")."""
from __future__ import annotations

from typing import Any

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
from coupons.api.views import CouponPagination
from partners import services
from partners.exceptions import UploadNotFound
from partners.models import PartnerUpload, PartnerUploadFailure

UPLOAD_ACCEPTED = inline_serializer("PartnerUploadAccepted", {"id": serializers.CharField(),
                                                              "status": serializers.CharField()})


def _errors(*statuses: int) -> dict[int, Any]:
    return {code: OpenApiResponse(ERROR) for code in statuses}


class UploadRequest(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    partner = serializers.CharField(max_length=32, help_text="The partner's code.")
    inventory = serializers.CharField(max_length=32, help_text="The inventory's public id.")


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
        upload = PartnerUpload.objects.filter(tenant=self.tenant, public_id=upload_id.strip().upper()).first()
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
        upload.refresh_from_db()
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
        qs = PartnerUploadFailure.objects.filter(upload=upload).order_by("line").only("line", "value", "reason",
                                                                                     "message")
        reason = request.query_params.get("reason")
        if reason is not None:
            if reason not in PartnerUploadFailure.Reason.values:  # the schema's enum: say so rather than list nothing
                raise InvalidInput(_("reason must be one of %(choices)s.")
                                   % {"choices": ", ".join(PartnerUploadFailure.Reason.values)})
            qs = qs.filter(reason=reason)
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
        upload.refresh_from_db()
        return Response({"id": upload.public_id, "status": upload.status}, status=status.HTTP_202_ACCEPTED)
