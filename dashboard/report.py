"""The campaign report of one event (issue #20, R-REP-1/R-REP-3).

Every figure is one SQL aggregate bounded by the event's inventories, never a Python loop over codes.
Design: docs/design/reports-and-exports.md#dashboard-report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db import connection

from core.models import Tenant
from coupons.models import CouponBatch, CouponInventory
from dashboard.selectors import range_bounds, tenant_zone
from events.models import Event

REGISTERED_VIA = ("code", "partner_code")
MAX_REPORT_DAYS = 366

_ISSUES = """
SELECT GROUPING(i.inventory_id) AS by_channel, i.inventory_id, i.channel,
       count(*) AS issued,
       count(*) FILTER (WHERE i.via IN ('code', 'partner_code')) AS registered
  FROM coupons_couponissue i
 WHERE i.tenant_id = %(tenant)s AND i.inventory_id = ANY(%(inventories)s)
 GROUP BY GROUPING SETS ((i.inventory_id), (i.channel))
"""

# Issued codes (they keep their member) past their validity unused. Read from the code table by the event's batches
# (``code_batch`` index: the codes of a batch were written together, so their pages are too) — not by joining every
# issue row to its code, which costs a hash of the whole code table (measured: 4× slower at 500,000 issues).
_EXPIRED = """
SELECT inventory_id, count(*)
  FROM coupons_couponcode
 WHERE tenant_id = %(tenant)s AND batch_id = ANY(%(batches)s) AND inventory_id = ANY(%(inventories)s)
   AND member_id IS NOT NULL AND (status = 'EXPIRED' OR (status = 'ISSUED' AND valid_until <= now()))
 GROUP BY inventory_id
"""

_USAGES = """
SELECT GROUPING(u.inventory_id) AS by_channel, u.inventory_id, u.channel,
       count(*) AS redemptions,
       count(*) FILTER (WHERE u.refunded_at IS NULL) AS used,
       count(*) FILTER (WHERE u.refunded_at IS NOT NULL) AS refunded,
       coalesce(sum(u.discount) FILTER (WHERE u.refunded_at IS NULL), 0) AS discount
  FROM coupons_couponusage u
 WHERE u.tenant_id = %(tenant)s AND u.inventory_id = ANY(%(inventories)s)
 GROUP BY GROUPING SETS ((u.inventory_id), (u.channel))
"""

# One row per (series, day) inside the range; the "before" rows (day NULL) carry what happened before the range, so
# the cumulative rate of the first day is right.
_DAYS = """
SELECT 'issued', (issued_at AT TIME ZONE %(zone)s)::date, count(*)
  FROM coupons_couponissue
 WHERE tenant_id = %(tenant)s AND inventory_id = ANY(%(inventories)s) AND issued_at >= %(lo)s AND issued_at < %(hi)s
 GROUP BY 2
UNION ALL
SELECT 'redeemed', (used_at AT TIME ZONE %(zone)s)::date, count(*)
  FROM coupons_couponusage
 WHERE tenant_id = %(tenant)s AND inventory_id = ANY(%(inventories)s) AND used_at >= %(lo)s AND used_at < %(hi)s
 GROUP BY 2
UNION ALL
SELECT 'refunded', (refunded_at AT TIME ZONE %(zone)s)::date, count(*)
  FROM coupons_couponusage
 WHERE tenant_id = %(tenant)s AND inventory_id = ANY(%(inventories)s)
   AND refunded_at >= %(lo)s AND refunded_at < %(hi)s
 GROUP BY 2
UNION ALL
SELECT 'issued', NULL, count(*) FROM coupons_couponissue
 WHERE tenant_id = %(tenant)s AND inventory_id = ANY(%(inventories)s) AND issued_at < %(lo)s
UNION ALL
SELECT 'redeemed', NULL, count(*) FROM coupons_couponusage
 WHERE tenant_id = %(tenant)s AND inventory_id = ANY(%(inventories)s) AND used_at < %(lo)s
UNION ALL
SELECT 'refunded', NULL, count(*) FROM coupons_couponusage
 WHERE tenant_id = %(tenant)s AND inventory_id = ANY(%(inventories)s) AND refunded_at < %(lo)s
"""

# Codes a partner got: reserved for it by a distribution (flow 1) or mapped to its uploaded codes (flow 2). A code is
# in at most one of the two (both take AVAILABLE codes only).
_PARTNERS = """
WITH handed AS (
    SELECT d.partner_id, c.id AS coupon_id, c.member_id
      FROM partners_distribution d
      JOIN coupons_couponcode c ON c.distribution_id = d.id
     WHERE d.tenant_id = %(tenant)s AND d.inventory_id = ANY(%(inventories)s) AND c.tenant_id = %(tenant)s
    UNION ALL
    SELECT m.partner_id, c.id, c.member_id
      FROM partners_couponmapping m
      JOIN partners_partnerupload up ON up.id = m.upload_id
      JOIN coupons_couponcode c ON c.id = m.coupon_id
     WHERE m.tenant_id = %(tenant)s AND up.inventory_id = ANY(%(inventories)s)
)
SELECT p.id, p.name, p.code,
       count(*) AS handed_over,
       count(*) FILTER (WHERE h.member_id IS NOT NULL) AS registered,
       count(u.id) AS used,
       coalesce(sum(u.discount), 0) AS discount
  FROM handed h
  JOIN partners_partner p ON p.id = h.partner_id
  LEFT JOIN coupons_couponusage u ON u.coupon_id = h.coupon_id AND u.refunded_at IS NULL
 GROUP BY p.id, p.name, p.code
 ORDER BY p.name, p.id
"""


def rate(part: int, whole: int) -> float | None:
    """A share as a fraction 0–1 (None when there is nothing to divide by)."""
    return part / whole if whole else None


@dataclass
class Figures:
    issued: int = 0
    registered: int = 0
    expired: int = 0
    redemptions: int = 0
    used: int = 0
    refunded: int = 0
    discount: int = 0

    @property
    def redemption_rate(self) -> float | None:
        return rate(self.used, self.issued)

    def add(self, other: Figures) -> None:
        for name in ("issued", "registered", "expired", "redemptions", "used", "refunded", "discount"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class PoolRow:
    inventory: CouponInventory
    figures: Figures

    @property
    def budget(self) -> int | None:
        return self.inventory.use_budget_amount

    @property
    def budget_used(self) -> float | None:
        return rate(self.figures.discount, self.budget) if self.budget else None


@dataclass
class ChannelRow:
    channel: str  # "" when the client sent none
    figures: Figures


@dataclass
class PartnerRow:
    partner_id: int
    name: str
    code: str
    handed_over: int
    registered: int
    used: int
    discount: int

    @property
    def redemption_rate(self) -> float | None:
        return rate(self.used, self.registered)


@dataclass
class DayRow:
    day: date
    issued: int
    redeemed: int
    refunded: int
    cumulative_issued: int
    cumulative_used: int

    @property
    def cumulative_rate(self) -> float | None:
        return rate(self.cumulative_used, self.cumulative_issued)


@dataclass
class CampaignReport:
    tenant: Tenant
    event: Event
    start: date
    end: date  # inclusive
    totals: Figures
    pools: list[PoolRow]
    channels: list[ChannelRow]
    partners: list[PartnerRow]
    days: list[DayRow] = field(default_factory=list)

    @property
    def budget(self) -> int | None:
        """The sum of the use budgets (amount) of the pools that have one; None when none has."""
        budgets = [p.budget for p in self.pools if p.budget is not None]
        return sum(budgets) if budgets else None

    @property
    def budget_spent(self) -> int:
        """The discount given by the pools that have a use budget (what counts against it)."""
        return sum(p.figures.discount for p in self.pools if p.budget is not None)

    @property
    def budget_used(self) -> float | None:
        return rate(self.budget_spent, self.budget) if self.budget else None


def default_range(event: Event, tenant: Tenant, today: date) -> tuple[date, date]:
    """From the event's first day to today (or the event's first day, for an event still to come), at most
    ``MAX_REPORT_DAYS`` days: the most recent ones."""
    zone = tenant_zone(tenant)
    start = event.starts_at.astimezone(zone).date()
    end = max(today, start)
    if (end - start).days + 1 > MAX_REPORT_DAYS:
        start = end - timedelta(days=MAX_REPORT_DAYS - 1)
    return start, end


def _rows(sql: str, params: dict[str, Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def campaign_report(*, event: Event, start: date, end: date) -> CampaignReport:
    """The report of ``event`` (its tenant's rows only); per-day series for [start, end] in the tenant's zone."""
    tenant = event.tenant
    inventories = list(CouponInventory.objects.filter(tenant=tenant, event=event).select_related("policy")
                       .order_by("created_at", "id"))
    params: dict[str, Any] = {"tenant": tenant.pk, "inventories": [i.pk for i in inventories]}
    by_pool: dict[int, Figures] = {i.pk: Figures() for i in inventories}
    by_channel: dict[str, Figures] = {}
    for by_ch, inventory_id, channel, issued, registered in _rows(_ISSUES, params):
        target = by_channel.setdefault(channel or "", Figures()) if by_ch else by_pool[inventory_id]
        target.issued, target.registered = issued, registered
    batches = list(CouponBatch.objects.filter(tenant=tenant, inventory__in=inventories).values_list("id", flat=True))
    for inventory_id, expired in _rows(_EXPIRED, {**params, "batches": batches}):
        by_pool[inventory_id].expired = expired
    for by_ch, inventory_id, channel, redemptions, used, refunded, discount in _rows(_USAGES, params):
        target = by_channel.setdefault(channel or "", Figures()) if by_ch else by_pool[inventory_id]
        target.redemptions, target.used, target.refunded, target.discount = redemptions, used, refunded, int(discount)
    totals = Figures()
    for figures in by_pool.values():
        totals.add(figures)
    pools = [PoolRow(inventory=i, figures=by_pool[i.pk]) for i in inventories]
    channels = [ChannelRow(channel=name, figures=fig) for name, fig in
                sorted(by_channel.items(), key=lambda item: (-item[1].issued - item[1].redemptions, item[0]))]
    partners = [PartnerRow(partner_id=pid, name=name, code=code, handed_over=handed, registered=registered,
                           used=used, discount=int(discount))
                for pid, name, code, handed, registered, used, discount in _rows(_PARTNERS, params)]
    return CampaignReport(tenant=tenant, event=event, start=start, end=end, totals=totals, pools=pools,
                          channels=channels, partners=partners, days=_days(tenant, params, start, end))


def _days(tenant: Tenant, params: dict[str, Any], start: date, end: date) -> list[DayRow]:
    lo, hi = range_bounds(tenant, start, end)
    series: dict[str, dict[date | None, int]] = {"issued": {}, "redeemed": {}, "refunded": {}}
    for name, day, n in _rows(_DAYS, {**params, "zone": str(tenant_zone(tenant)), "lo": lo, "hi": hi}):
        series[name][day] = int(n)
    cumulative_issued = series["issued"].get(None, 0)
    cumulative_used = series["redeemed"].get(None, 0) - series["refunded"].get(None, 0)
    days: list[DayRow] = []
    day = start
    while day <= end:  # at most MAX_REPORT_DAYS iterations: days, not codes
        issued, redeemed, refunded = (series[k].get(day, 0) for k in ("issued", "redeemed", "refunded"))
        cumulative_issued += issued
        cumulative_used += redeemed - refunded
        days.append(DayRow(day=day, issued=issued, redeemed=redeemed, refunded=refunded,
                           cumulative_issued=cumulative_issued, cumulative_used=cumulative_used))
        day += timedelta(days=1)
    return days
