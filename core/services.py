"""State changes of the core app: tenants and API clients (HackSoft style: keyword-only, one transaction)."""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from core.api.authentication import forget_client
from core.audit import Actor, audit_record
from core.exceptions import InvalidInput, InvalidState
from core.models import ApiClient, Tenant
from core.tokens import new_token


def tenant_create(*, name: str, actor: Actor, slug: str = "", currency: str = "KRW", rounding_unit: int = 1,
                  time_zone: str = "Asia/Seoul", language: str = "ko") -> Tenant:
    name = name.strip()
    if not name:
        raise InvalidInput("A tenant needs a name.")
    currency = currency.strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidInput(f"Currency {currency!r} is not an ISO 4217 code such as KRW or USD.")
    if rounding_unit < 1:
        raise InvalidInput("The rounding unit must be 1 or more (e.g. 10 for KRW rounding to 10 won).")
    slug = slug or slugify(name) or "tenant"
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(name=name, slug=slug, currency=currency, rounding_unit=rounding_unit,
                                           time_zone=time_zone, language=language)
            audit_record(tenant=tenant, actor=actor, action="tenant.create", obj=tenant,
                         after={"name": name, "currency": currency, "rounding_unit": rounding_unit})
    except IntegrityError as exc:
        raise InvalidInput(f"A tenant named {name!r} (or with slug {slug!r}) already exists.",
                           code="already_exists") from exc
    return tenant


def api_client_create(*, tenant: Tenant, name: str, scope: str, actor: Actor) -> tuple[ApiClient, str]:
    """Create an API client and return it with its token, which is never retrievable again."""
    if scope not in ApiClient.Scope.values:
        raise InvalidInput(f"Scope must be one of {', '.join(ApiClient.Scope.values)}; got {scope!r}.")
    name = name.strip()
    if not name:
        raise InvalidInput("An API client needs a name.")
    token, prefix, token_hash = new_token()
    try:
        with transaction.atomic():
            client = ApiClient.objects.create(tenant=tenant, name=name, scope=scope, key_prefix=prefix,
                                              token_hash=token_hash)
            audit_record(tenant=tenant, actor=actor, action="api_client.create", obj=client,
                         after={"name": name, "scope": scope, "key_prefix": prefix})
    except IntegrityError as exc:
        raise InvalidInput(f"Tenant {tenant.name!r} already has an API client named {name!r}.",
                           code="already_exists") from exc
    return client, token


def api_client_rotate_token(*, client: ApiClient, actor: Actor) -> str:
    """Issue a new token for a client; the old one stops working at once."""
    token, prefix, token_hash = new_token()
    with transaction.atomic():
        locked = ApiClient.objects.select_for_update().get(pk=client.pk)
        if locked.revoked_at is not None:
            raise InvalidState("A revoked API client cannot get a new token.")
        before = {"key_prefix": locked.key_prefix}
        forget_client(locked.key_prefix)
        locked.key_prefix, locked.token_hash = prefix, token_hash
        locked.save(update_fields=["key_prefix", "token_hash"])
        audit_record(tenant=locked.tenant, actor=actor, action="api_client.rotate_token", obj=locked,
                     before=before, after={"key_prefix": prefix})
    client.refresh_from_db()
    return token


def api_client_revoke(*, client: ApiClient, actor: Actor) -> ApiClient:
    with transaction.atomic():
        updated = ApiClient.objects.filter(pk=client.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if not updated:
            raise InvalidState("This API client is already revoked.", code="already_revoked")
        client.refresh_from_db()
        forget_client(client.key_prefix)
        audit_record(tenant=client.tenant, actor=actor, action="api_client.revoke", obj=client,
                     after={"revoked_at": client.revoked_at.isoformat()})
    return client
