"""``manage.py bench dashboard --rows N``: the dashboard's queries over N issue rows and N/2 usage rows (R-REP-3).

N codes are issued evenly over the last 365 days to one tenant (the worst case: every row is that tenant's), half
of them redeemed; then the dashboard for the last 30 and 365 days is timed, with each query's plan, next to the
capped count the big console lists run. Run in a scratch database (core.benchdb).
"""
from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.test.utils import override_settings

from bench.db import scratch_database
from bench.registry import register
from core.admin_lists import CappedCountPaginator
from core.audit import Actor
from core.models import Tenant, User
from coupons import services as coupon_services
from coupons.models import CouponCode, CouponIssue, CouponPolicy, CouponUsage
from dashboard.selectors import cache_key, dashboard_for, range_bounds, tenant_zone
from events.models import Event
from events.services import event_create


def _arguments(parser: Any) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000, help="issue rows (codes); usages are half of it")
    parser.add_argument("--database", default="", help="scratch database name (default: <db>_benchdash)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")


def _setup(rows: int) -> Any:
    actor = Actor.system("bench")
    tenant = Tenant.objects.create(name="Bench dashboard", slug="bench-dashboard", time_zone="Asia/Seoul")
    now = dt.datetime.now(dt.UTC)
    event = event_create(tenant=tenant, name="Bench event", starts_at=now - dt.timedelta(days=400),
                         ends_at=now + dt.timedelta(days=30), status=Event.Status.OPEN, actor=actor)
    author = User.objects.create_user(username="bench-author", tenant=tenant, is_staff=True)
    approver = User.objects.create_user(username="bench-approver", tenant=tenant, is_staff=True, is_superuser=True)
    policy = coupon_services.policy_save_draft(policy=CouponPolicy(
        tenant=tenant, name="Bench policy", kind="amount", amount=5000, validity_type="fixed",
        valid_from=now - dt.timedelta(days=400), valid_until=now + dt.timedelta(days=30)), actor_user=author)
    policy = coupon_services.policy_submit(policy=policy, actor_user=author)
    policy = coupon_services.policy_approve(policy=policy, actor_user=approver)
    inventory = coupon_services.inventory_create(tenant=tenant, event=event, policy=policy, name="Bench pool",
                                                 total_quantity=rows, issue_budget_count=rows * 2, actor=actor)
    batch = coupon_services.batch_create(inventory=inventory, batch_code="BENCH", quantity=rows, actor=actor)
    start = now - dt.timedelta(days=365)
    step = 365 * 86400 / rows
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO coupons_couponcode (tenant_id, inventory_id, batch_id, code, status, member_id, issued_at,
                                            used_at)
            SELECT %s, %s, %s, 'D' || lpad(i::text, 9, '0'), CASE WHEN i %% 2 = 0 THEN 'USED' ELSE 'ISSUED' END,
                   'm-' || i, %s::timestamptz + make_interval(secs => i * %s),
                   CASE WHEN i %% 2 = 0 THEN %s::timestamptz + make_interval(secs => i * %s + 3600) END
            FROM generate_series(0, %s - 1) AS i""", [tenant.pk, inventory.pk, batch.pk, start, step, start, step, rows])
        cursor.execute("""
            INSERT INTO coupons_couponissue (tenant_id, inventory_id, coupon_id, member_id, slot, via, channel,
                                             device_id, issued_at)
            SELECT tenant_id, inventory_id, id, member_id, 1, 'inventory', '', '', issued_at
            FROM coupons_couponcode WHERE batch_id = %s ORDER BY id""", [batch.pk])
        cursor.execute("""
            INSERT INTO coupons_couponusage (tenant_id, inventory_id, coupon_id, member_id, order_id, order_amount,
                                             discount, channel, payment_method, device_id, used_at)
            SELECT tenant_id, inventory_id, id, member_id, 'o-' || id, 20000, 5000, 'ios', 'online', '', used_at
            FROM coupons_couponcode WHERE batch_id = %s AND status = 'USED' ORDER BY id""", [batch.pk])
        cursor.execute("""
            INSERT INTO coupons_inventorycounter (tenant_id, inventory_id, shard, issued, used, used_discount)
            VALUES (%s, %s, 0, %s, %s, %s)""", [inventory.tenant_id, inventory.pk, rows, rows // 2, rows // 2 * 5000])
    with connection.cursor() as cursor:  # like autovacuum after a bulk load: statistics and the visibility map
        for table in ("coupons_couponcode", "coupons_couponissue", "coupons_couponusage", "core_auditlog"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return tenant


def _plans(tenant: Any, start: dt.date, end: dt.date) -> list[str]:
    """The top plan node of each per-day query (expected: index-only / index scans on the (tenant, time) indexes)."""


    lo, hi = range_bounds(tenant, start, end)
    zone = tenant_zone(tenant)
    out = []
    for qs, field in ((CouponIssue.objects.filter(tenant=tenant, issued_at__gte=lo, issued_at__lt=hi), "issued_at"),
                      (CouponUsage.objects.filter(tenant=tenant, used_at__gte=lo, used_at__lt=hi), "used_at")):
        plan = (qs.annotate(day=TruncDate(field, tzinfo=zone)).values("day").annotate(n=Count("*")).order_by()
                .explain())
        out.append(" | ".join(line.strip() for line in plan.splitlines() if "Scan" in line))
    return out


@register("dashboard", help="Dashboard queries (30 and 365 days) over N issue and N/2 usage rows (R-REP-3).",
          arguments=_arguments)
def bench_dashboard(options: dict[str, Any]) -> dict[str, Any]:
    rows = options["rows"]
    name = options["database"] or f"{connection.settings_dict['NAME']}_benchdash"
    with scratch_database(name, keep=options["keep"]):
        started = time.perf_counter()
        tenant = _setup(rows)
        setup_seconds = time.perf_counter() - started
        today = dt.datetime.now(tenant_zone(tenant)).date()
        result: dict[str, Any] = {"benchmark": "dashboard", "rows": {"issues": rows, "usages": rows // 2},
                                  "setup_seconds": round(setup_seconds, 1)}
        for days in (30, 365):
            start = today - dt.timedelta(days=days - 1)
            timings = []
            with override_settings(DASHBOARD_CACHE_SECONDS=0):
                for _ in range(3):  # uncached: the first run is cold-ish, the best of three has warm buffers
                    t = time.perf_counter()
                    board = dashboard_for(tenant, start, today)
                    timings.append(time.perf_counter() - t)
            cache.delete(cache_key(tenant, start, today - dt.timedelta(days=1)))
            dashboard_for(tenant, start, today)
            t = time.perf_counter()
            dashboard_for(tenant, start, today)  # a repeat visit: past days from the cache, today counted
            cached = time.perf_counter() - t
            result[f"days_{days}"] = {"seconds_first": round(timings[0], 3), "seconds_best": round(min(timings), 3),
                                      "seconds_repeat_cached": round(cached, 3),
                                      "issued": board.totals["issued"], "redeemed": board.totals["redeemed"],
                                      "plans": _plans(tenant, start, today)}
        for label, qs in (("codes", CouponCode.objects.filter(tenant=tenant)),
                          ("usages", CouponUsage.objects.filter(tenant=tenant))):
            t = time.perf_counter()
            count = CappedCountPaginator(qs.order_by("-pk"), 50).count
            result[f"list_count_{label}"] = {"seconds": round(time.perf_counter() - t, 4), "count": count}
        result["load_average"] = os.getloadavg()
    return result
