"""Operator endpoints for exports (API.md "Operator endpoints"): request, watch, download (R-REP-1, R-REP-2)."""
from __future__ import annotations

from typing import Any

from django.http import FileResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.permissions import IsOperatorClient
from core.api.views import API_ERROR as ERROR, IDEMPOTENCY_PARAMETER, TenantAPIView
from core.audit import Actor
from core.exceptions import NotFound
from core.spreadsheets import XLSX_CONTENT_TYPE as XLSX
from exports import selectors, services
from exports.models import Export
from exports.selectors import ALL_FILTERS


def _errors(*statuses: int) -> dict[int, Any]:
    return {code: OpenApiResponse(ERROR) for code in statuses}


class ExportNotFound(NotFound):
    default_message = _("No such export.")


class ExportRequest(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Export.Kind.choices)
    event = serializers.CharField(required=False, max_length=200, help_text="Event public id.")
    policy = serializers.CharField(required=False, max_length=200, help_text="Policy public id.")
    inventory = serializers.CharField(required=False, max_length=200, help_text="Inventory public id.")
    batch = serializers.CharField(required=False, max_length=200,
                                  help_text="Batch code (kind `codes`: a batch or a distribution is required).")
    distribution = serializers.CharField(required=False, max_length=200,
                                         help_text="Distribution public id (kind `codes`): the codes handed to a "
                                                   "partner.")
    client = serializers.CharField(required=False, max_length=200, help_text="API client name.")
    draw = serializers.CharField(required=False, max_length=200, help_text="Draw public id (kind `winners`).")
    date_from = serializers.DateField(required=False, help_text="First day, inclusive, in the tenant's time zone.")
    date_to = serializers.DateField(required=False, help_text="Last day, inclusive, in the tenant's time zone.")
    header = serializers.ChoiceField(choices=Export.Header.choices, default=Export.Header.LABELS,
                                     help_text="`labels`: readable column titles; `keys`: stable machine keys.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A misspelt filter must not silently widen the export to every row.
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: [gettext("Unknown field.")] for name in unknown})
        return attrs


EXPORT_ACCEPTED = inline_serializer("ExportAccepted", {"id": serializers.CharField(),
                                                       "status": serializers.CharField(),
                                                       "url": serializers.CharField()})
EXPORT_STATUS = inline_serializer("ExportStatus", {
    "id": serializers.CharField(), "kind": serializers.ChoiceField(choices=Export.Kind.choices),
    "status": serializers.ChoiceField(choices=Export.Status.choices),
    "filters": serializers.DictField(child=serializers.CharField()),
    "header": serializers.ChoiceField(choices=Export.Header.choices),
    "rows_done": serializers.IntegerField(), "rows_total": serializers.IntegerField(allow_null=True),
    "progress": serializers.FloatField(), "file_size": serializers.IntegerField(allow_null=True),
    "created_at": serializers.DateTimeField(), "finished_at": serializers.DateTimeField(allow_null=True),
    "error": serializers.CharField(), "download_url": serializers.CharField(allow_null=True)})


class ExportAPIView(TenantAPIView):
    permission_classes = [IsOperatorClient]

    def export(self, export_id: str) -> Export:
        export = selectors.export_by_public_id(tenant=self.tenant, public_id=export_id)
        if export is None:
            raise ExportNotFound()
        return export


class ExportCreateView(ExportAPIView):
    @extend_schema(operation_id="export_create", request=ExportRequest, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={202: EXPORT_ACCEPTED, **_errors(400, 403, 404)},
                   description="Request an XLSX export of the tenant's usage log, issue log, a batch's codes or draw "
                               "winners. Filters are optional top-level fields (`codes` needs a batch or a distribution); a "
                               "filter the kind does not have → 400 naming it, an id of no row of the tenant → 404. "
                               "Written by a job; poll the `url` for progress and the download link.")
    def post(self, request: Request) -> Response:
        data = ExportRequest(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        kind, header = values.pop("kind"), values.pop("header")
        export = services.export_request(tenant=self.tenant, kind=kind,
                                         filters={k: v for k, v in values.items() if k in ALL_FILTERS},
                                         actor=Actor.api_client(self.client), client=self.client, header=header)
        return Response({"id": export.public_id, "status": export.status,
                         "url": reverse("api-export", args=[export.public_id])}, status=status.HTTP_202_ACCEPTED)


class ExportDetailView(ExportAPIView):
    @extend_schema(operation_id="export_status", responses={200: EXPORT_STATUS, **_errors(403, 404)},
                   description="Status and progress of an export; `download_url` once it is DONE.")
    def get(self, request: Request, export_id: str) -> Response:
        export = self.export(export_id)
        done = export.status == Export.Status.DONE
        return Response({
            "id": export.public_id, "kind": export.kind, "status": export.status, "filters": export.filters,
            "header": export.header, "rows_done": export.rows_done, "rows_total": export.rows_total,
            "progress": round(export.progress, 4), "file_size": export.file_size,
            "created_at": export.created_at, "finished_at": export.finished_at, "error": export.error,
            "download_url": reverse("api-export-download", args=[export.public_id]) if done else None})


class IgnoreAcceptHeader(BaseContentNegotiation):
    """The download answers XLSX (or a JSON error) whatever the client's Accept header asks for."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0]

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


class ExportDownloadView(ExportAPIView):
    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(operation_id="export_download",
                   responses={(200, XLSX): OpenApiResponse(OpenApiTypes.BINARY, description="The XLSX file."),
                              **_errors(403, 404, 409)},
                   description="The export's XLSX file; `409 export_not_ready` until it is DONE.")
    def get(self, request: Request, export_id: str) -> Any:
        export = self.export(export_id)
        handle = services.export_open(export=export, actor=Actor.api_client(self.client))
        return FileResponse(handle, as_attachment=True, filename=export.download_filename, content_type=XLSX)
