"""Issue #20: four eyes for large distributions. At or above the tenant's threshold a distribution waits for an
approver and reserves nothing; another user with the approver role carries it out (once, even when two approve at
the same moment) or rejects it with a reason, which changes nothing. Below the threshold, or with none, today's
behaviour exactly."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from core.approvals import AlreadyDecided, ApproverRoleRequired, ReasonRequired, RequesterCannotDecide
from core.audit import Actor
from core.models import AuditLog
from coupons.services import issue as issuing
from coupons.models import CouponCode, CouponIssue
from partners import distribution
from partners.models import Distribution
from partners.services import partner_create
from tests import factories
from tests.coupons.concurrency import race
from tests.partners.test_distributions import distribute

pytestmark = pytest.mark.django_db

THRESHOLD = 10


@pytest.fixture
def world(tenant):
    tenant.distribution_approval_threshold = THRESHOLD
    tenant.save(update_fields=["distribution_approval_threshold"])
    inventory = factories.make_inventory(tenant, total_quantity=1000, per_member_limit=1)
    factories.make_codes(factories.make_batch(inventory, quantity=30), 30)
    partner = partner_create(tenant=tenant, name="GS25 stores", code="GS25", actor=factories.TEST_ACTOR)
    return inventory, partner


@pytest.fixture
def people(tenant):
    return {"operator": factories.make_operator(tenant, username="op-kim"),
            "approver": factories.make_approver(tenant, username="ap-lee"),
            "viewer": factories.make_user(tenant=tenant, role="viewer", username="vw-park")}


def ask(tenant, inventory, partner, user, quantity=12) -> Distribution:
    return distribution.distribution_create(tenant=tenant, inventory=inventory, partner=partner, quantity=quantity,
                                            actor=Actor.user(user), user=user)


def reserved(dist: Distribution) -> int:
    return CouponCode.objects.filter(distribution_id=dist.pk).count()


@pytest.mark.parametrize("quantity, waits", [(THRESHOLD - 1, False), (THRESHOLD, True), (THRESHOLD + 1, True)])
def test_the_threshold_below_at_and_above(tenant, world, quantity, waits):
    inventory, _partner = world
    response = distribute(factories.make_operator_api(tenant), inventory, quantity=quantity)
    body = response.json()
    assert response.status_code == (202 if waits else 201)
    assert body["status"] == ("awaiting_approval" if waits else "distributed")
    assert body["quantity"] == quantity
    assert body["codes"]["reserved"] == (0 if waits else quantity)
    dist = Distribution.objects.get(public_id=body["id"])
    assert reserved(dist) == (0 if waits else quantity)
    action = "distribution.request" if waits else "distribution.create"
    assert AuditLog.objects.filter(action=action, object_id=str(dist.pk)).count() == 1


def test_no_threshold_is_todays_behaviour(tenant, world):
    inventory, _partner = world
    tenant.distribution_approval_threshold = None
    tenant.save(update_fields=["distribution_approval_threshold"])
    response = distribute(factories.make_operator_api(tenant), inventory, quantity=25)
    assert response.status_code == 201 and response.json()["codes"]["reserved"] == 25


def test_a_whole_batch_counts_its_available_codes_against_the_threshold(tenant, world, people):
    inventory, partner = world
    batch = inventory.batches.get()
    dist = distribution.distribution_create(tenant=tenant, inventory=inventory, partner=partner, quantity=None,
                                            batch=batch, actor=Actor.user(people["operator"]),
                                            user=people["operator"])
    assert (dist.status, dist.quantity, reserved(dist)) == ("awaiting_approval", 30, 0)
    distribution.distribution_approve(distribution=dist, user=people["approver"])
    assert reserved(dist) == 30


def test_a_waiting_distribution_reserves_nothing_and_pool_claims_still_take_the_codes(tenant, world, people):
    inventory, partner = world
    dist = ask(tenant, inventory, partner, people["operator"], quantity=30)
    assert CouponCode.objects.filter(inventory=inventory, status="AVAILABLE").count() == 30
    for i in range(25):  # members claim from the pool while it waits
        issuing.issue_from_pool(inventory=inventory, member_id=f"m-{i}", via=CouponIssue.Via.INVENTORY,
                                ctx=issuing.RequestContext())
    assert CouponIssue.objects.filter(inventory=inventory).count() == 25
    # Approved now, it needs 30 codes and 5 are left: refused, nothing reserved, still waiting.
    with pytest.raises(distribution.NotEnoughCodes):
        distribution.distribution_approve(distribution=dist, user=people["approver"])
    dist.refresh_from_db()
    assert (dist.status, dist.decided_by_id, reserved(dist)) == ("awaiting_approval", None, 0)
    assert not AuditLog.objects.filter(action="distribution.approve").exists()


def test_another_approver_carries_it_out_in_one_go_and_the_file_is_downloadable(tenant, world, people):
    inventory, partner = world
    api = factories.make_operator_api(tenant)
    dist = ask(tenant, inventory, partner, people["operator"])
    refused = api.get(f"/api/v1/distributions/{dist.public_id}/codes")
    assert refused.status_code == 409 and refused.json()["code"] == "distribution_not_distributed"
    distribution.distribution_approve(distribution=dist, user=people["approver"])
    dist.refresh_from_db()
    assert (dist.status, dist.decided_by, reserved(dist)) == ("distributed", people["approver"], 12)
    assert dist.decided_at is not None
    file = api.get(f"/api/v1/distributions/{dist.public_id}/codes")
    assert file.status_code == 200
    assert len(b"".join(file.streaming_content).decode().split()) == 1 + 12
    audit = AuditLog.objects.get(action="distribution.approve")
    assert (audit.actor_label, audit.after["quantity"], audit.before["status"]) == (
        "ap-lee", 12, "awaiting_approval")


def test_the_requester_cannot_approve_or_reject_even_with_the_approver_role(tenant, world, people):
    inventory, partner = world
    both = factories.make_approver(tenant, username="op-and-ap")
    both.groups.add(people["operator"].groups.get())
    dist = ask(tenant, inventory, partner, both)
    with pytest.raises(RequesterCannotDecide) as refused:
        distribution.distribution_approve(distribution=dist, user=both)
    assert refused.value.code == "self_approval"
    with pytest.raises(RequesterCannotDecide):
        distribution.distribution_reject(distribution=dist, user=both, reason="no")
    dist.refresh_from_db()
    assert (dist.status, reserved(dist)) == ("awaiting_approval", 0)


def test_the_database_refuses_a_decider_who_is_the_requester(tenant, world, people):
    inventory, partner = world
    dist = ask(tenant, inventory, partner, people["operator"])
    with pytest.raises(IntegrityError, match="distribution_decider_not_requester"), transaction.atomic():
        Distribution.objects.filter(pk=dist.pk).update(decided_by=people["operator"])


@pytest.mark.parametrize("who", ["operator_other", "viewer"])
def test_only_the_approver_role_decides(tenant, world, people, who):
    inventory, partner = world
    dist = ask(tenant, inventory, partner, people["operator"])
    user = people["viewer"] if who == "viewer" else factories.make_operator(tenant)
    with pytest.raises(ApproverRoleRequired) as refused:
        distribution.distribution_approve(distribution=dist, user=user)
    assert (refused.value.code, refused.value.status) == ("approver_role_required", 403)
    dist.refresh_from_db()
    assert (dist.status, reserved(dist)) == ("awaiting_approval", 0)


def test_a_rejection_needs_a_reason_and_changes_nothing_else(tenant, world, people):
    inventory, partner = world
    dist = ask(tenant, inventory, partner, people["operator"])
    before = list(CouponCode.objects.filter(inventory=inventory).order_by("id").values_list("status", flat=True))
    for empty in ("", "   ", None):
        with pytest.raises(ReasonRequired):
            distribution.distribution_reject(distribution=dist, user=people["approver"], reason=empty)
    dist.refresh_from_db()
    assert dist.status == "awaiting_approval"
    distribution.distribution_reject(distribution=dist, user=people["approver"], reason="Too many for one store")
    dist.refresh_from_db()
    assert (dist.status, dist.rejection_reason, dist.decided_by) == ("rejected", "Too many for one store",
                                                                      people["approver"])
    after = list(CouponCode.objects.filter(inventory=inventory).order_by("id").values_list("status", flat=True))
    assert after == before and reserved(dist) == 0
    assert AuditLog.objects.get(action="distribution.reject").after["reason"] == "Too many for one store"
    with pytest.raises(AlreadyDecided):  # a later approval carries nothing out
        distribution.distribution_approve(distribution=dist, user=people["approver"])
    assert reserved(dist) == 0


def test_approving_twice_carries_it_out_once(tenant, world, people):
    inventory, partner = world
    dist = ask(tenant, inventory, partner, people["operator"])
    distribution.distribution_approve(distribution=dist, user=people["approver"])
    with pytest.raises(AlreadyDecided) as again:
        distribution.distribution_approve(distribution=dist,
                                          user=factories.make_approver(tenant))
    assert (again.value.code, again.value.status) == ("already_decided", 409)
    assert reserved(dist) == 12 and AuditLog.objects.filter(action="distribution.approve").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")
def test_two_approvers_at_the_same_moment_carry_it_out_once():
    """Two approvers, two connections, released together: one reserves the codes, the other is told it is
    decided. Without the compare-and-set on the status both would reserve (24 codes for a distribution of 12)."""
    tenant = factories.make_tenant(distribution_approval_threshold=5)
    inventory = factories.make_inventory(tenant, total_quantity=100)
    factories.make_codes(factories.make_batch(inventory, quantity=50), 50)
    partner = partner_create(tenant=tenant, name="GS25", code="GS25", actor=factories.TEST_ACTOR)
    operator = factories.make_operator(tenant)
    approvers = [factories.make_approver(tenant), factories.make_approver(tenant)]
    dist = ask(tenant, inventory, partner, operator)

    def approve(user):
        try:
            distribution.distribution_approve(distribution=Distribution.objects.get(pk=dist.pk), user=user)
            return "approved"
        except AlreadyDecided:
            return "already_decided"

    outcomes = race(approve, approvers, threads=2)
    assert sorted(outcomes) == ["already_decided", "approved"]
    assert reserved(dist) == 12
    assert AuditLog.objects.filter(action="distribution.approve", object_id=str(dist.pk)).count() == 1


def test_the_console_says_it_awaits_approval_and_the_decide_page_shows_the_terms(client, tenant, world, people):
    inventory, partner = world
    tenant.language = "ko"  # the console speaks the tenant's language to its users
    tenant.save(update_fields=["language"])
    client.force_login(people["operator"])
    response = client.post("/admin/partners/distribution/distribute/",
                           {"inventory": inventory.pk, "partner": partner.pk, "quantity": 20}, follow=True)
    dist = Distribution.objects.get()
    assert dist.status == "awaiting_approval" and reserved(dist) == 0
    page = response.content.decode()
    assert "결재를 기다립니다" in page and 'id="distribution-awaiting"' in page and 'id="download-csv"' not in page

    client.force_login(people["approver"])
    decide = f"/admin/partners/distribution/{dist.pk}/decide/"
    page = client.get(decide).content.decode()
    for text in ("GS25 stores", inventory.name, "20", 'value="approve"', 'value="reject"'):
        assert text in page, text
    # Rejecting without a reason: a message in the reader's language, nothing changed, never a 500.
    refused = client.post(decide, {"decision": "reject", "reason": ""}, follow=True)
    assert refused.status_code == 200
    assert "반려 사유를 입력하세요." in refused.content.decode()
    dist.refresh_from_db()
    assert dist.status == "awaiting_approval"
    assert client.post(decide, {"decision": "nonsense"}, follow=True).status_code == 200
    done = client.post(decide, {"decision": "approve", "next": "/admin/coupons/couponpolicy/approvals/"})
    assert done.status_code == 302 and done["Location"] == "/admin/coupons/couponpolicy/approvals/"
    dist.refresh_from_db()
    assert dist.status == "distributed" and reserved(dist) == 20
    again = client.post(decide, {"decision": "approve"}, follow=True)
    assert again.status_code == 200 and reserved(dist) == 20


def test_the_requester_sees_the_decide_page_without_the_buttons(client, tenant, world, people):
    inventory, partner = world
    both = factories.make_approver(tenant, username="op-and-ap")
    both.groups.add(people["operator"].groups.get())
    dist = ask(tenant, inventory, partner, both)
    client.force_login(both)
    page = client.get(f"/admin/partners/distribution/{dist.pk}/decide/").content.decode()
    assert 'id="approval-not-decidable"' in page and 'value="approve"' not in page
    client.post(f"/admin/partners/distribution/{dist.pk}/decide/", {"decision": "approve"})
    dist.refresh_from_db()
    assert dist.status == "awaiting_approval"


def test_another_tenants_approver_cannot_open_or_decide(client, tenant, other_tenant, world, people):
    inventory, partner = world
    dist = ask(tenant, inventory, partner, people["operator"])
    client.force_login(factories.make_approver(other_tenant))
    assert client.get(f"/admin/partners/distribution/{dist.pk}/decide/").status_code == 404
    assert client.post(f"/admin/partners/distribution/{dist.pk}/decide/", {"decision": "approve"}).status_code == 404
    dist.refresh_from_db()
    assert dist.status == "awaiting_approval"
