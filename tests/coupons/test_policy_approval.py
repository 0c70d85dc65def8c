"""R-POL-5: DRAFT → PENDING → APPROVED/REJECTED; the approver is not the author; approved means frozen —
refused by the console, the service and the database."""
from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.urls import reverse

from core.exceptions import InvalidState, PermissionDenied
from core.models import AuditLog
from coupons import services
from coupons.exceptions import PolicyNotApproved, PolicyNotEditable, SelfApproval
from coupons.models import CouponInventory, CouponPolicy
from tests import factories


@pytest.fixture
def author(tenant):
    return factories.make_operator(tenant)


@pytest.fixture
def draft(tenant, author):
    return factories.make_draft_policy(tenant, author=author)


def test_policy_goes_from_draft_to_pending_to_approved_with_audit_rows(draft, author, approver_user):
    services.policy_submit(policy=draft, actor_user=author)
    approved = services.policy_approve(policy=draft, actor_user=approver_user)
    assert approved.status == "APPROVED"
    assert approved.decided_by == approver_user
    actions = list(AuditLog.objects.filter(object_type="coupons.CouponPolicy", object_id=str(draft.pk))
                   .order_by("id").values_list("action", flat=True))
    assert actions == ["policy.create", "policy.submit", "policy.approve"]


def test_author_cannot_approve_their_own_policy_even_with_the_approver_role(tenant, draft, author):
    from django.contrib.auth.models import Group

    author.groups.add(Group.objects.get(name="approver"))
    author = type(author).objects.get(pk=author.pk)  # fresh permission cache
    services.policy_submit(policy=draft, actor_user=author)
    with pytest.raises(SelfApproval):
        services.policy_approve(policy=draft, actor_user=author)
    assert CouponPolicy.objects.get(pk=draft.pk).status == "PENDING"


def test_database_refuses_an_approval_by_the_author(draft, author):
    with pytest.raises(IntegrityError, match="policy_decider_not_author"), transaction.atomic():
        CouponPolicy.objects.filter(pk=draft.pk).update(status="APPROVED", decided_by=author,
                                                         decided_at=draft.created_at)


def test_operator_without_approver_role_cannot_approve(tenant, draft, author):
    services.policy_submit(policy=draft, actor_user=author)
    with pytest.raises(PermissionDenied):
        services.policy_approve(policy=draft, actor_user=factories.make_operator(tenant))
    assert CouponPolicy.objects.get(pk=draft.pk).status == "PENDING"


def test_reject_needs_a_reason_and_returns_the_policy_to_its_author(draft, author, approver_user):
    services.policy_submit(policy=draft, actor_user=author)
    with pytest.raises(Exception, match="Say why"):
        services.policy_reject(policy=draft, actor_user=approver_user, reason="  ")
    rejected = services.policy_reject(policy=draft, actor_user=approver_user, reason="Cap too high")
    assert (rejected.status, rejected.rejection_reason) == ("REJECTED", "Cap too high")
    rejected.name = "Fixed name"
    again = services.policy_save_draft(policy=rejected, actor_user=author)
    assert (again.status, again.rejection_reason, again.decided_by) == ("DRAFT", "", None)


def test_approving_a_draft_that_was_never_submitted_is_refused(draft, approver_user):
    with pytest.raises(InvalidState):
        services.policy_approve(policy=draft, actor_user=approver_user)


# --- approved policy: refused at all three levels --------------------------------------------------------------

def test_service_refuses_to_change_an_approved_policy(approved_policy, operator_user):
    approved_policy.amount = 1
    with pytest.raises(PolicyNotEditable):
        services.policy_save_draft(policy=approved_policy, actor_user=operator_user)
    assert CouponPolicy.objects.get(pk=approved_policy.pk).amount == 5000


def test_database_refuses_to_update_or_delete_an_approved_policy(approved_policy):
    with pytest.raises(DatabaseError, match="approved and cannot be changed"), transaction.atomic():
        CouponPolicy.objects.filter(pk=approved_policy.pk).update(amount=1)
    with pytest.raises(DatabaseError, match="approved and cannot be changed"), transaction.atomic(), \
            connection.cursor() as cur:
        cur.execute("DELETE FROM coupons_couponpolicy WHERE id = %s", [approved_policy.pk])
    assert CouponPolicy.objects.get(pk=approved_policy.pk).amount == 5000


def test_console_shows_an_approved_policy_read_only_and_refuses_a_post(client, tenant, approved_policy,
                                                                       operator_user):
    client.force_login(operator_user)
    url = reverse("admin:coupons_couponpolicy_change", args=[approved_policy.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="amount"' not in page.content  # no editable input
    assert b"5000" in page.content
    response = client.post(url, {"name": "hacked", "kind": "amount", "amount": "1"})
    assert response.status_code == 403
    assert CouponPolicy.objects.get(pk=approved_policy.pk).name == approved_policy.name


def test_console_approval_flow_with_two_users(client, tenant, author, approver_user):
    client.force_login(author)
    add = client.post(reverse("admin:coupons_couponpolicy_add"), {
        "name": "Spring 3,000 off", "kind": "threshold", "amount": "3000", "threshold": "30000",
        "validity_type": "fixed", "valid_from_0": "2026-01-01", "valid_from_1": "00:00:00",
        "valid_until_0": "2027-01-01", "valid_until_1": "00:00:00", "stacking_group": "merchant",
        "audience": "all"})
    assert add.status_code == 302, add.content.decode()[:2000]
    policy = CouponPolicy.objects.get(name="Spring 3,000 off")
    assert (policy.tenant, policy.created_by, policy.status) == (tenant, author, "DRAFT")
    decide = reverse("admin:coupons_couponpolicy_decide", args=[policy.pk])
    client.post(decide, {"decision": "submit"})
    client.post(decide, {"decision": "approve"})  # the author tries; refused with a message
    assert CouponPolicy.objects.get(pk=policy.pk).status == "PENDING"
    client.force_login(approver_user)
    client.post(decide, {"decision": "approve"})
    assert CouponPolicy.objects.get(pk=policy.pk).status == "APPROVED"


def test_console_refuses_threshold_not_above_amount_with_a_clear_message(client, author):
    client.force_login(author)
    response = client.post(reverse("admin:coupons_couponpolicy_add"), {
        "name": "Bad", "kind": "threshold", "amount": "3000", "threshold": "3000", "validity_type": "fixed",
        "valid_from_0": "2026-01-01", "valid_from_1": "00:00:00", "valid_until_0": "2027-01-01",
        "valid_until_1": "00:00:00", "stacking_group": "merchant", "audience": "all"})
    assert response.status_code == 200
    assert "The threshold must be greater than the discount amount" in response.content.decode()
    assert not CouponPolicy.objects.filter(name="Bad").exists()


# --- only approved policies back an inventory ----------------------------------------------------------------

def test_service_refuses_an_inventory_on_a_draft_policy(tenant, draft):
    with pytest.raises(PolicyNotApproved):
        factories.make_inventory(tenant, policy=draft)
    assert not CouponInventory.objects.exists()


def test_database_refuses_an_inventory_on_a_draft_policy(tenant, draft):
    event = factories.make_event(tenant)
    with pytest.raises(IntegrityError, match="approved policy"), transaction.atomic():
        CouponInventory.objects.create(tenant=tenant, event=event, policy=draft, name="x", total_quantity=1)


def test_database_refuses_an_inventory_mixing_tenants(tenant, other_tenant):
    policy = factories.make_approved_policy(other_tenant)
    event = factories.make_event(tenant)
    with pytest.raises(IntegrityError, match="one tenant"), transaction.atomic():
        CouponInventory.objects.create(tenant=tenant, event=event, policy=policy, name="x", total_quantity=1)
