from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from core.models import ApiClient


class IsApiClient(BasePermission):
    """Any active API client (member or operator scope)."""

    message = _("An API token is required.")

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ApiClient)


class IsOperatorClient(BasePermission):
    """Operator endpoints (API.md): a member-scope client gets 403."""

    message = _("This endpoint needs an API client with the operator scope.")

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ApiClient) and request.user.scope == ApiClient.Scope.OPERATOR
