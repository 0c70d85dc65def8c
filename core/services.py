"""State changes of the core app: tenants and API clients (HackSoft style: keyword-only, one transaction)."""
from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from core.audit import Actor, audit_record
from core.exceptions import InvalidInput, InvalidState
from core.models import ApiClient, Tenant
from core.tokens import forget_client, new_token
from django.conf import settings

def tenant_create(*, name: str, actor: Actor, slug: str = "", currency: str = "KRW", rounding_unit: int = 1,
                  time_zone: str = "Asia/Seoul", language: str = "ko") -> Tenant:
    name = name.strip()
    if not name:
        raise InvalidInput(_("A tenant needs a name."))
    currency = currency.strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidInput(_("Currency %(currency)r is not an ISO 4217 code such as KRW or USD.")
                           % {"currency": currency})
    if rounding_unit < 1:
        raise InvalidInput(_("The rounding unit must be 1 or more (e.g. 10 for KRW rounding to 10 won)."))
    slug = slug or slugify(name) or "tenant"
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(name=name, slug=slug, currency=currency, rounding_unit=rounding_unit,
                                           time_zone=time_zone, language=language)
            audit_record(tenant=tenant, actor=actor, action="tenant.create", obj=tenant,
                         after={"name": name, "currency": currency, "rounding_unit": rounding_unit})
    except IntegrityError as exc:
        raise InvalidInput(_("A tenant named %(name)r (or with slug %(slug)r) already exists.")
                           % {"name": name, "slug": slug},
                           code="already_exists") from exc
    return tenant


def api_client_create(*, tenant: Tenant, name: str, scope: str, actor: Actor) -> tuple[ApiClient, str]:
    """Create an API client and return it with its token, which is never retrievable again."""
    if scope not in ApiClient.Scope.values:
        raise InvalidInput(_("Scope must be one of %(choices)s; got %(scope)r.")
                           % {"choices": ", ".join(ApiClient.Scope.values), "scope": scope})
    name = name.strip()
    if not name:
        raise InvalidInput(_("An API client needs a name."))
    token, prefix, token_hash = new_token()
    try:
        with transaction.atomic():
            client = ApiClient.objects.create(tenant=tenant, name=name, scope=scope, key_prefix=prefix,
                                              token_hash=token_hash)
            audit_record(tenant=tenant, actor=actor, action="api_client.create", obj=client,
                         after={"name": name, "scope": scope, "key_prefix": prefix})
    except IntegrityError as exc:
        raise InvalidInput(_("Tenant %(tenant)r already has an API client named %(name)r.")
                           % {"tenant": tenant.name, "name": name},
                           code="already_exists") from exc
    return client, token


def rotation_grace_seconds() -> int:
    """How long a rotated-out token keeps working (COUPON_TOKEN_ROTATION_GRACE_SECONDS, default 24 h)."""
    return int(settings.COUPON_TOKEN_ROTATION_GRACE_SECONDS)


def api_client_rotate_token(*, client: ApiClient, actor: Actor, grace_seconds: int | None = None) -> str:
    """Issue a new token for a client without downtime (R-TEN-2): the token it replaces keeps working for
    ``grace_seconds`` (default: the setting), so both are valid while integrators roll the new one out. A token
    older than the replaced one (from an earlier rotation still in its grace period) stops at once; 0 = no grace."""
    grace = rotation_grace_seconds() if grace_seconds is None else grace_seconds
    if grace < 0:
        raise InvalidInput(_("The grace period must be 0 seconds or more; got %(grace)s.") % {"grace": grace})
    token, prefix, token_hash = new_token()
    with transaction.atomic():
        locked = ApiClient.objects.select_for_update().get(pk=client.pk)
        if locked.revoked_at is not None:
            raise InvalidState(_("A revoked API client cannot get a new token."))
        now = timezone.now()
        before = {"key_prefix": locked.key_prefix, "previous_key_prefix": locked.previous_key_prefix}
        forget_client(locked.key_prefix)
        forget_client(locked.previous_key_prefix)
        if grace > 0:
            locked.previous_key_prefix, locked.previous_token_hash = locked.key_prefix, locked.token_hash
            locked.previous_valid_until = now + timedelta(seconds=grace)
        else:
            locked.previous_key_prefix, locked.previous_token_hash, locked.previous_valid_until = None, "", None
        locked.key_prefix, locked.token_hash = prefix, token_hash
        locked.save(update_fields=["key_prefix", "token_hash", "previous_key_prefix", "previous_token_hash",
                                   "previous_valid_until"])
        audit_record(tenant=locked.tenant, actor=actor, action="api_client.rotate_token", obj=locked,
                     before=before, after={"key_prefix": prefix, "previous_key_prefix": locked.previous_key_prefix,
                                           "previous_valid_until": locked.previous_valid_until.isoformat()
                                           if locked.previous_valid_until else None})
    client.refresh_from_db()
    return token


def api_client_end_rollover(*, client: ApiClient, actor: Actor) -> ApiClient:
    """Stop the previous token now, before its grace period ends (e.g. once every integration uses the new one,
    or when the old token may have leaked)."""
    with transaction.atomic():
        locked = ApiClient.objects.select_for_update().get(pk=client.pk)
        if locked.previous_key_prefix is None:
            raise InvalidState(_("This API client has no previous token in a rollover."), code="no_rollover")
        before = {"previous_key_prefix": locked.previous_key_prefix}
        forget_client(locked.previous_key_prefix)
        locked.previous_key_prefix, locked.previous_token_hash, locked.previous_valid_until = None, "", None
        locked.save(update_fields=["previous_key_prefix", "previous_token_hash", "previous_valid_until"])
        audit_record(tenant=locked.tenant, actor=actor, action="api_client.end_rollover", obj=locked,
                     before=before, after={"previous_key_prefix": None})
    client.refresh_from_db()
    return client


def parse_networks(text: str) -> list[str]:
    """One network per line (CIDR or a single address), normalised; a bad line raises InvalidInput naming it."""
    networks: list[str] = []
    for number, line in enumerate(text.replace(",", "\n").splitlines(), start=1):
        value = line.strip()
        if not value:
            continue
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise InvalidInput(_("Line %(number)d: %(value)r is not an IP address or network in CIDR notation "
                                 "(e.g. 203.0.113.0/24).") % {"number": number, "value": value},
                               code="invalid_network",
                               details={"line": number, "value": value}) from exc
        if str(network) not in networks:
            networks.append(str(network))
    return networks


def api_client_set_networks(*, client: ApiClient, networks: str, actor: Actor) -> ApiClient:
    """Set the client's IP allow-list (empty: any address). Takes effect in every process within
    COUPON_TOKEN_CACHE_SECONDS."""
    parsed = parse_networks(networks)
    with transaction.atomic():
        locked = ApiClient.objects.select_for_update().get(pk=client.pk)
        before = {"allowed_networks": locked.networks_list()}
        locked.allowed_networks = "\n".join(parsed)
        locked.save(update_fields=["allowed_networks"])
        forget_client(locked.key_prefix)
        forget_client(locked.previous_key_prefix)
        audit_record(tenant=locked.tenant, actor=actor, action="api_client.set_networks", obj=locked,
                     before=before, after={"allowed_networks": parsed})
    client.refresh_from_db()
    return client


def api_client_revoke(*, client: ApiClient, actor: Actor) -> ApiClient:
    with transaction.atomic():
        updated = ApiClient.objects.filter(pk=client.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if not updated:
            raise InvalidState(_("This API client is already revoked."), code="already_revoked")
        client.refresh_from_db()
        forget_client(client.key_prefix)
        forget_client(client.previous_key_prefix)
        assert client.revoked_at is not None  # just set by the update
        audit_record(tenant=client.tenant, actor=actor, action="api_client.revoke", obj=client,
                     after={"revoked_at": client.revoked_at.isoformat()})
    return client
