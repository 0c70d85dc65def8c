"""``Authorization: Bearer <token>`` → (ApiClient, token). The client fixes the tenant for the whole request."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core.models import ApiClient
from core.tokens import split_token, token_matches

# last_used_at is written at most this often per client, so busy clients do not turn it into a hot row.
LAST_USED_RESOLUTION = timedelta(seconds=60)

# Verified clients are kept per process for a few seconds (a query per request otherwise). Revoking or rotating
# drops the entry in the process that did it; other processes notice within COUPON_TOKEN_CACHE_SECONDS.
_verified: dict[str, tuple[ApiClient, str, float]] = {}


def forget_client(key_prefix: str) -> None:
    _verified.pop(key_prefix, None)


def _lookup(prefix: str, token: str) -> ApiClient | None:
    import time

    from django.conf import settings

    cached = _verified.get(prefix)
    now = time.monotonic()
    if cached is not None and cached[2] > now and token_matches(token, cached[1]):
        return cached[0]
    client = ApiClient.objects.select_related("tenant").filter(key_prefix=prefix).first()
    if client is not None and token_matches(token, client.token_hash):
        ttl = getattr(settings, "COUPON_TOKEN_CACHE_SECONDS", 5)
        if ttl > 0:
            _verified[prefix] = (client, client.token_hash, now + ttl)
        return client
    return None


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):  # type: ignore[override]
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not token.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api token>'.")
        token = token.strip()
        prefix = split_token(token)
        client = _lookup(prefix, token) if prefix is not None else None
        if client is None:
            raise exceptions.AuthenticationFailed("The API token is not valid.")
        if client.revoked_at is not None:
            raise exceptions.AuthenticationFailed("The API token has been revoked.")
        if not client.tenant.is_active:
            raise exceptions.AuthenticationFailed("The tenant of this API token is not active.")
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
            client.last_used_at = now
        return client, token

    def authenticate_header(self, request) -> str:  # makes DRF answer 401 (not 403) without credentials
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):  # type: ignore[override]
        return {"type": "http", "scheme": "bearer", "description": "Tenant API token (`cpn_…`), shown once at creation."}
