"""Issue #20: four eyes for large grants. To at least the tenant's threshold of members a grant waits for an
approver and issues nothing; another user with the approver role lets it run (its job queued once the decision
commits, once even when two approve at the same moment) or rejects it with a reason, which issues nothing."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from core.approvals import AlreadyDecided, ApproverRoleRequired, ReasonRequired, RequesterCannotDecide
from core.models import AuditLog
from coupons.services import issue as issuing
from coupons.services import grant as grants
from coupons.models import CouponGrant, CouponGrantMember, CouponIssue
from tests import factories
from tests.coupons.concurrency import race

pytestmark = pytest.mark.django_db

THRESHOLD = 5


@pytest.fixture
def operator_api(tenant):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {factories.make_client(tenant, scope='operator')[1]}")
    return client


@pytest.fixture
def pool(tenant):
    tenant.grant_approval_threshold = THRESHOLD
    tenant.save(update_fields=["grant_approval_threshold"])
    inventory, _ = factories.make_pool(tenant, size=20)
    return inventory


@pytest.fixture
def people(tenant):
    return {"operator": factories.make_operator(tenant, username="op-kim"),
            "approver": factories.make_approver(tenant, username="ap-lee")}


def members(n: int) -> list[str]:
    return [f"m-{i}" for i in range(n)]


def ask(tenant, inventory, user, n=8) -> CouponGrant:
    return grants.grant_create(tenant=tenant, inventory_public_id=inventory.public_id, member_ids=members(n),
                                ctx=issuing.RequestContext(operator=user), force_async=True).grant


@pytest.mark.parametrize("n, waits", [(THRESHOLD - 1, False), (THRESHOLD, True), (THRESHOLD + 1, True)])
def test_the_threshold_below_at_and_above(operator_api, tenant, pool, n, waits):
    response = operator_api.post("/api/v1/grants", {"inventory": pool.public_id, "member_ids": members(n)},
                                 format="json")
    if waits:
        assert response.status_code == 202
        body = response.json()
        assert (body["status"], body["total"]) == ("awaiting_approval", n)
        assert body["id"] == body["job"]
        assert CouponIssue.objects.count() == 0
        grant = CouponGrant.objects.get(public_id=body["id"])
        assert grant.status == "AWAITING_APPROVAL" and grant.members.count() == n
        status = operator_api.get(f"/api/v1/grants/{body['job']}").json()
        assert (status["status"], status["issued"]) == ("AWAITING_APPROVAL", 0)
        assert AuditLog.objects.filter(action="grant.request").count() == 1
    else:
        assert response.status_code == 201 and len(response.json()["issued"]) == n


def test_no_threshold_is_todays_behaviour(operator_api, tenant, pool):
    tenant.grant_approval_threshold = None
    tenant.save(update_fields=["grant_approval_threshold"])
    response = operator_api.post("/api/v1/grants", {"inventory": pool.public_id, "member_ids": members(12)},
                                 format="json")
    assert response.status_code == 201 and len(response.json()["issued"]) == 12


def test_another_approver_lets_it_run_and_the_coupons_are_issued(tenant, pool, people,
                                                                  django_capture_on_commit_callbacks):
    grant = ask(tenant, pool, people["operator"])
    assert CouponIssue.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True) as queued:  # the job starts once the approval commits
        grants.grant_approve(grant=grant, user=people["approver"])
    assert [cb.__qualname__ for cb in queued].count("_queue_grant.<locals>.<lambda>") == 1
    grant.refresh_from_db()
    assert (grant.status, grant.issued, grant.decided_by) == ("COMPLETED", 8, people["approver"])
    assert sorted(CouponIssue.objects.values_list("member_id", flat=True)) == sorted(members(8))
    assert AuditLog.objects.get(action="grant.approve").after["members"] == 8


def test_a_waiting_grant_is_not_run_by_a_stray_job(tenant, pool, people):
    grant = ask(tenant, pool, people["operator"])
    grants.grant_process(grant_id=grant.pk, tenant_id=grant.tenant_id)  # e.g. the sweeper, or a job queued by mistake
    grant.refresh_from_db()
    assert grant.status == "AWAITING_APPROVAL" and CouponIssue.objects.count() == 0


def test_the_requester_cannot_decide_even_with_the_approver_role(tenant, pool, people):
    both = factories.make_approver(tenant, username="op-and-ap")
    both.groups.add(people["operator"].groups.get())
    grant = ask(tenant, pool, both)
    with pytest.raises(RequesterCannotDecide):
        grants.grant_approve(grant=grant, user=both)
    with pytest.raises(RequesterCannotDecide):
        grants.grant_reject(grant=grant, user=both, reason="no")
    grant.refresh_from_db()
    assert grant.status == "AWAITING_APPROVAL" and CouponIssue.objects.count() == 0


def test_the_database_refuses_a_decider_who_is_the_requester(tenant, pool, people):
    grant = ask(tenant, pool, people["operator"])
    with pytest.raises(IntegrityError, match="grant_decider_not_requester"), transaction.atomic():
        CouponGrant.objects.filter(pk=grant.pk).update(decided_by=people["operator"])


def test_an_operator_without_the_approver_role_cannot_decide(tenant, pool, people):
    grant = ask(tenant, pool, people["operator"])
    with pytest.raises(ApproverRoleRequired):
        grants.grant_approve(grant=grant, user=factories.make_operator(tenant))
    grant.refresh_from_db()
    assert grant.status == "AWAITING_APPROVAL"


def test_a_rejection_needs_a_reason_and_issues_nothing(tenant, pool, people, django_capture_on_commit_callbacks):
    grant = ask(tenant, pool, people["operator"])
    with pytest.raises(ReasonRequired):
        grants.grant_reject(grant=grant, user=people["approver"], reason=" ")
    with django_capture_on_commit_callbacks(execute=True) as queued:
        grants.grant_reject(grant=grant, user=people["approver"], reason="Wrong list")
    assert not any("_queue_grant" in cb.__qualname__ for cb in queued)
    grant.refresh_from_db()
    assert (grant.status, grant.rejection_reason, grant.issued) == ("REJECTED", "Wrong list", 0)
    assert CouponIssue.objects.count() == 0
    assert set(CouponGrantMember.objects.filter(grant=grant).values_list("status", flat=True)) == {"PENDING"}
    with pytest.raises(AlreadyDecided):
        grants.grant_approve(grant=grant, user=people["approver"])
    assert CouponIssue.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")
def test_two_approvers_at_the_same_moment_queue_it_once(settings):
    settings.JOBS_SYNC = True
    tenant = factories.make_tenant(grant_approval_threshold=3)
    inventory, _ = factories.make_pool(tenant, size=20)
    grant = ask(tenant, inventory, factories.make_operator(tenant), n=6)
    approvers = [factories.make_approver(tenant), factories.make_approver(tenant)]

    def approve(user):
        try:
            grants.grant_approve(grant=CouponGrant.objects.get(pk=grant.pk), user=user)
            return "approved"
        except AlreadyDecided:
            return "already_decided"

    assert sorted(race(approve, approvers, threads=2)) == ["already_decided", "approved"]
    grant.refresh_from_db()
    assert (grant.status, grant.issued) == ("COMPLETED", 6)
    assert CouponIssue.objects.filter(grant=grant).count() == 6
    assert AuditLog.objects.filter(action="grant.approve", object_id=str(grant.pk)).count() == 1


def test_the_console_grant_says_it_awaits_approval_and_the_decide_page_shows_the_terms(client, tenant, pool,
                                                                                       people):
    from django.core.files.uploadedfile import SimpleUploadedFile

    tenant.language = "ko"
    tenant.save(update_fields=["language"])
    client.force_login(people["operator"])
    upload = SimpleUploadedFile("members.csv", "\n".join(members(7)).encode())
    response = client.post(f"/admin/coupons/couponinventory/{pool.pk}/grant/", {"members_file": upload},
                           follow=True)
    grant = CouponGrant.objects.get()
    assert grant.status == "AWAITING_APPROVAL" and CouponIssue.objects.count() == 0
    assert "결재를 기다립니다" in response.content.decode()

    client.force_login(people["approver"])
    decide = f"/admin/coupons/coupongrant/{grant.pk}/decide/"
    page = client.get(decide).content.decode()
    for text in (pool.name, pool.policy.name, "m-0", 'value="approve"', 'value="reject"'):
        assert text in page, text
    refused = client.post(decide, {"decision": "reject", "reason": ""}, follow=True)
    assert "반려 사유를 입력하세요." in refused.content.decode()
    client.post(decide, {"decision": "reject", "reason": "명단 확인 필요"})
    grant.refresh_from_db()
    assert (grant.status, grant.rejection_reason) == ("REJECTED", "명단 확인 필요")
    assert CouponIssue.objects.count() == 0
