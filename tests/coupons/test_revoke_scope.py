"""Issue #16 (seed 002), R-ISS-5: revoking is the back office's — operator scope only, checked against the coupon's
owner — single, batch, and by member list for an inventory or a policy, each member reported."""
from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from core.models import AuditLog
from coupons.models import CouponCode
from tests import factories

pytestmark = pytest.mark.django_db


def issue(codes: list[CouponCode], members: list[str]) -> None:
    """Hand codes[i] to members[i] in one statement (the 1,000-member test would otherwise claim 1,000 times)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE coupons_couponcode c SET status = 'ISSUED', member_id = m.member, issued_at = %s "
            "FROM unnest(%s::bigint[], %s::text[]) AS m(id, member) WHERE c.id = m.id",
            [timezone.now(), [c.pk for c in codes], members])


@pytest.fixture
def held(tenant):
    inventory, codes = factories.make_pool(tenant, size=2)
    issue(codes, ["m-1", "m-2"])
    return inventory, [c.code for c in codes]


def status(code: str) -> str:
    return CouponCode.objects.get(code=code).status


def test_a_member_client_may_not_revoke_single_or_batch(api, held):
    _, (code, _other) = held
    single = api.post(f"/api/v1/coupons/{code}/revoke", {"reason": "fraud"}, format="json")
    assert (single.status_code, single.json()["code"]) == (403, "permission_denied")
    batch = api.post("/api/v1/coupons/batch/revoke", {"items": [{"code": code, "reason": "fraud"}]}, format="json")
    assert (batch.status_code, batch.json()["code"]) == (403, "permission_denied")
    by_list = api.post("/api/v1/revocations", {"inventory": held[0].public_id, "member_ids": ["m-1"],
                                               "reason": "fraud"}, format="json")
    assert (by_list.status_code, by_list.json()["code"]) == (403, "permission_denied")
    korean = api.post(f"/api/v1/coupons/{code}/revoke", {"reason": "fraud"}, format="json",
                      HTTP_ACCEPT_LANGUAGE="ko")
    assert korean.json()["message"] == "이 엔드포인트는 운영자(operator) 권한 범위의 API 클라이언트만 사용할 수 있습니다."
    assert status(code) == "ISSUED"
    assert not AuditLog.objects.filter(action__startswith="coupon.revoke").exists()
    release = api.post("/api/v1/coupons/batch/release", {"items": [{"code": code, "order_id": "o-1"}]},
                       format="json")
    assert release.status_code == 200  # the member app keeps its other batch actions


def test_revoking_another_members_coupon_is_403_not_owner_and_changes_nothing(operator_api, held):
    _, (code, _other) = held
    wrong = operator_api.post(f"/api/v1/coupons/{code}/revoke", {"reason": "fraud", "member_id": "m-2"},
                              format="json")
    assert (wrong.status_code, wrong.json()["code"]) == (403, "not_owner")
    assert status(code) == "ISSUED"
    right = operator_api.post(f"/api/v1/coupons/{code}/revoke", {"reason": "fraud", "member_id": "m-1"},
                              format="json")
    assert right.status_code == 200 and right.json()["coupon"]["status"] == "REVOKED"
    assert AuditLog.objects.get(action="coupon.revoke").after == {"status": "REVOKED", "reason": "fraud"}


def test_a_batch_revoke_item_of_another_member_is_reported_and_the_others_run(operator_api, held):
    _, (first, second) = held
    response = operator_api.post("/api/v1/coupons/batch/revoke", {"items": [
        {"code": first, "reason": "fraud", "member_id": "m-2"},
        {"code": second, "reason": "fraud", "member_id": "m-2"}]}, format="json")
    assert [(r["ok"], r.get("error", {}).get("code")) for r in response.json()["results"]] == [
        (False, "not_owner"), (True, None)]
    assert (status(first), status(second)) == ("ISSUED", "REVOKED")


def test_revoking_a_thousand_members_reports_each_member(operator_api, tenant):
    inventory, codes = factories.make_pool(tenant, size=1000)
    members = [f"m-{i:04d}" for i in range(1000)]
    issue(codes[:999], members[:999])  # m-0999 holds nothing
    locked = codes[500]
    CouponCode.objects.filter(pk=locked.pk).update(status="LOCKED", locked_order_id="o-9", locked_at=timezone.now())
    response = operator_api.post("/api/v1/revocations", {"inventory": inventory.public_id, "member_ids": members,
                                                         "reason": "fraud ring"}, format="json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["member_id"] for r in results] == members
    by_member = {r["member_id"]: r for r in results}
    assert by_member["m-0999"] == {"member_id": "m-0999", "ok": False, "revoked": [], "errors": [
        {"coupon": None, "code": "not_found", "message": "The member holds no coupon here that can be revoked."}]}
    assert by_member["m-0500"]["ok"] is False
    assert by_member["m-0500"]["errors"] == [{"coupon": locked.code, "code": "locked_by_other_order",
                                              "message": "This coupon is locked to an order; release it first."}]
    assert all(by_member[m]["ok"] and by_member[m]["revoked"] == [codes[i].code]
               for i, m in enumerate(members[:999]) if i != 500)
    assert CouponCode.objects.filter(inventory=inventory, status="REVOKED").count() == 998
    assert CouponCode.objects.get(pk=locked.pk).status == "LOCKED"
    assert AuditLog.objects.filter(action="coupon.revoke").count() == 998
    summary = AuditLog.objects.get(action="coupon.revoke_members")
    assert (summary.after["members"], summary.after["revoked"], summary.after["failed_members"]) == (1000, 998, 2)


def test_revoking_by_policy_takes_the_coupons_of_all_its_inventories_and_nothing_of_others(operator_api, tenant):
    policy = factories.make_approved_policy(tenant)
    first, first_codes = factories.make_pool(tenant, size=1, policy=policy)
    second, second_codes = factories.make_pool(tenant, size=1, policy=policy)
    _elsewhere, other_codes = factories.make_pool(tenant, size=1)
    issue(first_codes + second_codes + other_codes, ["m-1", "m-1", "m-1"])
    response = operator_api.post("/api/v1/revocations", {"policy": policy.public_id, "member_ids": ["m-1", "m-1"],
                                                         "reason": "policy withdrawn"}, format="json")
    assert response.json()["results"] == [{"member_id": "m-1", "ok": True, "errors": [],
                                           "revoked": [first_codes[0].code, second_codes[0].code]}]
    assert status(other_codes[0].code) == "ISSUED"


@pytest.mark.parametrize("body, http, code", [
    ({"member_ids": ["m-1"], "reason": "x"}, 400, "invalid"),
    ({"inventory": "INV", "policy": "POL", "member_ids": ["m-1"], "reason": "x"}, 400, "invalid"),
    ({"inventory": "INV", "member_ids": [], "reason": "x"}, 400, "invalid"),
    ({"inventory": "INV", "member_ids": [f"m-{i}" for i in range(1001)], "reason": "x"}, 400, "invalid"),
    ({"inventory": "INV", "member_ids": ["m-1"], "reason": " "}, 400, "invalid"),
    ({"inventory": "INV", "member_ids": ["m-1"]}, 400, "invalid"),
    ({"inventory": "NOSUCHINVENTORY1", "member_ids": ["m-1"], "reason": "x"}, 404, "not_found"),
    ({"policy": "NOSUCHPOLICY0001", "member_ids": ["m-1"], "reason": "x"}, 404, "not_found"),
])
def test_a_bad_revocation_request_is_refused_and_revokes_nothing(operator_api, held, body, http, code):
    inventory, codes = held
    body = {k: (inventory.public_id if v == "INV" else v) for k, v in body.items()}
    response = operator_api.post("/api/v1/revocations", body, format="json")
    assert (response.status_code, response.json()["code"]) == (http, code)
    assert [status(c) for c in codes] == ["ISSUED", "ISSUED"]


def test_another_tenants_inventory_is_not_found(operator_api, other_tenant):
    inventory, codes = factories.make_pool(other_tenant, size=1)
    issue(codes, ["m-1"])
    response = operator_api.post("/api/v1/revocations", {"inventory": inventory.public_id, "member_ids": ["m-1"],
                                                         "reason": "x"}, format="json")
    assert response.status_code == 404
    assert status(codes[0].code) == "ISSUED"
