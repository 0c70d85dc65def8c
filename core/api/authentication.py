"""``Authorization: Bearer <token>`` → (ApiClient, token). The client fixes the tenant for the whole request."""
from __future__ import annotations

import ipaddress
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core.addresses import connection_ip
from core.models import ApiClient
from core.tokens import hash_token, split_token, token_matches, verified_clients as _verified

# last_used_at is written at most this often per client, so busy clients do not turn it into a hot row.
LAST_USED_RESOLUTION = timedelta(seconds=60)

def _match(client: ApiClient, prefix: str, token: str, now: datetime) -> float | None:
    """Seconds this token stays valid for this client (inf for the current token), or None if it does not match."""
    if client.key_prefix == prefix and token_matches(token, client.token_hash):
        return float("inf")
    if (client.previous_key_prefix == prefix and client.previous_valid_until is not None
            and client.previous_token_hash and token_matches(token, client.previous_token_hash)):
        left = (client.previous_valid_until - now).total_seconds()
        return left if left > 0 else None
    return None


def _lookup(prefix: str, token: str) -> ApiClient | None:
    cached = _verified.get(prefix)
    mono = time.monotonic()
    if cached is not None and cached[2] > mono and token_matches(token, cached[1]):
        return cached[0]
    now = timezone.now()
    for client in ApiClient.objects.select_related("tenant").filter(Q(key_prefix=prefix) |
                                                                    Q(previous_key_prefix=prefix)):
        left = _match(client, prefix, token, now)
        if left is None:
            continue
        ttl = min(getattr(settings, "COUPON_TOKEN_CACHE_SECONDS", 5), left)
        if ttl > 0:
            _verified[prefix] = (client, hash_token(token), mono + ttl)
        return client
    return None


def _address_allowed(client: ApiClient, request) -> bool:
    networks = client.networks()
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(connection_ip(request))
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in networks)


class AddressNotAllowed(exceptions.PermissionDenied):
    default_detail = gettext_lazy("This API client is not allowed to connect from this IP address.")
    default_code = "ip_not_allowed"
    api_code = "ip_not_allowed"


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not token.strip():
            raise exceptions.AuthenticationFailed(gettext("Use 'Authorization: Bearer <api token>'."))
        token = token.strip()
        prefix = split_token(token)
        client = _lookup(prefix, token) if prefix is not None else None
        if client is None:
            raise exceptions.AuthenticationFailed(gettext("The API token is not valid."))
        if client.revoked_at is not None:
            raise exceptions.AuthenticationFailed(gettext("The API token has been revoked."))
        if not client.tenant.is_active:
            raise exceptions.AuthenticationFailed(gettext("The tenant of this API token is not active."))
        if not _address_allowed(client, request):
            raise AddressNotAllowed()
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
            ApiClient.objects.filter(tenant_id=client.tenant_id, pk=client.pk).update(last_used_at=now)
            client.last_used_at = now
        return client, token

    def authenticate_header(self, request) -> str:  # makes DRF answer 401 (not 403) without credentials
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Tenant API token (`cpn_…`), shown once at creation."}
