"""Issue #20 in a real Chromium (Korean, then English; see conftest.py): four eyes for handing out money. An operator
asks for a large distribution to a partner and a large grant to members in the console — each is told it awaits
approval and nothing is reserved or issued. An approver sees the count in the header, opens the inbox, sees all
kinds waiting (a policy, a distribution, a grant), approves the distribution (its codes are reserved) and rejects
the grant with a reason (nothing issued); the count drops to zero."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from coupons import services
from coupons.models import CouponCode, CouponGrant, CouponIssue
from partners.models import Distribution
from partners.services import partner_create
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

WIDTH = 1366
AWAITS = {"ko": "결재를 기다립니다", "en": "awaits approval"}
REJECTED = {"ko": "반려", "en": "rejected"}


def _fits_the_window(console) -> None:
    width = console.page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{console.path()} is {width}px wide: a horizontal scroll bar at {WIDTH}px"


def test_an_operator_asks_and_an_approver_approves_a_distribution_and_rejects_a_grant(console, tenant, lang,
                                                                                       tmp_path):
    tenant.distribution_approval_threshold, tenant.grant_approval_threshold = 10, 3
    tenant.save(update_fields=["distribution_approval_threshold", "grant_approval_threshold"])
    inventory, _codes = factories.make_pool(tenant, size=30)
    partner = partner_create(tenant=tenant, name="GS25", code="GS25", actor=factories.TEST_ACTOR)
    operator = factories.make_operator(tenant)
    approver = factories.make_approver(tenant)
    policy = factories.make_draft_policy(tenant, author=operator, name="Card mall 5,000 off")
    services.policy_submit(policy=policy, actor_user=operator)
    console.page.set_viewport_size({"width": WIDTH, "height": 900})

    # The operator asks for 20 codes for the partner: it waits.
    console.login(operator.username)
    console.goto("/admin/partners/distribution/distribute/")
    console.select("inventory", inventory.pk)
    console.select("partner", partner.pk)
    console.fill("quantity", 20)
    console.page.click("#distribute-form [type=submit]")
    expect(console.page.locator("ul.messagelist li.warning")).to_contain_text(AWAITS[lang])
    expect(console.page.locator("#distribution-awaiting")).to_be_visible()
    expect(console.page.locator("#download-csv")).to_have_count(0)
    console.shot("distribution-awaits-approval")
    dist = Distribution.objects.get()
    assert dist.status == "awaiting_approval" and CouponCode.objects.filter(distribution_id=dist.pk).count() == 0

    # … and a grant to four members: it waits too.
    members = tmp_path / "members.csv"
    members.write_text("member_id\nm-1\nm-2\nm-3\nm-4\n", encoding="utf-8")
    console.goto(f"/admin/coupons/couponinventory/{inventory.pk}/grant/")
    console.page.set_input_files("#id_members_file", str(members))
    console.page.click("#content-main form [type=submit]")
    expect(console.page.locator("ul.messagelist li.warning")).to_contain_text(AWAITS[lang])
    expect(console.page.locator("#grant-awaiting")).to_be_visible()
    console.shot("grant-awaits-approval")
    grant = CouponGrant.objects.get()
    assert grant.status == "AWAITING_APPROVAL" and CouponIssue.objects.count() == 0
    console.logout()

    # The approver sees three waiting in the header and all three kinds in the inbox.
    console.login(approver.username)
    badge = console.page.locator("#console-badge-admin-coupons_couponpolicy_approvals")
    expect(badge).to_have_text("3")
    console.shot("header-count")
    console.page.locator("#console-nav a[href='/admin/coupons/couponpolicy/approvals/']").click()
    expect(console.page.locator(f"#approvals-table tr[data-policy='{policy.pk}']")).to_be_visible()
    dist_row = console.page.locator(f"#approvals-distribution tr[data-distribution='{dist.pk}']")
    grant_row = console.page.locator(f"#approvals-grant tr[data-grant='{grant.pk}']")
    expect(dist_row).to_have_attribute("data-decidable", "yes")
    expect(dist_row).to_contain_text("GS25")
    expect(dist_row).to_contain_text("20")
    expect(dist_row).to_contain_text(operator.username)
    expect(grant_row).to_have_attribute("data-decidable", "yes")
    expect(grant_row).to_contain_text(inventory.name)
    expect(grant_row).to_contain_text("4")
    _fits_the_window(console)
    console.shot("inbox-all-kinds")

    # The distribution's terms in context, then approve: its codes are reserved.
    dist_row.locator(f"a[data-decide-distribution='{dist.pk}']").click()
    terms = console.page.locator("#approval-terms")
    expect(terms).to_contain_text("GS25")
    expect(terms).to_contain_text(inventory.public_id)
    expect(terms).to_contain_text("20")
    _fits_the_window(console)
    console.shot("distribution-terms")
    console.page.click("#approval-approve-form button[value=approve]")
    console.expect_success_message()
    assert console.path() == "/admin/coupons/couponpolicy/approvals/"
    expect(badge).to_have_text("2")
    dist.refresh_from_db()
    assert (dist.status, dist.decided_by_id) == ("distributed", approver.pk)
    assert CouponCode.objects.filter(distribution_id=dist.pk, status="DISTRIBUTED").count() == 20
    console.shot("distribution-approved")

    # The grant's terms, then reject: first without a reason (refused, in the console's language), then with one.
    console.page.locator(f"#approvals-grant a[data-decide-grant='{grant.pk}']").click()
    terms = console.page.locator("#approval-terms")
    expect(terms).to_contain_text(inventory.name)
    expect(terms).to_contain_text("m-1")
    console.shot("grant-terms")
    console.page.locator("#approval-reject-form textarea[name=reason]").evaluate("el => el.removeAttribute('required')")
    console.page.click("#approval-reject-form button[value=reject]")
    expect(console.page.locator("ul.messagelist li.error")).to_be_visible()
    console.shot("grant-reject-needs-a-reason")
    grant.refresh_from_db()
    assert grant.status == "AWAITING_APPROVAL"
    reason = "명단 확인 필요" if lang == "ko" else "List to be checked"
    console.page.fill("#approval-reject-form textarea[name=reason]", reason)
    console.page.click("#approval-reject-form button[value=reject]")
    console.expect_success_message()
    expect(console.page.locator("ul.messagelist li.success")).to_contain_text(REJECTED[lang])
    expect(badge).to_have_text("1")  # the policy still waits
    expect(console.page.locator("#approvals-grant-empty")).to_be_visible()
    expect(console.page.locator("#approvals-distribution-empty")).to_be_visible()
    console.shot("grant-rejected")
    grant.refresh_from_db()
    assert (grant.status, grant.rejection_reason, grant.decided_by_id) == ("REJECTED", reason, approver.pk)
    assert CouponIssue.objects.count() == 0
