"""R-REP-3: the console dashboard — exact per-day figures in the tenant's time zone, budgets, tenant isolation."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from core.models import AuditLog
from coupons.models import CouponCode, CouponIssue, CouponUsage, InventoryCounter
from tests import factories

SEOUL = ZoneInfo("Asia/Seoul")


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SEOUL)


def seed(tenant, *, issues: list[datetime], uses: list[datetime], expiries: list[tuple[datetime, int]]):
    """A known dataset: issue rows, usage rows and expiry-sweep audit rows at the given instants."""
    inventory, codes = factories.make_pool(tenant, size=len(issues))
    for i, (code, when) in enumerate(zip(codes, issues, strict=True)):
        CouponCode.objects.filter(pk=code.pk).update(status="ISSUED", member_id=f"m-{i}", issued_at=when)
        CouponIssue.objects.create(tenant=tenant, inventory=inventory, coupon=code, member_id=f"m-{i}", slot=1,
                                   via="inventory", issued_at=when)
    for i, when in enumerate(uses):
        CouponUsage.objects.create(tenant=tenant, inventory=inventory, coupon=codes[i], member_id=f"m-{i}",
                                   order_id=f"o-{i}", order_amount=10_000, discount=1000, used_at=when)
    for when, n in expiries:
        row = AuditLog.objects.create(tenant=tenant, actor_type="job", actor_id="coupon.expire",
                                      actor_label="coupon.expire", action="coupon.expire",
                                      object_type="core.Tenant", object_id=str(tenant.pk), after={"codes": n})
        _set_created_at(row.pk, when)
    return inventory


def _set_created_at(pk: int, when: datetime) -> None:
    # The audit trigger refuses UPDATE; a test may set the time of its own fixture row with the trigger bypassed.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE core_auditlog SET created_at = %s WHERE id = %s", [when, pk])
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@pytest.fixture
def seeded(tenant):
    tenant.time_zone = "Asia/Seoul"
    tenant.save()
    return seed(tenant,
                issues=[at(2026, 3, 1, 9), at(2026, 3, 1, 23, 30),   # 1 March in Seoul (the second is 14:30 UTC)
                        at(2026, 3, 2, 0, 10),                        # 2 March in Seoul, still 1 March in UTC
                        at(2026, 3, 3, 12), at(2026, 2, 28, 23, 59)],  # 3 March; 28 February is outside the range
                uses=[at(2026, 3, 2, 8), at(2026, 3, 2, 9), at(2026, 3, 4, 0, 1)],  # 4 March is outside
                expiries=[(at(2026, 3, 3, 2), 40), (at(2026, 3, 3, 2, 5), 2), (at(2026, 3, 1, 1), 7)])


def test_dashboard_counts_issued_redeemed_expired_per_day_in_the_tenants_time_zone(client, tenant, seeded):
    """R-REP-3: exact per-day numbers for a small known dataset; days are the tenant's calendar days."""
    client.force_login(factories.make_viewer(tenant))
    response = client.get("/admin/dashboard/", {"start": "2026-03-01", "end": "2026-03-03"})
    assert response.status_code == 200
    board = response.context["board"]
    assert [(d.day, d.issued, d.redeemed, d.expired) for d in board.days] == [
        (date(2026, 3, 1), 2, 0, 7),
        (date(2026, 3, 2), 1, 2, 0),
        (date(2026, 3, 3), 1, 0, 42),
    ]
    assert response.context["totals"] == {"issued": 4, "redeemed": 2, "expired": 49}
    assert response.context["rate"] == 50.0
    html = response.content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg" role="img"' in html and "<title id=\"daily-title\">" in html
    assert '<tr data-day="2026-03-03"><th scope="row">2026-03-03</th><td class="num">1</td>' in html


def test_dashboard_defaults_to_the_last_30_days_and_explains_a_bad_range(client, tenant, seeded):
    client.force_login(factories.make_viewer(tenant))
    board = client.get("/admin/dashboard/").context["board"]
    assert len(board.days) == 30 and (board.end - board.start).days == 29
    response = client.get("/admin/dashboard/", {"start": "2026-03-05", "end": "2026-03-01"})
    assert response.status_code == 200
    assert "The start date must not be after the end date." in response.content.decode()
    assert len(response.context["board"].days) == 30


def test_budget_consumption_per_inventory_reads_the_counters(client, tenant):
    """R-REP-3: issue/use budgets (count and amount) against the sharded counters."""
    inventory = factories.make_inventory(tenant, total_quantity=1000, issue_budget_count=200, use_budget_count=100,
                                         use_budget_amount=50_000, issue_budget_amount=1_000_000)
    InventoryCounter.objects.create(
        tenant=inventory.tenant, inventory=inventory, shard=0, issued=30, used=10, used_discount=7000)
    InventoryCounter.objects.create(
        tenant=inventory.tenant, inventory=inventory, shard=5, issued=20, used=15, used_discount=5500)
    client.force_login(factories.make_viewer(tenant))
    rows = client.get("/admin/dashboard/").context["board"].budgets
    row = next(r for r in rows if r.inventory == inventory)
    face = inventory.policy.amount
    assert [(line["label"], line["spent"], line["budget"]) for line in row.lines] == [
        ("codes issued", 50, 1000), ("issue budget (count)", 50, 200),
        ("issue budget (amount, face value)", 50 * face, 1_000_000),
        ("use budget (count)", 25, 100), ("use budget (amount, discounts given)", 12_500, 50_000)]
    assert [line["percent"] for line in row.lines][3:] == [25.0, 25.0]


def test_a_tenant_user_sees_only_their_tenant_whatever_the_query_says(client, tenant, other_tenant, seeded):
    """R-TEN-3: the tenant parameter is for superusers; a tenant user always gets their own tenant."""
    seed(other_tenant, issues=[at(2026, 3, 1, 10)] * 3, uses=[], expiries=[])
    factories.make_inventory(other_tenant, name="SECRETB pool")
    client.force_login(factories.make_viewer(other_tenant))
    response = client.get("/admin/dashboard/", {"tenant": tenant.pk, "start": "2026-03-01", "end": "2026-03-01"})
    assert response.context["tenant"] == other_tenant
    assert response.context["totals"]["issued"] == 3
    client.force_login(factories.make_viewer(tenant))
    response = client.get("/admin/dashboard/", {"tenant": other_tenant.pk, "start": "2026-03-01",
                                                "end": "2026-03-01"})
    assert response.context["tenant"] == tenant
    assert response.context["totals"]["issued"] == 2
    assert "SECRETB" not in response.content.decode()


def test_a_superuser_picks_the_tenant(admin_client, tenant, other_tenant, seeded):
    response = admin_client.get("/admin/dashboard/", {"tenant": tenant.pk, "start": "2026-03-01",
                                                      "end": "2026-03-03"})
    assert response.context["tenant"] == tenant and response.context["totals"]["issued"] == 4
    response = admin_client.get("/admin/dashboard/", {"tenant": other_tenant.pk, "start": "2026-03-01",
                                                      "end": "2026-03-03"})
    assert response.context["tenant"] == other_tenant and response.context["totals"]["issued"] == 0


def test_the_dashboard_is_the_first_console_link_and_needs_a_login(client, tenant):
    assert client.get("/admin/dashboard/").status_code == 302
    client.force_login(factories.make_viewer(tenant))
    pages = client.get("/admin/").context["console_pages"]
    assert pages[0]["url"] == "/admin/dashboard/"


def test_the_dashboard_runs_a_fixed_number_of_queries(client, tenant, seeded, django_assert_max_num_queries):
    """Aggregates only: the query count does not grow with the rows (3 series + budgets + counters + session, and
    since issue #20 one for the events whose campaign reports it links to)."""
    client.force_login(factories.make_viewer(tenant))
    with django_assert_max_num_queries(13):
        client.get("/admin/dashboard/", {"start": "2026-03-01", "end": "2026-03-03"})


def test_unacknowledged_alarms_of_the_tenant_are_listed(client, tenant, other_tenant):
    """R-REP-3 with issue #8: the risk app's alarms appear on the dashboard, the tenant's own only."""
    from django.apps import apps
    from django.utils import timezone

    if not apps.is_installed("risk"):
        pytest.skip("risk control (issue #8) is not installed")
    Alarm = apps.get_model("risk", "Alarm")
    mine = factories.make_inventory(tenant, name="Spring pool")
    theirs = factories.make_inventory(other_tenant, name="SECRETB pool")
    Alarm.objects.create(tenant=tenant, inventory=mine, budget="issue_count", threshold=80, spent=80, limit=100,
                         raised_at=timezone.now())
    Alarm.objects.create(tenant=tenant, inventory=mine, budget="issue_count", threshold=50, spent=50, limit=100,
                         raised_at=timezone.now(), acknowledged_at=timezone.now())
    Alarm.objects.create(tenant=other_tenant, inventory=theirs, budget="use_count", threshold=80, spent=8, limit=10,
                         raised_at=timezone.now())
    client.force_login(factories.make_viewer(tenant))
    response = client.get("/admin/dashboard/")
    assert [str(a) for a in response.context["board"].alarms] == ["Spring pool: issue budget (count) at 80 %"]
    assert "SECRETB" not in response.content.decode()


def test_past_days_are_cached_and_today_is_always_counted(tenant, settings, django_assert_num_queries):
    """R-REP-3: a repeat visit reads only today's rows; past days are final and come from the cache."""
    from django.core.cache import cache
    from django.utils import timezone

    from dashboard.selectors import cache_key, daily_counts

    settings.DASHBOARD_CACHE_SECONDS = 60
    tenant.time_zone = "Asia/Seoul"
    tenant.save()
    today = timezone.now().astimezone(SEOUL).date()
    start = date.fromordinal(today.toordinal() - 2)
    cache.delete(cache_key(tenant, start, date.fromordinal(today.toordinal() - 1)))  # only this test's key
    with django_assert_num_queries(6):  # 3 series for the past days + 3 for today
        first = daily_counts(tenant, start, today)
    with django_assert_num_queries(3):  # today only
        again = daily_counts(tenant, start, today)
    assert first == again and [d.day for d in again] == [start, date.fromordinal(start.toordinal() + 1), today]
