"""Issue #20 journeys in a real Chromium (Korean, then English; see conftest.py): an operator goes from the dashboard
to an event's campaign report and downloads it as Excel (opened with openpyxl: the figures and the charts); an
approver sees the count in the console header, opens the inbox, reads the policy's terms on the decide page and
approves — the count drops. Both new pages fit a 1366-px-wide window without a horizontal scroll bar."""
from __future__ import annotations

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from coupons import services
from tests import factories
from tests.dashboard.test_campaign_report import expected, seed_event

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

WIDTH = 1366


def _fits_the_window(console) -> None:
    width = console.page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{console.path()} is {width}px wide: a horizontal scroll bar at {WIDTH}px"


def test_an_operator_opens_the_campaign_report_from_the_dashboard_and_downloads_it(console, tenant):
    event = seed_event(tenant)
    figures = expected(event)
    console.page.set_viewport_size({"width": WIDTH, "height": 900})
    console.login(factories.make_operator(tenant).username)
    console.page.locator("#console-nav a[href='/admin/dashboard/']").click()
    report_link = console.page.locator(f"#report-links a[data-event='{event.pk}']")
    expect(report_link).to_be_visible()
    console.shot("dashboard")
    report_link.click()
    assert console.path() == f"/admin/dashboard/events/{event.pk}/report/"
    expect(console.page.locator("#kpi-issued")).to_have_text(str(figures["issued"]))
    expect(console.page.locator("#kpi-used")).to_have_text(str(figures["used"]))
    expect(console.page.locator("#kpi-discount")).to_have_text(f"₩{figures['discount']:,}")
    expect(console.page.locator("#report-pools tbody tr")).to_have_count(3)
    expect(console.page.locator("#report-partners tbody tr")).to_have_count(2)
    _fits_the_window(console)
    console.shot("campaign-report")

    with console.page.expect_download() as info:
        console.page.click("#report-xlsx")
    download = info.value
    assert download.suggested_filename.startswith(f"campaign-report-{event.public_id}-")
    path = console.artifacts / f"{console.test_name}-{download.suggested_filename}"
    download.save_as(path)
    wb = load_workbook(path)
    summary = [row for row in wb.worksheets[0].iter_rows(values_only=True) if row and row[0]]
    values = [row[1] for row in summary]
    assert figures["issued"] in values and figures["discount"] in values
    assert [type(c).__name__ for c in wb.worksheets[-1]._charts] == ["LineChart", "LineChart", "BarChart"]


def test_an_approver_goes_from_the_header_count_to_the_inbox_and_approves_with_the_terms_in_view(console, tenant):
    author = factories.make_operator(tenant)
    policy = factories.make_draft_policy(tenant, author=author, kind="threshold", amount=5000, threshold=53_000,
                                         name="Card mall 5,000 off")
    services.policy_submit(policy=policy, actor_user=author)
    approver = factories.make_approver(tenant)
    console.page.set_viewport_size({"width": WIDTH, "height": 900})
    console.login(approver.username)
    badge = console.page.locator("#console-badge-admin-coupons_couponpolicy_approvals")
    expect(badge).to_have_text("1")
    console.shot("header-count")

    console.page.locator("#console-nav a[href='/admin/coupons/couponpolicy/approvals/']").click()
    row = console.page.locator(f"#approvals-table tr[data-policy='{policy.pk}']")
    expect(row).to_have_attribute("data-decidable", "yes")
    _fits_the_window(console)
    console.shot("inbox")

    row.locator(f"a[data-decide='{policy.pk}']").click()
    terms = console.page.locator("#policy-terms")
    expect(terms).to_contain_text("₩5,000")
    expect(terms).to_contain_text("₩53,000")
    expect(terms).to_contain_text(author.username)
    _fits_the_window(console)
    console.shot("decide-with-terms")

    console.page.click("#policy-approve-form button[value=approve]")
    console.expect_success_message()
    assert console.path() == "/admin/coupons/couponpolicy/approvals/"
    expect(badge).to_have_text("0")
    expect(console.page.locator("#approvals-empty")).to_be_visible()
    console.shot("approved")
    policy.refresh_from_db()
    assert (policy.status, policy.decided_by_id) == ("APPROVED", approver.pk)
