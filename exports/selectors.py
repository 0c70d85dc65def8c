"""The rows of each export kind: filters validated and resolved within the tenant, querysets in a stable order.

Design: docs/design/reports-and-exports.md#exports-selectors.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Func, Q, QuerySet, Value
from django.db.models.fields import DateTimeField
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.exceptions import InvalidInput, NotFound
from core.models import ApiClient, Tenant
from exports.columns import COLUMNS, DATETIME, PARTNER_CODES, Column
from exports.models import Export
from coupons.models import CouponBatch, CouponInventory, CouponPolicy
from draws.models import Draw
from events.models import Event
from partners.models import Distribution
from coupons.models import CouponCode, CouponUsage, CouponIssue
from draws.models import DrawWinner

# Filters each kind accepts. "codes" is one batch's codes or one partner distribution's, so one of them is required.
KIND_FILTERS: dict[str, tuple[str, ...]] = {
    "usages": ("event", "policy", "inventory", "batch", "client", "date_from", "date_to"),
    "issues": ("event", "policy", "inventory", "batch", "client", "date_from", "date_to"),
    "codes": ("batch", "distribution"),
    "winners": ("event", "draw", "date_from", "date_to"),
}
# At least one of these per kind.
REQUIRED_FILTERS: dict[str, tuple[str, ...]] = {"codes": ("batch", "distribution")}
ALL_FILTERS = ("event", "policy", "inventory", "batch", "distribution", "client", "draw", "date_from", "date_to")
FILTER_LABELS = {"event": gettext_lazy("event"), "policy": gettext_lazy("policy"),
                 "inventory": gettext_lazy("inventory"), "batch": gettext_lazy("batch"),
                 "distribution": gettext_lazy("distribution"),
                 "client": gettext_lazy("API client"), "draw": gettext_lazy("draw"), "date_from": gettext_lazy("from"),
                 "date_to": gettext_lazy("to")}
MAX_FILTER_LENGTH = 200
# Far beyond any row, and far enough from the calendar's ends that a day boundary in any time zone exists.
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(9998, 12, 31)


class ExportFilterInvalid(InvalidInput):
    code = "invalid_filter"


class ExportFilterNotFound(NotFound):
    code = "not_found"


@dataclass
class Resolved:
    """Filters resolved to the tenant's rows: a Q on the kind's model, the normalised values, and words."""

    kind: str
    q: Q = field(default_factory=Q)
    normalised: dict[str, str] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return ", ".join(self.words)[:500]


def _invalid(name: str, message: str) -> ExportFilterInvalid:
    return ExportFilterInvalid(message, details={"field": name})


def _not_found(name: str, value: str) -> ExportFilterNotFound:
    return ExportFilterNotFound(_("No %(filter)s '%(value)s' was found.") % {"filter": FILTER_LABELS[name], "value": value},
                                details={"field": name})


def _date(name: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return _in_range(name, value.date())
    if isinstance(value, dt.date):
        return _in_range(name, value)
    try:
        value = dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise _invalid(name, _("'%(name)s' must be a date as YYYY-MM-DD.") % {"name": name}) from exc
    return _in_range(name, value)


def _in_range(name: str, value: dt.date) -> dt.date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise _invalid(name, _("'%(name)s' must be between %(min)s and %(max)s.")
                       % {"name": name, "min": MIN_DATE, "max": MAX_DATE})
    return value


def tenant_zone(tenant: Tenant) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(tenant.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def resolve_filters(*, tenant: Tenant, kind: str, filters: dict[str, Any]) -> Resolved:
    """Validate ``filters`` for ``kind`` and resolve them within ``tenant`` (see the module docstring)."""
    if kind not in COLUMNS:
        raise _invalid("kind", _("Unknown kind '%(kind)s'; use one of %(kinds)s.")
                       % {"kind": kind, "kinds": ", ".join(COLUMNS)})
    allowed = KIND_FILTERS[kind]
    values: dict[str, Any] = {}
    for name, raw in (filters or {}).items():
        if raw in (None, ""):
            continue
        if name not in ALL_FILTERS:
            raise _invalid(name, _("Unknown filter '%(name)s'.") % {"name": name})
        if name not in allowed:
            raise _invalid(name, _("A %(kind)s export cannot be filtered by %(filter)s; its filters are: "
                                   "%(filters)s.") % {"kind": kind, "filter": FILTER_LABELS[name],
                                                      "filters": ", ".join(allowed)})
        if name.startswith("date_"):
            values[name] = _date(name, raw)
            continue
        if not isinstance(raw, str | int):
            raise _invalid(name, _("'%(name)s' must be a string.") % {"name": name})
        text = str(raw).strip()
        if not text or len(text) > MAX_FILTER_LENGTH:
            raise _invalid(name, _("'%(name)s' must be 1 to %(max)s characters.")
                           % {"name": name, "max": MAX_FILTER_LENGTH})
        values[name] = text
    required = REQUIRED_FILTERS.get(kind, ())
    if required and not any(name in values for name in required):
        raise _invalid(required[0], _("A %(kind)s export needs one of these filters: %(filters)s.") % {
            "kind": kind, "filters": ", ".join(str(FILTER_LABELS[name]) for name in required)})

    resolved = Resolved(kind=kind)
    time_path = {"usages": "used_at", "issues": "issued_at", "winners": "draw__finished_at"}.get(kind, "")
    event_path = {"usages": "inventory__event", "issues": "inventory__event", "winners": "draw__event"}.get(kind, "")

    def one(name: str, model: Any, lookup: str, value: str) -> Any:
        obj = model._default_manager.filter(tenant=tenant, **{lookup: value}).first()
        if obj is None:
            raise _not_found(name, value)
        return obj

    if "event" in values:
        event = one("event", Event, "public_id", values["event"].upper())
        resolved.q &= Q(**{event_path: event.pk})
        resolved.normalised["event"] = event.public_id
        resolved.words.append(_("event “%(name)s”") % {"name": event.name})
    if "policy" in values:
        policy = one("policy", CouponPolicy, "public_id", values["policy"].upper())
        resolved.q &= Q(inventory__policy=policy.pk)
        resolved.normalised["policy"] = policy.public_id
        resolved.words.append(_("policy “%(name)s”") % {"name": policy.name})
    if "inventory" in values:
        inventory = one("inventory", CouponInventory, "public_id", values["inventory"].upper())
        resolved.q &= Q(inventory=inventory.pk)
        resolved.normalised["inventory"] = inventory.public_id
        resolved.words.append(_("inventory “%(name)s”") % {"name": inventory.name})
    if "batch" in values:
        batch = one("batch", CouponBatch, "batch_code", values["batch"])
        resolved.q &= Q(batch=batch.pk) if kind == "codes" else Q(coupon__batch=batch.pk)
        resolved.normalised["batch"] = batch.batch_code
        resolved.words.append(_("batch “%(name)s”") % {"name": batch.batch_code})
    if "distribution" in values:
        handed = one("distribution", Distribution, "public_id", values["distribution"].upper())
        resolved.q &= Q(distribution_id=handed.pk)
        resolved.normalised["distribution"] = handed.public_id
        resolved.words.append(_("distribution “%(name)s”") % {"name": handed.public_id})
    if "client" in values:
        client = one("client", ApiClient, "name", values["client"])
        resolved.q &= Q(client=client.pk)
        resolved.normalised["client"] = client.name
        resolved.words.append(_("API client “%(name)s”") % {"name": client.name})
    if "draw" in values:
        draw = one("draw", Draw, "public_id", values["draw"].upper())
        resolved.q &= Q(draw=draw.pk)
        resolved.normalised["draw"] = draw.public_id
        resolved.words.append(_("draw “%(name)s”") % {"name": draw.name})
    zone = tenant_zone(tenant)
    date_from, date_to = values.get("date_from"), values.get("date_to")
    if date_from and date_to and date_from > date_to:
        raise _invalid("date_to", _("'date_to' is before 'date_from'."))
    if date_from:
        resolved.q &= Q(**{f"{time_path}__gte": dt.datetime.combine(date_from, dt.time.min, tzinfo=zone)})
        resolved.normalised["date_from"] = date_from.isoformat()
        resolved.words.append(_("from %(date)s") % {"date": date_from.isoformat()})
    if date_to:
        resolved.q &= Q(**{f"{time_path}__lt": dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min,
                                                                   tzinfo=zone)})
        resolved.normalised["date_to"] = date_to.isoformat()
        resolved.words.append(_("to %(date)s") % {"date": date_to.isoformat()})
    return resolved


def export_columns(export: Export) -> list[Column]:
    return PARTNER_CODES if export.code_export_id or "distribution" in (export.filters or {}) \
        else COLUMNS[export.kind]


def export_queryset(export: Export) -> QuerySet[Any]:
    """The export's rows, tenant-scoped and in a stable order (the filters are resolved again, within the tenant)."""
    tenant = export.tenant
    handed = export.code_export
    if handed is not None:
        return (CouponCode.objects.filter(tenant_id=tenant.pk, batch_id=handed.batch_id,
                                          status=CouponCode.Status.AVAILABLE, id__lte=handed.last_code_id or 0)
                .order_by("batch_id", "id"))
    resolved = resolve_filters(tenant=tenant, kind=export.kind, filters=export.filters)
    base = {"usages": CouponUsage.objects.order_by("id"), "issues": CouponIssue.objects.order_by("id"),
            "codes": CouponCode.objects.order_by("batch_id", "id"),
            "winners": DrawWinner.objects.order_by("draw_id", "tier__position", "rank")}[export.kind]
    return base.filter(resolved.q, tenant_id=tenant.pk)


def export_values(export: Export) -> QuerySet[Any]:
    """``export_queryset`` as tuples in column order; times converted to the tenant's zone by PostgreSQL, so the
    driver returns naive local times that go into the sheet as they are."""
    zone = tenant_zone(export.tenant).key
    fields: list[str | Func] = []
    for column in export_columns(export):
        if column.type == DATETIME:
            fields.append(Func(Value(zone), column.source, function="timezone", output_field=DateTimeField()))
        else:
            fields.append(column.source)
    return export_queryset(export).values_list(*fields)


def export_by_public_id(*, tenant: Tenant, public_id: str) -> Export | None:
    """The tenant's export; None for anything that is not one (another tenant's included)."""
    public_id = public_id.strip().upper()
    if not (public_id.isascii() and public_id.isalnum() and len(public_id) <= 16):  # no public id looks otherwise
        return None
    return Export.objects.select_related("tenant").filter(tenant=tenant, public_id=public_id).first()
