"""Signed webhooks from an outbox (R-RISK-3 "optional webhook"), with an SSRF guard on every delivery.

Design: docs/design/webhooks.md#risk-webhooks.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from core import jobs
from risk.exceptions import UnsafeWebhookUrl
from risk.models import WEBHOOK_EVENTS, Alarm, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from django.utils import translation
from core.api.times import api_datetime, tenant_zone
from core.money import format_number
from core.models import Tenant
from core.audit import audit_record

logger = logging.getLogger("coupons.risk")

# A receiver may be down for a weekend: 7 growing pauses (about 1 h in all), then hourly, for about three days
# before a delivery is given up (and the operator can still send it again from the console).
MAX_ATTEMPTS = 80
TIMEOUT_SECONDS = 10
EVENT_ALARM = "budget.alarm"


# The most specific name first: 169.254/16, 0/8 and 240/4 are also "private" to the ipaddress module.
_BLOCKED = (("is_loopback", "loopback"), ("is_link_local", "link-local"), ("is_multicast", "multicast"),
            ("is_unspecified", "unspecified"), ("is_reserved", "reserved"), ("is_private", "private"))
# How each kind reads in a message (the ``kind`` in the error's details stays the English word above).
_KIND_LABELS = {"loopback": gettext_lazy("loopback"), "link-local": gettext_lazy("link-local"),
                "multicast": gettext_lazy("multicast"), "unspecified": gettext_lazy("unspecified"),
                "reserved": gettext_lazy("reserved"), "private": gettext_lazy("private"),
                "non-public": gettext_lazy("non-public")}


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a webhook may not go to this address (None: a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for attribute, label in _BLOCKED:
        if getattr(address, attribute):
            return label
    return None if address.is_global else "non-public"


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: ``url`` (with the checked address when pinned), and the name for Host and SNI."""

    url: str
    host_header: str | None = None
    sni_hostname: str | None = None


def _split(url: str) -> tuple[Any, str, int]:
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https"):
        raise UnsafeWebhookUrl(gettext("The webhook URL must start with http:// or https://."), code="invalid_url")
    try:
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeWebhookUrl(gettext("The webhook URL's port is not valid: %(error)s.") % {"error": exc},
                               code="invalid_url") from exc
    if not host:
        raise UnsafeWebhookUrl(gettext("The webhook URL has no host."), code="invalid_url")
    return parts, host, port


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The host's addresses (an IP literal is itself). Raises OSError when the name does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise OSError(f"cannot resolve {host!r}: {exc}") from exc
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def _refuse_addresses(host: str, addresses: list[Any]) -> None:
    for address in addresses:
        problem = address_problem(address)
        if problem:
            message = gettext("The webhook host %(host)s resolves to a %(kind)s address; webhooks are sent to "
                              "public addresses only.") % {"host": host, "kind": _KIND_LABELS.get(problem, problem)}
            raise UnsafeWebhookUrl(message, details={"host": host, "kind": problem})


def url_check_at_save(url: str) -> None:
    """Raise ``UnsafeWebhookUrl`` for a non-http(s) URL or a host resolving to a non-public address. A name that
    does not resolve now is accepted: every delivery resolves and checks it again."""
    parts, host, port = _split(url)
    if settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        return
    try:
        addresses = _resolve(host, port)
    except OSError:
        return
    _refuse_addresses(host, addresses)


def delivery_target(url: str) -> Target:
    """Resolve and check the endpoint's host now and pin the attempt to the checked address. Raises
    ``UnsafeWebhookUrl`` (refused: do not connect) or OSError (the name does not resolve: retry later)."""
    parts, host, port = _split(url)
    if settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        return Target(url=url)
    addresses = _resolve(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    _refuse_addresses(host, addresses)
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    default_port = 443 if parts.scheme == "https" else 80
    host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default_port else f":{port}")
    return Target(url=pinned, host_header=host_header, sni_hostname=host if parts.scheme == "https" else None)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def alarm_payload(alarm: Alarm) -> dict[str, Any]:
    """Machine fields, plus ``message``: one sentence for people (a chat channel, an e-mail relay) in the tenant's
    language (issue #11). Receivers parse the fields; the message may change with the language and its wording."""
    inventory = alarm.inventory
    tenant = inventory.tenant
    with translation.override(tenant.language or settings.LANGUAGE_CODE):
        message = gettext("Budget alarm: the %(budget)s of %(inventory)s has reached %(threshold)s %% "
                          "(%(spent)s of %(limit)s).") % {
            "budget": Alarm.Budget(alarm.budget).label, "inventory": inventory.name, "threshold": alarm.threshold,
            "spent": format_number(alarm.spent), "limit": format_number(alarm.limit)}
    return {"event": EVENT_ALARM, "tenant": tenant.slug, "inventory": inventory.public_id,
            "inventory_name": inventory.name, "budget": alarm.budget, "threshold": alarm.threshold,
            "spent": alarm.spent, "limit": alarm.limit, "raised_at": api_datetime(alarm.raised_at, tenant_zone(tenant.time_zone)),
            "alarm_id": alarm.pk, "message": message}


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def _send_on_commit(ids: list[int]) -> None:
    if not ids:
        return

    def send() -> None:

        for delivery_id in ids:
            jobs.enqueue("default", "risk.jobs.deliver_webhook_job", delivery_id)

    transaction.on_commit(send, robust=True)


def outbox_add_alarm(alarm: Alarm) -> list[WebhookDelivery]:
    """Inside the alarm's transaction: one delivery per active endpoint taking ``budget.alarm``, sent once that
    transaction commits."""
    endpoints = list(WebhookEndpoint.objects.filter(tenant_id=alarm.tenant_id, is_active=True,
                                                    events__contains=[EVENT_ALARM]))
    if not endpoints:
        return []
    body = json.dumps(alarm_payload(alarm), separators=(",", ":"), sort_keys=True)
    now = timezone.now()
    event_id = new_event_id()
    deliveries = WebhookDelivery.objects.bulk_create([
        WebhookDelivery(tenant_id=alarm.tenant_id, endpoint=endpoint, alarm=alarm, event=EVENT_ALARM, body=body,
                        event_id=event_id, next_attempt_at=now) for endpoint in endpoints])
    _send_on_commit([d.pk for d in deliveries])
    return deliveries


def event_time(value: datetime | None, time_zone: str) -> str | None:
    """A timestamp of a webhook body: like every API time, to the second with the tenant's UTC offset."""
    return api_datetime(value, tenant_zone(time_zone)) if value is not None else None


def endpoints_taking_sql(*, tenant: str, event: str) -> str:
    """A scalar SQL subquery: the ids of the tenant's active endpoints taking ``event`` (an array, empty when none).
    The claim and redeem statements return it beside their writes, so a tenant without endpoints pays no query and
    the list is read in the transaction of the change (#21). ``tenant`` is an SQL expression; ``event`` must be one
    of WEBHOOK_EVENTS (it is inlined)."""
    if event not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    return (f"(SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM risk_webhookendpoint WHERE tenant_id = {tenant}"
            f" AND is_active AND events @> ARRAY['{event}']::varchar[])")


def outbox_add(*, tenant_id: int, event: str, data: dict[str, Any], occurred_at: datetime | None = None,
               key: str = "", endpoints: list[WebhookEndpoint] | None = None) -> list[int]:
    """Inside the transaction of the change it reports: one delivery of ``event`` per active endpoint of the tenant
    that takes it (or of the given ``endpoints``), sent once that transaction commits; nothing when none does.

    The body (docs/WEBHOOKS.md) is ``{"id", "event", "tenant", "occurred_at", "data"}``; ``id`` is the same for every
    endpoint and every attempt. With ``key``, an endpoint gets the event at most once for ever (UNIQUE(endpoint,
    event_key)): a scan that runs twice, or two at once, sends nothing twice. Returns the new deliveries' ids."""
    if event not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    if endpoints is None:
        endpoints = list(WebhookEndpoint.objects.filter(tenant_id=tenant_id, is_active=True,
                                                        events__contains=[event]))
    if not endpoints:
        return []

    tenant = Tenant.objects.only("slug", "time_zone").get(pk=tenant_id)
    now = timezone.now()
    event_id = new_event_id()
    body = json.dumps({"id": event_id, "event": event, "tenant": tenant.slug,
                       "occurred_at": event_time(occurred_at or now, tenant.time_zone), "data": data},
                      separators=(",", ":"), sort_keys=True)
    rows = [WebhookDelivery(tenant_id=tenant_id, endpoint=endpoint, event=event, event_id=event_id, event_key=key,
                            body=body, next_attempt_at=now) for endpoint in endpoints]
    if key:
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        ids = list(WebhookDelivery.objects.filter(event_id=event_id).values_list("pk", flat=True))
    else:
        ids = [d.pk for d in WebhookDelivery.objects.bulk_create(rows)]
    _send_on_commit(ids)
    return ids


def webhook_deliver(*, delivery_id: int) -> str:
    """One attempt at a pending delivery. Returns its status afterwards (PENDING when it should be retried)."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(skip_locked=True).select_related("endpoint")
                    .filter(pk=delivery_id).first())
        if delivery is None:
            return "LOCKED"  # another worker is sending it right now
        if delivery.status != WebhookDelivery.Status.PENDING:
            return delivery.status
        endpoint = delivery.endpoint
        now = timezone.now()
        if not endpoint.is_active:
            delivery.status, delivery.last_error = WebhookDelivery.Status.FAILED, "endpoint deactivated"
            delivery.save(update_fields=["status", "last_error"])
            return delivery.status
        body = delivery.body.encode()
        headers = {"Content-Type": "application/json", "User-Agent": "coupon-platform-webhooks/1",
                   "X-Coupon-Signature": sign(endpoint.secret, body), "X-Coupon-Timestamp": str(int(time.time())),
                   "X-Coupon-Event": delivery.event, "X-Coupon-Delivery": str(delivery.pk)}
        if delivery.event_id:
            headers["X-Coupon-Event-Id"] = delivery.event_id
        started = time.monotonic()
        status_code, error, refused = None, "", False
        try:
            target = delivery_target(endpoint.url)  # SSRF guard: resolve, check, pin — before any connection
            if target.host_header:
                headers["Host"] = target.host_header
            extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
            with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
                response = client.send(client.build_request("POST", target.url, content=body, headers=headers,
                                                            extensions=extensions))
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except UnsafeWebhookUrl as exc:
            error, refused = f"refused: {exc.message}"[:500], True
        except OSError as exc:  # the name does not resolve (now): retried like a connection error
            error = f"DNS: {exc}"[:500]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        duration_ms = int((time.monotonic() - started) * 1000)
        WebhookAttempt.objects.create(tenant_id=delivery.tenant_id, delivery=delivery, attempted_at=now,
                                      status_code=status_code, error=error,
                                      duration_ms=duration_ms)
        delivery.attempts += 1
        if not error:
            delivery.status, delivery.delivered_at, delivery.last_error = WebhookDelivery.Status.DELIVERED, now, ""
        else:
            delivery.last_error = error
            delivery.next_attempt_at = now + backoff(delivery.attempts)
            if refused or delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = WebhookDelivery.Status.FAILED  # a refused address is not retried
            logger.warning("webhook delivery %s to %s failed (attempt %s): %s", delivery.pk, endpoint.url,
                           delivery.attempts, error)
        delivery.save(update_fields=["status", "delivered_at", "last_error", "next_attempt_at", "attempts"])
        return delivery.status


def webhook_delivery_retry(*, delivery_id: int, actor: Any) -> bool:
    """A FAILED delivery (given up after ``MAX_ATTEMPTS``, or its endpoint was off) → PENDING with a fresh count of
    attempts, sent at once on commit: the operator's "retry until it arrives" (issue #16). Its attempt log stays;
    the event id is the same, so a receiver that did get it ignores it. False if it was not FAILED."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update().select_related("tenant")
                    .filter(pk=delivery_id, status=WebhookDelivery.Status.FAILED).first())
        if delivery is None:
            return False
        before = {"status": delivery.status, "attempts": delivery.attempts}
        delivery.status, delivery.attempts, delivery.next_attempt_at = (WebhookDelivery.Status.PENDING, 0,
                                                                        timezone.now())
        delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
        audit_record(tenant=delivery.tenant, actor=actor, action="risk.webhook_retry", obj=delivery, before=before,
                     after={"status": delivery.status})
        _send_on_commit([delivery.pk])
    return True


def deliver_due(*, limit: int = 500, dry_run: bool = False) -> dict[str, int]:
    """Cron: one attempt for every pending delivery whose ``next_attempt_at`` has passed. Safe to run twice and in
    parallel (a row being sent is skipped)."""
    due = list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING,
                                              next_attempt_at__lte=timezone.now())
               .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    outcome = {"due": len(due), "delivered": 0, "pending": 0, "failed": 0, "skipped": 0}
    if dry_run:
        return outcome
    for delivery_id in due:
        status = webhook_deliver(delivery_id=delivery_id)
        key = {"DELIVERED": "delivered", "PENDING": "pending", "FAILED": "failed"}.get(status, "skipped")
        outcome[key] += 1
    return outcome
