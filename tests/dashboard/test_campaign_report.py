"""Issue #20 "Must show": the campaign report of an event — every figure of the page and of the XLSX equals an
independent SQL count over a seeded event (issues, registrations, redemptions, refunds, expiries across channels,
pools and partners), with another event and another tenant as noise; the workbook has real charts, frozen headers
and sized columns; bad input is refused without a 500; another tenant's event is a 404."""
from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from coupons.services import lifecycle
from coupons.discounts import validate_order_payload
from coupons.services.issue import RequestContext, coupon_claim, issue_from_pool
from coupons.models import CouponCode, CouponIssue, CouponUsage
from partners.distribution import distribution_create
from partners.models import Partner
from partners.services import partner_upload_create, partner_upload_process
from tests import factories

SEOUL = ZoneInfo("Asia/Seoul")


def _issue(tenant, inventory, member: str, channel: str) -> CouponCode:
    return issue_from_pool(inventory=inventory, member_id=member, via="inventory",
                           ctx=RequestContext(channel=channel))


def _redeem(tenant, coupon: CouponCode, member: str, order_id: str, total: int, channel: str):
    return lifecycle.coupon_redeem(tenant=tenant, code=coupon.code, member_id=member, order_id=order_id,
                                   order=validate_order_payload(factories.order(total, order_id=order_id,
                                                                                channel=channel)),
                                   ctx=RequestContext(channel=channel))[1]


def _move(model, pk: int, **times: datetime) -> None:
    model.objects.filter(pk=pk).update(**times)


def seed_event(tenant):
    """An event with three pools (fixed amount, percentage with a use budget, a partner pool), issues and redemptions
    on several days and channels, a refund, two expiries (one swept, one only past its validity), codes handed to
    two partners (a distribution and a mapped upload), some registered and used."""
    tenant.time_zone = "Asia/Seoul"
    tenant.save(update_fields=["time_zone"])
    now = timezone.now()
    event = factories.make_event(tenant, name="Autumn card event", starts_at=now - timedelta(days=6),
                                 ends_at=now + timedelta(days=20))
    amount = factories.make_approved_policy(tenant, kind="amount", amount=5000, name="5,000 won off")
    percent = factories.make_approved_policy(tenant, kind="percentage", rate=10, cap=3000, name="10% off")
    pool_a, _ = factories.make_pool(tenant, size=8, policy=amount, event=event, name="Pool A", per_member_limit=3)
    pool_b, _ = factories.make_pool(tenant, size=6, policy=percent, event=event, name="Pool B",
                                    use_budget_amount=20_000)
    pool_p, _ = factories.make_pool(tenant, size=8, policy=amount, event=event, name="Partner pool")

    days = [now - timedelta(days=k) for k in (4, 3, 2, 1, 0)]
    a = [_issue(tenant, pool_a, f"a-{i}", ch) for i, ch in enumerate(["ios", "ios", "android", "pc_web", "ios"])]
    b = [_issue(tenant, pool_b, f"b-{i}", ch) for i, ch in enumerate(["android", "android", "ios", "mobile_web"])]
    for coupon, when in zip(a + b, days + days, strict=False):  # 9 coupons over 10 days
        _move(CouponIssue, CouponIssue.objects.get(coupon=coupon).pk, issued_at=when)
    usages = [
        _redeem(tenant, a[0], "a-0", "o-1", 50_000, "ios"),
        _redeem(tenant, a[1], "a-1", "o-2", 40_000, "android"),  # issued on ios, used on android
        _redeem(tenant, a[2], "a-2", "o-3", 30_000, "android"),
        _redeem(tenant, b[0], "b-0", "o-4", 50_000, "android"),   # 10 % → 3,000 (the cap)
        _redeem(tenant, b[1], "b-1", "o-5", 12_000, "pc_web"),    # 10 % → 1,200
    ]
    for usage, when in zip(usages, [days[1], days[2], days[2], days[3], days[4]], strict=True):
        _move(CouponUsage, usage.pk, used_at=when)
    # a full refund of o-3 on day 3: the coupon goes back to ISSUED
    lifecycle.coupon_refund(tenant=tenant, code=a[2].code, order_id="o-3", ctx=RequestContext())
    _move(CouponUsage, usages[2].pk, refunded_at=days[3])
    # expiries: one swept to EXPIRED, one ISSUED past its validity (expired at once, R-LIFE-3)
    past = now - timedelta(hours=1)
    CouponCode.objects.filter(pk=a[3].pk).update(valid_until=past)
    lifecycle.coupons_expire(now=now)
    assert CouponCode.objects.get(pk=a[3].pk).status == "EXPIRED"
    CouponCode.objects.filter(pk=b[2].pk).update(valid_until=past)

    # partners: 3 codes distributed to Card Mall (2 registered, 1 used); 2 partner codes mapped for GS (1 registered
    # and used)
    mall = Partner.objects.create(tenant=tenant, name="Card Mall", code="MALL")
    Partner.objects.create(tenant=tenant, name="GS Retail", code="GS25")
    distribution = distribution_create(tenant=tenant, inventory=pool_p, partner=mall, quantity=3,
                                       actor=factories.TEST_ACTOR)
    handed = list(CouponCode.objects.filter(distribution_id=distribution.pk).order_by("id"))
    r1 = coupon_claim(tenant=tenant, member_id="p-1", code=handed[0].code, ctx=RequestContext(channel="ios"))
    coupon_claim(tenant=tenant, member_id="p-2", code=handed[1].code, ctx=RequestContext(channel="android"))
    _redeem(tenant, r1, "p-1", "o-6", 20_000, "ios")
    upload, _created = partner_upload_create(tenant=tenant, partner_code="GS25",
                                             inventory_public_id=pool_p.public_id,
                                             uploaded=SimpleUploadedFile("gs.csv", b"GS0001\nGS0002\n"),
                                             actor=factories.TEST_ACTOR)
    partner_upload_process(upload_id=upload.pk, tenant_id=upload.tenant_id)
    r2 = coupon_claim(tenant=tenant, member_id="p-3", partner_code="GS0001", ctx=RequestContext(channel="ios"))
    _redeem(tenant, r2, "p-3", "o-7", 25_000, "ios")

    # noise: another event of the same tenant, and another tenant's event
    other_pool, _ = factories.make_pool(tenant, size=2, name="Other event pool")
    _redeem(tenant, _issue(tenant, other_pool, "x-1", "ios"), "x-1", "o-x", 50_000, "ios")
    return event


def sql(query: str, *params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def expected(event) -> dict:
    """The figures, counted independently with plain SQL over the event's inventories."""
    inv = "SELECT id FROM coupons_couponinventory WHERE event_id = %s"
    one = lambda q: sql(q, event.pk)[0][0]  # noqa: E731
    figures = {
        "issued": one(f"SELECT count(*) FROM coupons_couponissue WHERE inventory_id IN ({inv})"),
        "registered": one(f"SELECT count(*) FROM coupons_couponissue WHERE via IN ('code', 'partner_code') "
                          f"AND inventory_id IN ({inv})"),
        "used": one(f"SELECT count(*) FROM coupons_couponcode WHERE status = 'USED' AND inventory_id IN ({inv})"),
        "refunded": one(f"SELECT count(*) FROM coupons_couponusage WHERE refunded_at IS NOT NULL "
                        f"AND inventory_id IN ({inv})"),
        "expired": one(f"SELECT count(*) FROM coupons_couponcode WHERE member_id IS NOT NULL AND inventory_id IN "
                       f"({inv}) AND (status = 'EXPIRED' OR (status = 'ISSUED' AND valid_until <= now()))"),
        "discount": one(f"SELECT coalesce(sum(discount), 0) FROM coupons_couponusage WHERE refunded_at IS NULL "
                        f"AND inventory_id IN ({inv})"),
    }
    figures["pools"] = {name: (issued, used, discount) for name, issued, used, discount in sql(
        "SELECT v.name, (SELECT count(*) FROM coupons_couponissue i WHERE i.inventory_id = v.id),"
        " (SELECT count(*) FROM coupons_couponusage u WHERE u.inventory_id = v.id AND u.refunded_at IS NULL),"
        " (SELECT coalesce(sum(discount), 0) FROM coupons_couponusage u WHERE u.inventory_id = v.id"
        "   AND u.refunded_at IS NULL) FROM coupons_couponinventory v WHERE v.event_id = %s", event.pk)}
    issued_by = dict(sql(f"SELECT channel, count(*) FROM coupons_couponissue WHERE inventory_id IN ({inv}) "
                         f"GROUP BY channel", event.pk))
    used_by = dict(sql(f"SELECT channel, count(*) FROM coupons_couponusage WHERE refunded_at IS NULL "
                       f"AND inventory_id IN ({inv}) GROUP BY channel", event.pk))
    figures["channels"] = {ch: (issued_by.get(ch, 0), used_by.get(ch, 0)) for ch in {*issued_by, *used_by}}
    figures["partners"] = {name: (handed, registered, used) for name, handed, registered, used in sql(
        "SELECT p.name, count(c.id), count(c.member_id), count(*) FILTER (WHERE c.status = 'USED')"
        "  FROM coupons_couponcode c"
        "  LEFT JOIN partners_distribution d ON d.id = c.distribution_id"
        "  LEFT JOIN partners_couponmapping m ON m.coupon_id = c.id"
        "  JOIN partners_partner p ON p.id = coalesce(d.partner_id, m.partner_id)"
        f" WHERE c.inventory_id IN ({inv}) GROUP BY p.name", event.pk)}
    figures["issued_per_day"] = dict(sql(
        f"SELECT (issued_at AT TIME ZONE 'Asia/Seoul')::date, count(*) FROM coupons_couponissue "
        f"WHERE inventory_id IN ({inv}) GROUP BY 1", event.pk))
    figures["redeemed_per_day"] = dict(sql(
        f"SELECT (used_at AT TIME ZONE 'Asia/Seoul')::date, count(*) FROM coupons_couponusage "
        f"WHERE inventory_id IN ({inv}) GROUP BY 1", event.pk))
    return figures


@pytest.fixture
def seeded(tenant, other_tenant):
    event = seed_event(tenant)
    # another tenant's event with activity on the same days: must not count anywhere
    foreign_pool, _ = factories.make_pool(other_tenant, size=2, name="Foreign pool")
    _redeem(other_tenant, _issue(other_tenant, foreign_pool, "f-1", "ios"), "f-1", "o-f", 50_000, "ios")
    return event


def test_the_seeded_event_has_the_figures_the_test_means_to_check(seeded):
    """The fixture is what the comparisons below rely on: every kind of figure is non-zero and distinct."""
    e = expected(seeded)
    assert (e["issued"], e["registered"], e["used"], e["refunded"], e["expired"]) == (12, 3, 6, 1, 2)
    assert e["discount"] == 5000 * 2 + 3000 + 1200 + 5000 * 2
    assert e["partners"] == {"Card Mall": (3, 2, 1), "GS Retail": (2, 1, 1)}


def test_the_report_page_shows_exactly_the_sql_counts(client, tenant, seeded):
    client.force_login(factories.make_viewer(tenant))
    response = client.get(reverse("dashboard:event_report", args=[seeded.pk]))
    assert response.status_code == 200
    report, e = response.context["report"], expected(seeded)
    t = report.totals
    assert (t.issued, t.registered, t.used, t.refunded, t.expired, t.discount) == (
        e["issued"], e["registered"], e["used"], e["refunded"], e["expired"], e["discount"])
    assert t.redemption_rate == e["used"] / e["issued"]
    assert {p.inventory.name: (p.figures.issued, p.figures.used, p.figures.discount) for p in report.pools} \
        == e["pools"]
    assert {c.channel: (c.figures.issued, c.figures.used) for c in report.channels} == e["channels"]
    assert {p.name: (p.handed_over, p.registered, p.used) for p in report.partners} == e["partners"]
    # budget: only Pool B has a use budget (₩20,000) and gave 3,000 + 1,200 of discount
    assert (report.budget, report.budget_spent, report.budget_used) == (20_000, 4200, 4200 / 20_000)
    # per day: every issue and redemption of the event falls in the default range (event start .. today)
    assert {d.day: d.issued for d in report.days if d.issued} == e["issued_per_day"]
    assert {d.day: d.redeemed for d in report.days if d.redeemed} == e["redeemed_per_day"]
    last = report.days[-1]
    assert (last.cumulative_issued, last.cumulative_used) == (e["issued"], e["used"])
    # the page shows the money and the rates like the rest of the console
    page = response.content.decode()
    assert '<strong id="kpi-discount">₩24,200</strong>' in page
    assert f'<strong id="kpi-rate">{100 * 6 / 12:.1f}%</strong>' in page
    assert '<strong id="kpi-budget">21.0%</strong>' in page
    assert "Other event pool" not in page and "Foreign pool" not in page


def test_the_xlsx_holds_the_same_figures_with_charts_frozen_headers_and_widths(client, tenant, seeded):
    client.force_login(factories.make_viewer(tenant))
    response = client.get(reverse("dashboard:event_report_xlsx", args=[seeded.pk]))
    assert response.status_code == 200
    today = timezone.now().astimezone(SEOUL)
    assert response["Content-Disposition"] == (
        f'attachment; filename="campaign-report-{seeded.public_id}-{today:%Y%m%d}.xlsx"')
    wb = load_workbook(io.BytesIO(response.content))
    assert wb.sheetnames == ["Summary", "Per day", "By channel", "By pool", "By partner", "Charts"]
    e = expected(seeded)
    summary = {row[0]: row[1] for row in wb["Summary"].iter_rows(values_only=True) if row and row[0]}
    assert (summary["Issued"], summary["Registered"], summary["Used"], summary["Refunded"], summary["Expired"],
            summary["Discount given"], summary["Budget"]) == (
        e["issued"], e["registered"], e["used"], e["refunded"], e["expired"], e["discount"], 20_000)
    assert summary["Redemption rate"] == pytest.approx(0.5)
    assert summary["Budget used"] == pytest.approx(0.21)
    discount_cell = next(row[1] for row in wb["Summary"].iter_rows() if row[0].value == "Discount given")
    assert discount_cell.number_format == '"₩"#,##0'

    pools = list(wb["By pool"].iter_rows(values_only=True))
    assert pools[0][:3] == ("Pool", "Policy", "Issued")
    assert {r[0]: (r[2], r[4], r[7]) for r in pools[1:]} == e["pools"]
    channels = list(wb["By channel"].iter_rows(values_only=True))
    assert {r[0]: (r[1], r[2]) for r in channels[1:]} == e["channels"]
    partners = list(wb["By partner"].iter_rows(values_only=True))
    assert {r[0]: (r[2], r[3], r[4]) for r in partners[1:]} == e["partners"]
    daily = list(wb["Per day"].iter_rows(values_only=True))
    assert {r[0].date(): r[1] for r in daily[1:] if r[1]} == e["issued_per_day"]
    assert {r[0].date(): r[2] for r in daily[1:] if r[2]} == e["redeemed_per_day"]

    for name in ("Per day", "By channel", "By pool", "By partner"):
        ws = wb[name]
        assert ws.freeze_panes == "B2", name
        assert all((ws.column_dimensions[c].width or 0) >= 8 for c in "ABC"), name
    assert wb["By pool"].column_dimensions["A"].width >= len("Partner pool")

    charts = wb["Charts"]._charts
    assert [type(c).__name__ for c in charts] == ["LineChart", "LineChart", "BarChart"]
    line, rate_line, bar = charts
    n_days = len(daily) - 1
    assert [s.val.numRef.f for s in line.series] == [f"'Per day'!$B$2:$B${n_days + 1}",
                                                     f"'Per day'!$C$2:$C${n_days + 1}"]
    assert line.series[0].cat.numRef.f == f"'Per day'!$A$2:$A${n_days + 1}"
    assert [s.val.numRef.f for s in rate_line.series] == [f"'Per day'!$G$2:$G${n_days + 1}"]
    assert daily[0][6] == "Redemption rate (cumulative)"
    n_channels = len(channels) - 1
    assert [s.val.numRef.f for s in bar.series] == [f"'By channel'!$B$2:$B${n_channels + 1}",
                                                    f"'By channel'!$C$2:$C${n_channels + 1}"]


def test_the_xlsx_is_in_the_tenants_language(client, tenant, seeded):
    tenant.language = "ko"
    tenant.save(update_fields=["language"])
    client.force_login(factories.make_viewer(tenant))
    wb = load_workbook(io.BytesIO(client.get(reverse("dashboard:event_report_xlsx", args=[seeded.pk])).content))
    assert wb.sheetnames[0] == "개요"
    assert "발급" in {row[0] for row in wb["개요"].iter_rows(values_only=True)}


def test_a_chosen_range_limits_the_days_and_the_cumulative_rate_counts_what_came_before(client, tenant, seeded):
    client.force_login(factories.make_viewer(tenant))
    today = timezone.now().astimezone(SEOUL).date()
    start = today - timedelta(days=1)
    response = client.get(reverse("dashboard:event_report", args=[seeded.pk]),
                          {"start": start.isoformat(), "end": today.isoformat()})
    report = response.context["report"]
    assert [d.day for d in report.days] == [start, today]
    before = sql("SELECT count(*) FROM coupons_couponissue i JOIN coupons_couponinventory v ON v.id = i.inventory_id"
                 " WHERE v.event_id = %s AND (i.issued_at AT TIME ZONE 'Asia/Seoul')::date < %s",
                 seeded.pk, start)[0][0]
    assert report.days[0].cumulative_issued == before + report.days[0].issued
    assert report.days[-1].cumulative_issued == expected(seeded)["issued"]


@pytest.mark.parametrize("query, message", [
    ({"start": "2026-03-05", "end": "2026-03-01"}, "The start date must not be after the end date."),
    ({"start": "2024-01-01", "end": "2026-01-01"}, "Choose a range of at most 366 days."),
    ({"start": "2026-03-01"}, "Give both a start and an end date, or neither."),
    ({"start": "yesterday", "end": "2026-03-01"}, "Enter a valid date."),
])
def test_a_bad_range_is_explained_and_the_default_days_are_shown(client, tenant, seeded, query, message):
    client.force_login(factories.make_viewer(tenant))
    for name in ("dashboard:event_report", "dashboard:event_report_xlsx"):
        response = client.get(reverse(name, args=[seeded.pk]), query)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")  # the xlsx route shows the page, not a file
        assert message in response.content.decode()
        assert response.context["report"].days[0].day == seeded.starts_at.astimezone(SEOUL).date()


def test_another_tenants_event_and_unknown_ids_answer_404(client, tenant, other_tenant, seeded):
    foreign = factories.make_event(other_tenant, name="Foreign event")
    client.force_login(factories.make_operator(tenant))
    for name in ("dashboard:event_report", "dashboard:event_report_xlsx"):
        assert client.get(reverse(name, args=[foreign.pk])).status_code == 404
        assert client.get(reverse(name, args=[999_999_999])).status_code == 404
    assert client.get("/admin/dashboard/events/abc/report/").status_code == 404
    assert client.get(f"/admin/dashboard/events/{10 ** 20}/report/").status_code == 404  # past bigint: not a 500
    assert client.get(f"/admin/dashboard/events/{10 ** 20}/report.xlsx").status_code == 404


def test_the_dashboard_and_the_event_page_link_to_the_report(client, tenant, other_tenant, seeded):
    foreign = factories.make_event(other_tenant, name="Foreign event")
    client.force_login(factories.make_operator(tenant))
    url = reverse("dashboard:event_report", args=[seeded.pk])
    dashboard = client.get(reverse("dashboard:index")).content.decode()
    assert f'href="{url}"' in dashboard
    assert reverse("dashboard:event_report", args=[foreign.pk]) not in dashboard
    change = client.get(reverse("admin:events_event_change", args=[seeded.pk])).content.decode()
    assert f'href="{url}" id="event-report-link"' in change


def test_the_report_reads_the_history_with_a_fixed_number_of_queries(client, tenant, seeded):
    """Aggregated in SQL: more pools, codes, redemptions and days add no query."""
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    client.force_login(factories.make_viewer(tenant))
    url = reverse("dashboard:event_report", args=[seeded.pk])
    client.get(url)  # warm the session and permission caches

    def queries(**query: str) -> int:
        with CaptureQueriesContext(conn) as captured:
            assert client.get(url, query).status_code == 200
        return len(captured)

    before = queries()
    assert before <= 13
    more, _ = factories.make_pool(tenant, size=6, event=seeded, name="Pool C", per_member_limit=6)
    for i in range(6):
        _redeem(tenant, _issue(tenant, more, "c-1", "wechat"), "c-1", f"o-c{i}", 30_000, "wechat")
    assert queries() == before
    assert queries(start="2026-01-01", end="2026-12-31") == before  # 365 days: still no query per day


def test_an_event_without_pools_or_activity_has_an_empty_report_and_a_valid_workbook(client, tenant):
    event = factories.make_event(tenant, name="Quiet event")
    client.force_login(factories.make_viewer(tenant))
    page = client.get(reverse("dashboard:event_report", args=[event.pk]))
    assert page.status_code == 200
    report = page.context["report"]
    assert (report.totals.issued, report.pools, report.channels, report.partners, report.budget) == (0, [], [], [],
                                                                                                    None)
    assert '<strong id="kpi-rate">—</strong>' in page.content.decode()
    response = client.get(reverse("dashboard:event_report_xlsx", args=[event.pk]))
    wb = load_workbook(io.BytesIO(response.content))
    assert [type(c).__name__ for c in wb["Charts"]._charts] == ["LineChart", "LineChart"]  # no channel, no bar chart
    assert wb["Charts"]["A41"].value == "Nothing issued or used yet."
    assert list(wb["By pool"].iter_rows(values_only=True))[1:] == []
