"""R-ISS-1/2, API.md "Getting coupons": grants — sync up to 1,000, a job above; each member once."""
from __future__ import annotations

import pytest

from coupons.services import issue as issuing
from coupons.services import grant as grants
from coupons.models import CouponGrant, CouponGrantMember, CouponIssue
from tests import factories


def grant(api, inventory, members):
    return api.post("/api/v1/grants", {"inventory": inventory.public_id, "member_ids": members}, format="json")


def test_a_small_grant_answers_issued_and_failed_at_once(operator_api, tenant):
    inventory, _ = factories.make_pool(tenant, size=3)
    issuing.issue_from_pool(inventory=inventory, member_id="has-it", via="grant", ctx=issuing.RequestContext())
    response = grant(operator_api, inventory, ["a", "b", "a", "has-it"])
    assert response.status_code == 201
    body = response.json()
    assert sorted(c["member_id"] for c in body["issued"]) == ["a", "b"]  # "a" listed twice, granted once
    assert body["failed"] == [{"member_id": "has-it", "code": "already_claimed"}]
    record = CouponGrant.objects.get()
    assert (record.status, record.total, record.processed, record.issued, record.failed) == ("COMPLETED", 3, 3, 2, 1)


def test_a_grant_past_the_pool_reports_sold_out_for_the_rest(operator_api, tenant):
    inventory, _ = factories.make_pool(tenant, size=2)
    body = grant(operator_api, inventory, ["a", "b", "c"]).json()
    assert len(body["issued"]) == 2
    assert body["failed"] == [{"member_id": "c", "code": "sold_out"}]


def test_a_large_grant_runs_as_a_job_with_progress(operator_api, tenant, django_capture_on_commit_callbacks):
    inventory, _ = factories.make_pool(tenant, size=1100)
    members = [f"m-{i}" for i in range(1101)]
    with django_capture_on_commit_callbacks(execute=True):  # the job is enqueued when the grant commits
        response = grant(operator_api, inventory, members)
    assert response.status_code == 202
    job = response.json()["job"]
    status = operator_api.get(f"/api/v1/grants/{job}").json()  # jobs run inline in tests
    assert (status["status"], status["total"], status["processed"], status["issued"], status["failed"],
            status["progress"]) == ("COMPLETED", 1101, 1101, 1100, 1, 1.0)
    assert status["failures"] == [{"member_id": "m-1100", "code": "sold_out"}]
    assert CouponIssue.objects.filter(grant__public_id=job).count() == 1100


def test_a_resumed_grant_job_never_issues_a_member_twice(tenant):
    inventory, _ = factories.make_pool(tenant, size=10)
    result = grants.grant_create(tenant=tenant, inventory_public_id=inventory.public_id,
                                  member_ids=[f"m-{i}" for i in range(5)], ctx=issuing.RequestContext(),
                                  force_async=True)
    grant_row = result.grant
    # simulate a worker killed after two members: their issue and their grant row committed together
    for member in CouponGrantMember.objects.filter(grant=grant_row).order_by("id")[:2]:
        coupon = issuing.issue_from_pool(inventory=inventory, member_id=member.member_id, via="grant",
                                         ctx=issuing.RequestContext(), grant=grant_row)
        CouponGrantMember.objects.filter(pk=member.pk).update(status="ISSUED", coupon=coupon)
    CouponGrant.objects.filter(pk=grant_row.pk).update(status="RUNNING", processed=0)
    finished = grants.grant_process(grant_id=grant_row.pk, tenant_id=grant_row.tenant_id)
    assert finished.status == "COMPLETED"
    assert CouponIssue.objects.filter(inventory=inventory).count() == 5
    assert set(CouponGrantMember.objects.filter(grant=grant_row).values_list("status", flat=True)) == {"ISSUED"}


def test_a_member_scope_client_cannot_grant(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=1)
    response = grant(api, inventory, ["a"])
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert not CouponIssue.objects.exists()


@pytest.mark.parametrize("members,message", [([], "member_ids"), ([""], "member_ids"), (["x" * 65], "member_ids")])
def test_bad_member_lists_are_refused(operator_api, tenant, members, message):
    inventory, _ = factories.make_pool(tenant, size=1)
    response = grant(operator_api, inventory, members)
    assert response.status_code == 400 and message in response.json()["message"]


def test_another_tenants_grant_job_is_not_found(operator_api, other_tenant):
    inventory, _ = factories.make_pool(other_tenant, size=1)
    theirs = grants.grant_create(tenant=other_tenant, inventory_public_id=inventory.public_id, member_ids=["a"],
                                  ctx=issuing.RequestContext(), force_async=True).grant
    assert operator_api.get(f"/api/v1/grants/{theirs.public_id}").status_code == 404
