"""Base API view: tenant-scoped principal and Idempotency-Key handling for every POST."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.idempotency import HEADER, run_idempotent
from core.models import ApiClient, Tenant

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Same key + same body within 24 h → the stored response, no second effect (≤ 255 chars).",
)


class TenantAPIView(APIView):
    """Every API view derives from this: ``self.tenant`` and ``self.client`` come from the token, never the body."""

    @property
    def client(self) -> ApiClient:
        return self.request.user  # type: ignore[return-value]

    @property
    def tenant(self) -> Tenant:
        return self.client.tenant

    def dispatch(self, request, *args, **kwargs):  # type: ignore[override]
        # Mirrors APIView.dispatch, with the idempotency wrapper between authentication and the handler,
        # so the stored response commits in the same transaction as the handler's effect.
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            handler = getattr(self, request.method.lower(), None) if request.method.lower() in self.http_method_names \
                else None
            handler = handler or self.http_method_not_allowed
            if request.method == "POST" and HEADER in request.headers:
                response = run_idempotent(request, self.client, lambda: self._call(handler, request, *args, **kwargs))
            else:
                response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def _call(self, handler, request: Request, *args, **kwargs) -> Response:
        try:
            return handler(request, *args, **kwargs)
        except Exception as exc:
            return self.handle_exception(exc)


class ClientInfoView(TenantAPIView):
    """Who am I: lets an integrator check a token without side effects."""

    @extend_schema(
        operation_id="client_info",
        responses=inline_serializer("ClientInfo", {
            "tenant": serializers.CharField(), "client": serializers.CharField(),
            "scope": serializers.ChoiceField(choices=ApiClient.Scope.choices),
            "currency": serializers.CharField(), "rounding_unit": serializers.IntegerField(),
        }),
    )
    def get(self, request: Request) -> Response:
        return Response({
            "tenant": self.tenant.slug, "client": self.client.name, "scope": self.client.scope,
            "currency": self.tenant.currency, "rounding_unit": self.tenant.rounding_unit,
        })
