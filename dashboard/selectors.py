"""Dashboard figures (R-REP-3): per-day issued / redeemed / expired, redemption rate, budget consumption, alarms.

Every query is bounded by the tenant and a date range that an index leads with.
Design: docs/design/reports-and-exports.md#dashboard-selectors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.apps import apps
from django.core.cache import cache
from django.db.models import BigIntegerField, Count, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncDate
from django.utils.translation import gettext

from core.models import AuditLog, Tenant
from coupons.models import CouponInventory, CouponIssue, CouponUsage, InventoryCounter
from django.utils import timezone
from django.db import connection
from django.conf import settings
from core import redis as core_redis

MAX_DAYS = 366
BUDGET_ROWS = 200
ALARM_ROWS = 20


@dataclass(frozen=True)
class DayRow:
    day: date
    issued: int
    redeemed: int
    expired: int


@dataclass
class BudgetRow:
    inventory: CouponInventory
    issued: int
    used: int
    used_discount: int
    issued_value: int | None  # issued × the policy's fixed amount; None when the policy has no fixed amount
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Dashboard:
    tenant: Tenant
    start: date
    end: date  # inclusive
    days: list[DayRow]
    budgets: list[BudgetRow]
    alarms: list[Any] | None  # None: the risk app (with its Alarm model) is not installed

    @property
    def totals(self) -> dict[str, int]:
        return {key: sum(getattr(d, key) for d in self.days) for key in ("issued", "redeemed", "expired")}

    @property
    def redemption_rate(self) -> float | None:
        """Redeemed ÷ issued within the range (a coupon issued before the range and redeemed in it counts too)."""
        totals = self.totals
        return totals["redeemed"] / totals["issued"] if totals["issued"] else None


def tenant_zone(tenant: Tenant) -> ZoneInfo:
    try:
        return ZoneInfo(tenant.time_zone)
    except Exception:  # a bad zone name must not take the dashboard down; the server zone is the fallback

        return timezone.get_default_timezone()


def range_bounds(tenant: Tenant, start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the tenant's zone, as aware datetimes (compared in UTC by PostgreSQL)."""
    zone = tenant_zone(tenant)
    return (datetime.combine(start, time.min, tzinfo=zone),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone))


def _per_day(qs: Any, field_name: str, zone: ZoneInfo, value: Any = None) -> dict[date, int]:
    rows = (qs.annotate(day=TruncDate(field_name, tzinfo=zone)).values("day")
            .annotate(n=value if value is not None else Count("*")).order_by())
    return {row["day"]: int(row["n"] or 0) for row in rows}


def _daily_counts(tenant: Tenant, start: date, end: date) -> list[DayRow]:
    zone = tenant_zone(tenant)
    lo, hi = range_bounds(tenant, start, end)
    issued = _per_day(CouponIssue.objects.filter(tenant=tenant, issued_at__gte=lo, issued_at__lt=hi),
                      "issued_at", zone)
    redeemed = _per_day(CouponUsage.objects.filter(tenant=tenant, used_at__gte=lo, used_at__lt=hi), "used_at", zone)
    expired = _per_day(
        AuditLog.objects.filter(tenant=tenant, action="coupon.expire", created_at__gte=lo, created_at__lt=hi),
        "created_at", zone, Sum(Cast(KT("after__codes"), BigIntegerField())))
    days = []
    day = start
    while day <= end:
        days.append(DayRow(day, issued.get(day, 0), redeemed.get(day, 0), expired.get(day, 0)))
        day += timedelta(days=1)
    return days


def cache_key(tenant: Tenant, start: date, end: date) -> str:
    return (f"dashboard:v1:{connection.settings_dict['NAME']}:{tenant.pk}:{tenant.time_zone}:"
            f"{start.isoformat()}:{end.isoformat()}")


def daily_counts(tenant: Tenant, start: date, end: date, *, today: date | None = None) -> list[DayRow]:
    """One row per day of [start, end] in the tenant's zone, zeros included.

    Days before today are final (issues, redemptions and expiry sweeps are stamped with the time they happen), so
    their figures are cached for ``DASHBOARD_CACHE_SECONDS``; today's are always counted afresh. A repeat visit then
    reads only today's rows.
    """
    today = today or datetime.now(tenant_zone(tenant)).date()
    ttl = getattr(settings, "DASHBOARD_CACHE_SECONDS", 300)
    past_end = min(end, today - timedelta(days=1))
    days: list[DayRow] = []
    if start <= past_end:
        key = cache_key(tenant, start, past_end)
        cached = _cache_call(cache.get, key) if ttl > 0 else None
        if cached is None:
            cached = _daily_counts(tenant, start, past_end)
            if ttl > 0:
                _cache_call(cache.set, key, cached, ttl)
        days.extend(cached)
    if end > past_end:
        days.extend(_daily_counts(tenant, max(start, past_end + timedelta(days=1)), end))
    return days


def _pct(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100 * part / whole, 1)


def budget_rows(tenant: Tenant) -> list[BudgetRow]:
    """The tenant's most recent inventories with their counters against their budgets (two queries)."""
    inventories = list(CouponInventory.objects.filter(tenant=tenant).select_related("policy")
                       .order_by("-created_at", "-id")[:BUDGET_ROWS])
    sums = {row["inventory_id"]: row for row in InventoryCounter.objects.filter(
        inventory__in=[i.pk for i in inventories]).values("inventory_id").annotate(
        issued=Sum("issued"), used=Sum("used"), used_discount=Sum("used_discount")).order_by()}
    rows = []
    for inv in inventories:
        s = sums.get(inv.pk, {})
        issued, used, discount = int(s.get("issued") or 0), int(s.get("used") or 0), int(s.get("used_discount") or 0)
        face = inv.policy.amount if inv.policy.kind in ("amount", "threshold") else None
        row = BudgetRow(inventory=inv, issued=issued, used=used, used_discount=discount,
                        issued_value=issued * face if face is not None else None)
        for label, spent, budget, money in (
                (gettext("codes issued"), issued, inv.total_quantity, False),
                (gettext("issue budget (count)"), issued, inv.issue_budget_count, False),
                (gettext("issue budget (amount, face value)"), row.issued_value, inv.issue_budget_amount, True),
                (gettext("use budget (count)"), used, inv.use_budget_count, False),
                (gettext("use budget (amount, discounts given)"), discount, inv.use_budget_amount, True)):
            if budget is None:
                continue
            row.lines.append({"label": label, "spent": spent, "budget": budget, "money": money,
                              "percent": _pct(spent, budget)})
        rows.append(row)
    return rows


def alarm_model() -> Any:
    """The risk app's Alarm model, if that app is installed (issue #8); None otherwise."""
    if not apps.is_installed("risk"):
        return None
    try:
        return apps.get_model("risk", "Alarm")
    except LookupError:
        return None


def recent_alarms(tenant: Tenant) -> list[Any] | None:
    """The tenant's latest alarms, unacknowledged ones only when the model records acknowledgement."""
    model = alarm_model()
    if model is None:
        return None
    names = {f.name for f in model._meta.get_fields()}
    qs = model._default_manager.all()
    if "tenant" in names:
        qs = qs.filter(tenant=tenant)
    if "acknowledged_at" in names:
        qs = qs.filter(acknowledged_at__isnull=True)
    if "inventory" in names:
        qs = qs.select_related("inventory")  # its str() names the inventory
    return list(qs.order_by(*(model._meta.ordering or ["-pk"]))[:ALARM_ROWS])


def dashboard_for(tenant: Tenant, start: date, end: date) -> Dashboard:
    return Dashboard(tenant=tenant, start=start, end=end, days=daily_counts(tenant, start, end),
                     budgets=budget_rows(tenant), alarms=recent_alarms(tenant))


def _cache_call(fn: Any, *args: Any) -> Any:
    """The dashboard's cache fails open: with Redis not answering the figures are counted afresh (issue #18)."""
    try:
        return fn(*args)
    except core_redis.error_types():
        return None
