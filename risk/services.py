"""Risk configuration changes made by people (console): each one transaction with its audit row (STYLE.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.audit import Actor, audit_record
from core.exceptions import InvalidInput
from core.models import Tenant
from risk.models import Alarm, FrequencyLimit, InventoryBudget, MemberRisk, WebhookEndpoint
from risk.budgets import budget_recount
from risk.webhooks import url_check_at_save
from risk.models import WEBHOOK_EVENTS
from datetime import date
from django.utils.dateparse import parse_date, parse_datetime

MEMBER_ID_MAX = 64


def frequency_limit_errors(limit: FrequencyLimit) -> dict[str, str]:
    """Why a limit cannot be saved, by field ('' key: the whole form)."""
    errors: dict[str, str] = {}
    if bool(limit.inventory_id) == bool(limit.policy_id):
        errors[""] = gettext("Choose either an inventory or a policy (exactly one) for the limit to count.")
    other_tenant = {"inventory": gettext("This inventory belongs to another tenant."),
                    "policy": gettext("This policy belongs to another tenant.")}
    for field in ("inventory", "policy"):
        related = getattr(limit, field) if getattr(limit, f"{field}_id") else None
        if related is not None and related.tenant_id != limit.tenant_id:
            errors[field] = other_tenant[field]
    if limit.max_per_day is not None and limit.max_per_day < 1:
        errors["max_per_day"] = gettext("The daily limit must be at least 1.")
    return errors


def frequency_limit_save(*, limit: FrequencyLimit, actor: Actor) -> FrequencyLimit:
    errors = frequency_limit_errors(limit)
    if errors:
        raise InvalidInput(" ".join(errors.values()), details={"fields": errors})
    created = limit.pk is None
    try:
        with transaction.atomic():
            limit.save()
            audit_record(tenant=limit.tenant, actor=actor, action="risk.limit_create" if created else
                         "risk.limit_change", obj=limit,
                         after={"action": limit.action, "dimension": limit.dimension, "max_per_day": limit.max_per_day,
                                "active": limit.is_active, "scope": limit.scope_label})
    except IntegrityError as exc:
        raise InvalidInput(gettext("This scope already has a limit for this action and dimension; change that one."),
                           code="duplicate_limit") from exc
    return limit


def member_risk_errors(entry: MemberRisk) -> dict[str, str]:
    errors: dict[str, str] = {}
    member = (entry.member_id or "").strip()
    if not member or len(member) > MEMBER_ID_MAX:
        errors["member_id"] = gettext("A member id is 1 to %(max)d characters.") % {"max": MEMBER_ID_MAX}
    if entry.level not in MemberRisk.Level.values:
        errors["level"] = gettext("The level must be one of %(levels)s; got %(level)r.") % {
            "levels": ", ".join(MemberRisk.Level.values), "level": entry.level}
    return errors


def member_risk_save(*, entry: MemberRisk, actor: Actor) -> MemberRisk:
    entry.member_id = (entry.member_id or "").strip()
    errors = member_risk_errors(entry)
    if errors:
        raise InvalidInput(" ".join(errors.values()), details={"fields": errors})
    created = entry.pk is None
    try:
        with transaction.atomic():
            entry.save()
            audit_record(tenant=entry.tenant, actor=actor, action="risk.member_level", obj=entry,
                         after={"member_id": entry.member_id, "level": entry.level, "reason": entry.reason,
                                "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
                                "created": created})
    except IntegrityError as exc:
        raise InvalidInput(gettext("Member %(member)s already has a risk level; change that entry.") % {
            "member": entry.member_id},
                           code="duplicate_member") from exc
    return entry


def member_risk_remove(*, entry: MemberRisk, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(tenant=entry.tenant, actor=actor, action="risk.member_level_remove", obj=entry,
                     before={"member_id": entry.member_id, "level": entry.level})
        entry.delete()


def alarms_acknowledge(*, alarms: Any, user: Any) -> int:
    """Mark unacknowledged alarms as seen (compare-and-set: an alarm is acknowledged once, by one person)."""
    done = 0
    now = timezone.now()
    with transaction.atomic():
        for alarm in alarms.filter(acknowledged_at__isnull=True).select_related("tenant", "inventory"):
            if Alarm.objects.filter(pk=alarm.pk, acknowledged_at__isnull=True).update(acknowledged_at=now,
                                                                                      acknowledged_by=user):
                audit_record(tenant=alarm.tenant, actor=Actor.user(user), action="risk.alarm_acknowledge", obj=alarm)
                done += 1
    return done


def thresholds_parse(raw: Any) -> list[int]:
    """'80, 100' (or a list) → [80, 100]: whole percentages 1–100, sorted, no duplicates."""
    items = raw if isinstance(raw, (list, tuple)) else str(raw or "").replace(";", ",").split(",")
    values = set()
    for item in items:
        text = str(item).strip().rstrip("%").strip()
        if not text:
            continue
        if not text.isdigit() or not 1 <= int(text) <= 100:
            raise InvalidInput(gettext("Thresholds are whole percentages from 1 to 100; got %(value)r.") % {
                "value": str(item).strip()},
                               code="invalid_threshold")
        values.add(int(text))
    return sorted(values)


def budget_settings_save(*, spend: InventoryBudget, actor: Actor) -> InventoryBudget:
    """Save an inventory's alarm thresholds; a new row starts from the inventory's history."""
    spend.alarm_thresholds = thresholds_parse(spend.alarm_thresholds)
    if spend.inventory.tenant_id != spend.tenant_id:
        raise InvalidInput(gettext("This inventory belongs to another tenant."))
    with transaction.atomic():
        if spend.pk is None:
            existing = InventoryBudget.objects.filter(inventory_id=spend.inventory_id).first()
            if existing is not None:
                raise InvalidInput(gettext("This inventory already has its budget row; change that one."),
                                   code="duplicate_budget")
            fresh = budget_recount(inventory=spend.inventory, actor=actor)
            spend.pk = fresh.pk
            spend.issued_count, spend.issued_amount = fresh.issued_count, fresh.issued_amount
            spend.used_count, spend.used_amount = fresh.used_count, fresh.used_amount
        InventoryBudget.objects.filter(pk=spend.pk).update(alarm_thresholds=spend.alarm_thresholds)
        audit_record(tenant=spend.tenant, actor=actor, action="risk.budget_thresholds", obj=spend,
                     after={"alarm_thresholds": spend.alarm_thresholds})
    spend._state.adding = False
    return spend


def webhook_endpoint_save(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    url = (endpoint.url or "").strip()
    url_check_at_save(url)  # http(s) only; a host resolving to a non-public address is refused (SSRF)
    events = list(dict.fromkeys(endpoint.events or []))
    unknown = [event for event in events if event not in WEBHOOK_EVENTS]
    if not events or unknown:
        raise InvalidInput(gettext("Choose one or more of the events %(events)s.") % {
            "events": ", ".join(WEBHOOK_EVENTS)}, details={"fields": {"events": unknown or events}})
    if not isinstance(endpoint.notice_days, int) or not 1 <= endpoint.notice_days <= 90:
        raise InvalidInput(gettext("The notice is 1 to 90 days."), details={"fields": {"notice_days": "1–90"}})
    endpoint.url, endpoint.events = url, events
    created = endpoint.pk is None
    with transaction.atomic():
        endpoint.save()
        audit_record(tenant=endpoint.tenant, actor=actor, action="risk.webhook_create" if created else
                     "risk.webhook_change", obj=endpoint, after={"url": url, "active": endpoint.is_active,
                                                                 "events": events,
                                                                 "notice_days": endpoint.notice_days})
    return endpoint


def member_levels_import_tenant(tenant_id: int | None) -> Tenant:
    if tenant_id is None:
        raise InvalidInput(gettext("Import member risk levels as a user attached to a tenant."))
    return Tenant.objects.get(pk=tenant_id)


def parse_expiry(value: Any) -> datetime | None:
    """An import cell → an aware datetime (dates mean the end of that day is not included: 00:00 local)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime.combine(value, datetime.min.time())
    else:
        text = str(value).strip()
        parsed = parse_datetime(text)
        if parsed is None:
            day = parse_date(text)
            if day is None:
                raise ValueError(gettext("expires_at %(value)r is not a date (YYYY-MM-DD) or date-time (ISO 8601)") % {
                    "value": text})
            parsed = datetime.combine(day, datetime.min.time())
        result = parsed
    if timezone.is_naive(result):
        result = timezone.make_aware(result)
    return result
