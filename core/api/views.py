"""Base API view: tenant-scoped principal and Idempotency-Key handling for every POST."""
from __future__ import annotations

from django.utils.translation import gettext
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import limits
from core.api.idempotency import HEADER, run_idempotent
from core.api.times import localise, tenant_zone
from core.exceptions import InvalidInput
from core.models import ApiClient, Tenant

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER, {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "\\S"}, OpenApiParameter.HEADER,
    required=False,
    description="Same key + same body within 24 h → the stored response, no second effect (≤ 255 chars).",
)


API_ERROR = inline_serializer("ApiError", {"code": serializers.CharField(), "message": serializers.CharField(),
                                           "details": serializers.DictField()})


class TenantAutoSchema(AutoSchema):
    """Documents the answers every tenant API operation can give besides its own — all in the API error shape — so
    the schema matches what the code answers: 400 (bad input), 401 (no or bad token), 403 (a client IP outside the
    allow-list, or a member-scope client on an operator endpoint), 404, for POST 409/422 (Idempotency-Key in
    progress / reused with another body), and 429 for code lookups (R-RISK-4)."""

    def get_description(self) -> str:  # type: ignore[override]
        """Only what the operation says for integrators (extend_schema's description, or core.api.schema's table):
        never the view's class docstring, which is written for the people maintaining it."""
        return ""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        extra = ["400", "401", "403", "404"]
        if self.method == "POST":  # Idempotency-Key: 409 request_in_progress, 422 idempotency_key_reused
            extra += ["409", "422"]
        if getattr(self.view, "code_fields", ()) or (
                getattr(type(self.view), "lookup_count", TenantAPIView.lookup_count) is not TenantAPIView.lookup_count):
            extra.append("429")  # a code lookup (issue #17): rates and failed-guess allowance
        for status_code in extra:
            if status_code not in responses:
                responses[status_code] = self._get_response_for_code(API_ERROR, status_code, direction=direction)
        return responses


class TenantAPIView(APIView):
    """Every API view derives from this: ``self.tenant`` and ``self.client`` come from the token, never the body.

    Code lookups (R-RISK-4, issue #17): ``code_fields`` names the body/query fields or URL kwargs that carry one code;
    a view taking several codes (batch, checkout validation) overrides ``lookup_count``. A request that is a code
    lookup reserves its lookups from the client, connection, member and device budgets *before* the handler runs
    (``core.api.limits.reserve``): refused with 429 when any has nothing left, and the handler evaluates at most
    ``self.lookup_allowance`` codes. After the answer the lookups that did not fail as guesses are given back to the
    member and device budgets.
    """

    code_fields: tuple[str, ...] = ()
    schema = TenantAutoSchema()
    lookup_allowance: int | None = None

    @property
    def client(self) -> ApiClient:
        return self.request.user  # type: ignore[return-value]

    @property
    def tenant(self) -> Tenant:
        return self.client.tenant

    def dispatch(self, request, *args, **kwargs):
        # Mirrors APIView.dispatch, with the idempotency wrapper between authentication and the handler,
        # so the stored response commits in the same transaction as the handler's effect.
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        reservation: limits.Reservation | None = None
        try:
            self.initial(request, *args, **kwargs)
            handler = getattr(self, request.method.lower(), None) if request.method.lower() in self.http_method_names \
                else None
            handler = handler or self.http_method_not_allowed
            _refuse_nul(request, kwargs)
            reservation = self._reserve_lookups(request, kwargs)
            if request.method == "POST" and HEADER in request.headers:
                response = run_idempotent(request, self.client, lambda: self._call(handler, request, *args, **kwargs))
            else:
                response = self._call(handler, request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        if reservation is not None:
            limits.refund(reservation, reservation.granted - limits.failed_guesses(response))
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def lookup_count(self, request: Request, kwargs: dict) -> int | None:
        """How many codes this request asks to evaluate; None when it is not a code lookup."""
        if not self.code_fields:
            return None
        data = self._body(request)
        if any(kwargs.get(f) or data.get(f) or request.query_params.get(f) for f in self.code_fields):
            return 1
        return None

    @staticmethod
    def _body(request: Request) -> dict:
        """The JSON body as a dict ({} for other bodies: a multipart upload is never read whole here)."""
        if not (request.content_type or "").startswith("application/json"):
            return {}
        _ = request._request.body  # keep the raw body readable for the Idempotency-Key fingerprint after parsing
        return request.data if isinstance(request.data, dict) else {}

    def _reserve_lookups(self, request: Request, kwargs: dict) -> limits.Reservation | None:
        if not isinstance(request.user, ApiClient):
            return None
        wanted = self.lookup_count(request, kwargs)
        if wanted is None:
            return None
        data = self._body(request)
        members = [data.get("member_id"), request.query_params.get("member_id")]
        items = data.get("items")
        if isinstance(items, list):
            members += [item.get("member_id") for item in items[:1000] if isinstance(item, dict)]
        devices = [data.get("device_id"), request.query_params.get("device_id")]
        budgets = limits.request_budgets(
            request=request, client_id=self.client.pk, tenant_id=self.client.tenant_id,
            members=[limits.identifier_key(m) for m in members], devices=[limits.identifier_key(d) for d in devices])
        reservation = limits.reserve(budgets, wanted)
        self.lookup_allowance = reservation.granted
        return reservation

    def _call(self, handler, request: Request, *args, **kwargs) -> Response:
        try:
            response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        # Every timestamp in the tenant's offset, formatted before an Idempotency-Key replay is stored (core.api.times).
        if isinstance(getattr(response, "data", None), (dict, list)):
            localise(response.data, tenant_zone(self.tenant.time_zone))
        return response


def _has_nul(value: object, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 20:
        return False
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v, depth + 1) for v in value)
    return False


def _refuse_nul(request: Request, kwargs: dict) -> None:
    """PostgreSQL cannot store or compare text with NUL bytes: refuse them as bad input (400), never a 500."""
    query = {k: request.query_params.getlist(k) for k in request.query_params}
    data: object = {}
    if request.content_type.startswith("application/json"):
        _ = request._request.body  # read once and kept, so the Idempotency-Key fingerprint can still hash it
        data = request.data
    if _has_nul(kwargs) or _has_nul(query) or _has_nul(data):
        raise InvalidInput(gettext("Text may not contain NUL (\\x00) characters."), code="invalid")


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
