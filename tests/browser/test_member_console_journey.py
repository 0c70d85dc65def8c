"""#16's console journeys in a real Chromium: an operator revokes the coupons of listed members from the inventory page
(every member reported), and corrects a member's points on the ledger page with a reason (audited). See
test_console_journeys.py for how the journeys are built."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.audit import Actor
from core.models import AuditLog
from coupons.services.issue import RequestContext, issue_from_pool
from coupons.models import CouponCode
from rewards import services as rewards
from rewards.models import MemberPoints
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_an_operator_revokes_the_coupons_of_listed_members_and_sees_each_member_reported(console, tenant, tmp_path):
    """Issue #16 (seed 002): the file lists two holders and one member without a coupon; the holders' coupons are
    REVOKED, the third member is reported with the reason, the other pool's coupon is untouched."""
    inventory, _ = factories.make_pool(tenant, size=5, name="Spring pool")
    other, _ = factories.make_pool(tenant, size=1, name="Other pool")
    ctx = RequestContext(channel="ios")
    held = [issue_from_pool(inventory=inventory, member_id=m, via="inventory", ctx=ctx) for m in ("m-1", "m-2")]
    kept = issue_from_pool(inventory=other, member_id="m-1", via="inventory", ctx=ctx)
    members = tmp_path / "members.csv"
    members.write_text("member_id\nm-1\nm-2\nm-404\n", encoding="utf-8")

    console.login(factories.make_operator(tenant).username)
    console.goto(f"/admin/coupons/couponinventory/{inventory.pk}/change/")
    console.link(f"/admin/coupons/couponinventory/{inventory.pk}/revoke/").first.click()
    console.page.set_input_files("input[name=members_file]", str(members))
    console.fill("reason", "fraud ring")
    console.shot("revoke-form")
    console.page.click("#content-main [type=submit]")
    rows = console.page.locator("#revocation-report tbody tr")
    expect(rows).to_have_count(3)
    console.shot("revoke-report")
    texts = [rows.nth(i).inner_text() for i in range(3)]
    assert [t.split("\t")[0].strip() for t in texts] == ["m-1", "m-2", "m-404"]
    assert held[0].code in texts[0] and held[1].code in texts[1] and "not_found" in texts[2]
    statuses = dict(CouponCode.objects.filter(pk__in=[c.pk for c in [*held, kept]]).values_list("code", "status"))
    assert statuses == {held[0].code: "REVOKED", held[1].code: "REVOKED", kept.code: "ISSUED"}


def test_an_operator_corrects_a_members_points_with_a_reason_and_the_ledger_and_audit_show_it(console, tenant):
    """Issue #16: on the member's ledger page the operator takes 300 points away with a reason; a correction without
    a reason is refused by the form and changes nothing."""
    rewards.points_adjust(tenant=tenant, member_id="m-7", amount=1_000, note="welcome", actor=Actor.system("tests"))
    member = MemberPoints.objects.get(tenant=tenant, member_id="m-7")

    console.login(factories.make_operator(tenant).username)
    console.goto(f"/admin/rewards/memberpoints/{member.pk}/ledger/")
    console.fill("amount", "-300")
    console.page.evaluate("document.querySelector('textarea[name=note]').removeAttribute('required')")
    console.page.click("#content-main [type=submit]")
    expect(console.page.locator(".errorlist")).to_be_visible()
    member.refresh_from_db()
    assert member.balance == 1_000

    console.fill("amount", "-300")
    console.fill("note", "double credit in October")
    console.page.click("#content-main [type=submit]")
    console.expect_success_message()
    console.shot("points-adjusted")
    member.refresh_from_db()
    assert member.balance == 700
    expect(console.page.locator("#content-main")).to_contain_text("double credit in October")
    assert AuditLog.objects.filter(tenant=tenant, action="points.adjust").count() == 2
