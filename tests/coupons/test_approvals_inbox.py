"""Issue #20 "Must show": the approvals inbox (R-POL-5). An approver sees what waits for them, with the count in the
console header of every page; the author sees their own policy marked as not decidable by them; deciding from the
inbox works and the count drops; another tenant's policies never appear; the decide page shows the terms."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from coupons import services
from coupons.models import CouponPolicy
from tests import factories

pytestmark = pytest.mark.django_db

INBOX = "/admin/coupons/couponpolicy/approvals/"
BADGE = re.compile(r'<span class="console-badge" id="console-badge-admin-coupons_couponpolicy_approvals">(\d+)</span>')


def pending(tenant, author, **fields) -> CouponPolicy:
    policy = factories.make_draft_policy(tenant, author=author, **fields)
    return services.policy_submit(policy=policy, actor_user=author)


def badge(page: str) -> int | None:
    found = BADGE.search(page)
    return int(found[1]) if found else None


@pytest.fixture
def people(tenant):
    """An approver who also writes policies (operator + approver), a second approver, a plain operator."""
    approver = factories.make_approver(tenant, username="approver-kim")
    approver.groups.add(Group.objects.get(name="operator"))
    return {"approver": approver, "second": factories.make_approver(tenant, username="approver-lee"),
            "operator": factories.make_operator(tenant, username="operator-park")}


def test_the_url_is_the_inbox():
    assert reverse("admin:coupons_couponpolicy_approvals") == INBOX


def test_an_approver_sees_what_waits_with_the_count_in_the_header_of_every_page(client, tenant, other_tenant,
                                                                                people):
    by_operator = [pending(tenant, people["operator"], name=f"Operator policy {i}") for i in range(3)]
    own = pending(tenant, people["approver"], name="Approver's own policy")
    factories.make_draft_policy(tenant, author=people["operator"], name="Still a draft")  # not submitted
    factories.make_approved_policy(tenant, name="Already approved")
    foreign = pending(other_tenant, factories.make_operator(other_tenant), name="SECRETB foreign policy")
    client.force_login(people["approver"])

    for url in ("/admin/", reverse("dashboard:index"), reverse("admin:events_event_changelist"), INBOX):
        page = client.get(url).content.decode()
        assert badge(page) == 3, url  # the operator's three; not their own, the draft, the approved, the foreign

    page = client.get(INBOX)
    body = page.content.decode()
    assert [p.pk for p in page.context["to_decide"]] == [p.pk for p in by_operator]  # oldest submission first
    assert [p.pk for p in page.context["own"]] == [own.pk]
    assert re.search(r'id="approvals-waiting">3<', body) and re.search(r'id="approvals-own">1<', body)
    for policy in by_operator:
        assert f'data-policy="{policy.pk}" data-decidable="yes"' in body
        assert f'href="/admin/coupons/couponpolicy/{policy.pk}/decide/?next=' in body
    assert f'data-policy="{own.pk}" data-decidable="no"' in body
    assert f'data-not-decidable="{own.pk}"' in body
    assert "You wrote it: another approver must decide" in body
    assert "Still a draft" not in body and "Already approved" not in body
    assert "SECRETB" not in body and str(foreign.pk) not in re.findall(r'data-policy="(\d+)"', body)


def test_the_author_is_told_on_the_decide_page_and_cannot_approve_their_own(client, tenant, people):
    own = pending(tenant, people["approver"], name="Own")
    client.force_login(people["approver"])
    decide = reverse("admin:coupons_couponpolicy_decide", args=[own.pk])
    page = client.get(decide).content.decode()
    assert 'id="policy-not-decidable"' in page and 'value="approve"' not in page
    client.post(decide, {"decision": "approve", "next": INBOX})
    own.refresh_from_db()
    assert own.status == "PENDING"


def test_deciding_from_the_inbox_works_and_the_count_drops(client, tenant, people):
    first = pending(tenant, people["operator"], name="First")
    second = pending(tenant, people["operator"], name="Second")
    client.force_login(people["second"])
    assert badge(client.get(INBOX).content.decode()) == 2

    decide = reverse("admin:coupons_couponpolicy_decide", args=[first.pk])
    form = client.get(decide, {"next": INBOX}).content.decode()
    assert f'<input type="hidden" name="next" value="{INBOX}">' in form
    approved = client.post(decide, {"decision": "approve", "next": INBOX})
    assert approved.status_code == 302 and approved["Location"] == INBOX  # back to the inbox
    first.refresh_from_db()
    assert (first.status, first.decided_by) == ("APPROVED", people["second"])
    inbox = client.get(INBOX)
    assert badge(inbox.content.decode()) == 1
    assert [p.pk for p in inbox.context["to_decide"]] == [second.pk]

    rejected = client.post(reverse("admin:coupons_couponpolicy_decide", args=[second.pk]),
                           {"decision": "reject", "reason": "Cap too high", "next": INBOX})
    assert rejected["Location"] == INBOX
    page = client.get(INBOX).content.decode()
    assert badge(page) == 0  # shown as 0: the approver sees the inbox is empty
    assert 'id="approvals-empty"' in page


def test_a_next_other_than_the_inbox_is_ignored(client, tenant, people):
    policy = pending(tenant, people["operator"])
    client.force_login(people["second"])
    decide = reverse("admin:coupons_couponpolicy_decide", args=[policy.pk])
    response = client.post(decide, {"decision": "approve", "next": "https://evil.example/"})
    assert response["Location"] == reverse("admin:coupons_couponpolicy_change", args=[policy.pk])


def test_users_who_may_not_approve_have_no_count_and_see_the_inbox_read_only(client, tenant, people):
    policy = pending(tenant, people["approver"])
    client.force_login(people["operator"])
    assert badge(client.get("/admin/").content.decode()) is None
    page = client.get(INBOX)
    assert page.status_code == 200
    body = page.content.decode()
    assert f'data-policy="{policy.pk}" data-decidable="no"' in body
    assert "/decide/?next=" not in body


def test_another_tenants_approver_sees_none_of_these(client, tenant, other_tenant, people):
    pending(tenant, people["operator"], name="Tenant A policy")
    foreign_approver = factories.make_approver(other_tenant)
    client.force_login(foreign_approver)
    page = client.get(INBOX).content.decode()
    assert "Tenant A policy" not in page and badge(page) == 0


def test_a_superuser_sees_every_tenants_pending_policies(client, tenant, other_tenant, people):
    a = pending(tenant, people["operator"], name="A policy")
    b = pending(other_tenant, factories.make_operator(other_tenant), name="B policy")
    root = factories.make_user(tenant=None, role=None, superuser=True)
    client.force_login(root)
    page = client.get(INBOX)
    assert {p.pk for p in page.context["to_decide"]} == {a.pk, b.pk}
    assert badge(page.content.decode()) == 2


def test_the_decide_page_shows_the_policys_terms(client, tenant, people):
    tenant.time_zone = "Asia/Seoul"
    tenant.save(update_fields=["time_zone"])
    seoul = ZoneInfo("Asia/Seoul")
    policy = pending(tenant, people["operator"], kind="percentage", rate=15, cap=7000, threshold=30_000,
                     name="Autumn 15%", stacking_group="merchant", exclusive=True, channels=["ios", "android"],
                     include_categories=["fashion"], exclude_shops=["outlet-1"], audience="members",
                     valid_from=datetime(2026, 10, 1, 0, 0, tzinfo=seoul),
                     valid_until=datetime(2026, 10, 31, 23, 59, tzinfo=seoul))
    client.force_login(people["second"])
    response = client.get(reverse("admin:coupons_couponpolicy_decide", args=[policy.pk]))
    terms = {str(label): value for label, value in response.context["terms"]}
    assert terms["kind"] == "percentage off with a cap"
    assert terms["discount"] == "15% off"
    assert terms["cap"] == "₩7,000"
    assert terms["threshold"] == "₩30,000"
    assert terms["validity"] == "from 2026-10-01 00:00 to 2026-10-31 23:59"
    assert terms["scope"] == "included categories: fashion; excluded shops: outlet-1"
    assert terms["channels"] == "ios, android"
    assert terms["payment methods"] == "every payment method"
    assert terms["audience"] == "members only"
    assert terms["stacking group"] == "merchant, exclusive (combines with no other coupon)"
    assert terms["budget"].startswith("Budgets are set on the inventories")
    assert terms["author"] == "operator-park"
    assert terms["submitted at"] == policy.submitted_at.astimezone(seoul).strftime("%Y-%m-%d %H:%M")
    body = response.content.decode()
    assert '<table class="policy-terms" id="policy-terms">' in body and "₩7,000" in body


def test_the_decide_page_lists_the_budgets_of_the_inventories_using_an_approved_policy(client, tenant, people):
    policy = factories.make_approved_policy(tenant, kind="amount", amount=5000)
    factories.make_inventory(tenant, policy=policy, name="Pool A", use_budget_amount=1_000_000, issue_budget_count=300)
    client.force_login(people["second"])
    terms = {str(k): v for k, v in client.get(
        reverse("admin:coupons_couponpolicy_decide", args=[policy.pk])).context["terms"]}
    assert terms["budget"] == "Pool A: issue budget (count) 300, use budget (amount) ₩1,000,000"
    assert terms["discount"] == "₩5,000" and terms["cap"] == "none" and terms["threshold"] == "none"
