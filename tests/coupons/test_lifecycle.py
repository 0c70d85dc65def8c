"""R-LIFE, R-USE-3/4, API.md "Lifecycle": lock, release, redeem, refund, revoke — single and batch."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditLog
from coupons.services.counters import inventory_counts
from coupons.models import CouponCode, CouponUsage
from tests import factories


@pytest.fixture
def issued(api, tenant):
    """A 10% (cap 5,000) coupon with a 20,000 threshold, issued to m-1."""
    policy = factories.make_approved_policy(tenant, kind="percentage", rate=10, cap=5000, threshold=20000)
    inventory, _ = factories.make_pool(tenant, size=3, policy=policy)
    code = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id},
                    format="json").json()["coupon"]["code"]
    return CouponCode.objects.get(code=code)


def post(api, code, action, **body):
    return api.post(f"/api/v1/coupons/{code}/{action}", body, format="json")


def test_redeem_from_issued_records_the_usage_and_answers_the_discount(api, issued, member_client):
    response = post(api, issued.code, "redeem", member_id="m-1", order_id="o-1",
                    order=factories.order(30_005, shipping_fee=3000), device_id="d-1", ip="10.0.0.7")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["coupon"]["status"] == "USED"
    # 10% of 30,005 = 3,000.5 → 3,000 (KRW rounding unit 10); the order amount includes shipping
    assert (body["usage"]["discount"], body["usage"]["order_amount"]) == (3000, 33_005)
    usage = CouponUsage.objects.get(coupon=issued)
    assert (usage.order_id, usage.order_amount, usage.discount, usage.channel, usage.client, usage.ip,
            usage.device_id, usage.member_id) == ("o-1", 33_005, 3000, "ios", member_client[0], "10.0.0.7", "d-1",
                                                  "m-1")
    assert inventory_counts(issued.inventory_id) == {"issued": 1, "used": 1, "used_discount": 3000}
    assert AuditLog.objects.filter(action="coupon.redeem", object_id=str(issued.pk)).count() == 1


def test_percentage_discount_is_capped(api, issued):
    body = post(api, issued.code, "redeem", member_id="m-1", order_id="o", order=factories.order(900_000, order_id="o")).json()
    assert body["usage"]["discount"] == 5000


def test_lock_validates_against_the_order_and_refuses_below_threshold(api, issued):
    response = post(api, issued.code, "lock", member_id="m-1", order_id="o-1", order=factories.order(19_990))
    assert response.status_code == 422
    assert response.json()["code"] == "not_applicable"
    assert response.json()["details"] == {"reason": "below_threshold"}
    assert CouponCode.objects.get(pk=issued.pk).status == "ISSUED"


def test_lock_then_redeem_with_the_same_order(api, issued):
    locked = post(api, issued.code, "lock", member_id="m-1", order_id="o-1", order=factories.order())
    assert (locked.status_code, locked.json()["coupon"]["status"], locked.json()["coupon"]["locked_order_id"]) == (
        200, "LOCKED", "o-1")
    again = post(api, issued.code, "lock", member_id="m-1", order_id="o-1", order=factories.order())
    assert again.status_code == 200  # same order: a no-op
    other = post(api, issued.code, "redeem", member_id="m-1", order_id="o-2", order=factories.order(order_id="o-2"))
    assert (other.status_code, other.json()["code"]) == (409, "locked_by_other_order")
    redeemed = post(api, issued.code, "redeem", member_id="m-1", order_id="o-1", order=factories.order())
    assert redeemed.status_code == 200
    row = CouponCode.objects.get(pk=issued.pk)
    assert (row.status, row.locked_order_id) == ("USED", None)


def test_release_returns_a_locked_coupon_and_refuses_another_order(api, issued):
    post(api, issued.code, "lock", member_id="m-1", order_id="o-1", order=factories.order())
    wrong = post(api, issued.code, "release", order_id="o-2")
    assert (wrong.status_code, wrong.json()["code"]) == (409, "locked_by_other_order")
    assert post(api, issued.code, "release", order_id="o-1").json()["coupon"]["status"] == "ISSUED"
    twice = post(api, issued.code, "release", order_id="o-1")
    assert (twice.status_code, twice.json()["code"]) == (409, "invalid_state")


def test_a_second_redeem_is_already_used(api, issued):
    post(api, issued.code, "redeem", member_id="m-1", order_id="o-1", order=factories.order())
    response = post(api, issued.code, "redeem", member_id="m-1", order_id="o-2", order=factories.order(order_id="o-2"))
    assert (response.status_code, response.json()["code"]) == (409, "already_used")
    assert CouponUsage.objects.count() == 1


def test_another_members_redeem_is_not_owner(api, issued):
    response = post(api, issued.code, "redeem", member_id="m-2", order_id="o-1", order=factories.order())
    assert (response.status_code, response.json()["code"]) == (403, "not_owner")
    assert not CouponUsage.objects.exists()


def test_a_coupon_past_validity_is_expired_before_the_job_runs(api, issued):
    CouponCode.objects.filter(pk=issued.pk).update(valid_until=timezone.now() - timedelta(seconds=1))
    detail = api.get(f"/api/v1/coupons/{issued.code}").json()
    assert detail["status"] == "EXPIRED"
    response = post(api, issued.code, "redeem", member_id="m-1", order_id="o-1", order=factories.order())
    assert (response.status_code, response.json()["code"]) == (422, "expired")
    assert CouponCode.objects.get(pk=issued.pk).status == "ISSUED"  # the job will write it; the answer is already right


def test_full_refund_returns_the_coupon_partial_refund_does_not(api, issued):
    post(api, issued.code, "redeem", member_id="m-1", order_id="o-1", order=factories.order())
    partial = post(api, issued.code, "refund", order_id="o-1", full_refund=False)
    assert (partial.status_code, partial.json()["returned"], partial.json()["coupon"]["status"]) == (200, False, "USED")
    wrong = post(api, issued.code, "refund", order_id="o-9")
    assert (wrong.status_code, wrong.json()["code"]) == (409, "order_mismatch")
    full = post(api, issued.code, "refund", order_id="o-1")
    assert (full.json()["returned"], full.json()["coupon"]["status"]) == (True, "ISSUED")
    usage = CouponUsage.objects.get(coupon=issued)
    assert usage.refunded_at is not None
    assert inventory_counts(issued.inventory_id)["used"] == 0
    # usable again on a new order, with a new accounting row
    assert post(api, issued.code, "redeem", member_id="m-1", order_id="o-2", order=factories.order(order_id="o-2")).status_code == 200
    assert CouponUsage.objects.filter(coupon=issued).count() == 2


def test_refund_after_validity_ends_leaves_the_coupon_expired(api, issued):
    post(api, issued.code, "redeem", member_id="m-1", order_id="o-1", order=factories.order())
    CouponCode.objects.filter(pk=issued.pk).update(valid_until=timezone.now() - timedelta(minutes=1))
    body = post(api, issued.code, "refund", order_id="o-1").json()
    assert body["coupon"]["status"] == "EXPIRED"
    assert CouponCode.objects.get(pk=issued.pk).status == "EXPIRED"


def test_revoke_needs_a_reason_and_refuses_a_locked_coupon(api, operator_api, issued):
    assert post(operator_api, issued.code, "revoke", reason="").status_code == 400
    post(api, issued.code, "lock", member_id="m-1", order_id="o-1", order=factories.order())
    locked = post(operator_api, issued.code, "revoke", reason="fraud")
    assert (locked.status_code, locked.json()["code"]) == (409, "locked_by_other_order")
    post(api, issued.code, "release", order_id="o-1")
    revoked = post(operator_api, issued.code, "revoke", reason="fraud")
    assert revoked.json()["coupon"]["status"] == "REVOKED"
    entry = AuditLog.objects.get(action="coupon.revoke")
    assert entry.after == {"status": "REVOKED", "reason": "fraud"}


def test_unknown_and_foreign_codes_answer_the_same_404(api, operator_api, other_tenant):
    _, codes = factories.make_pool(other_tenant, size=1)
    foreign = post(operator_api, codes[0].code, "revoke", reason="x")
    missing = post(operator_api, "ZZZZZZZZ", "revoke", reason="x")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert api.get(f"/api/v1/coupons/{codes[0].code}").json() == api.get("/api/v1/coupons/ZZZZZZZZ").json()


@pytest.mark.parametrize("order_override,field", [
    ({"items": []}, "items"),
    ({"items": [{"sku": "S", "unit_price": -1, "quantity": 1}]}, "items"),
    ({"items": [{"sku": "S", "unit_price": 100, "quantity": 0}]}, "items"),
    ({"items": [{"sku": "S", "unit_price": "100", "quantity": 1}]}, "items"),
    ({"items": [{"sku": "S", "unit_price": 1.5, "quantity": 1}]}, "items"),
    ({"items": [{"sku": "S", "unit_price": True, "quantity": 1}]}, "items"),
    ({"items": [{"sku": "S", "unit_price": 10**13, "quantity": 1}]}, "items"),
    ({"shipping_fee": -5}, "shipping_fee"),
    ({"payment_method": "bitcoin"}, "payment_method"),
])
def test_hostile_orders_answer_400_and_change_nothing(api, issued, order_override, field):
    bad = {**factories.order(), **order_override}
    response = post(api, issued.code, "redeem", member_id="m-1", order_id="o-1", order=bad)
    assert response.status_code == 400
    assert field in str(response.json()["details"])
    assert CouponCode.objects.get(pk=issued.pk).status == "ISSUED"


def test_batch_actions_run_each_item_in_its_own_transaction(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=3, per_member_limit=3)
    codes = [api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id}, format="json")
             .json()["coupon"]["code"] for _ in range(3)]
    response = api.post("/api/v1/coupons/batch/redeem", {"items": [
        {"code": codes[0], "member_id": "m-1", "order_id": "o-1", "order": factories.order()},
        {"code": codes[1], "member_id": "m-2", "order_id": "o-1", "order": factories.order()},
        {"code": "NOPE", "member_id": "m-1", "order_id": "o-1", "order": factories.order()},
        {"code": codes[2], "member_id": "m-1", "order_id": "o-1", "order": factories.order()},
    ]}, format="json")
    assert response.status_code == 200
    assert [(r["ok"], r.get("error", {}).get("code")) for r in response.json()["results"]] == [
        (True, None), (False, "not_owner"), (False, "not_found"), (True, None)]
    assert CouponUsage.objects.count() == 2


def test_a_batch_item_missing_a_field_refuses_the_whole_batch_before_any_effect(api, issued):
    response = api.post("/api/v1/coupons/batch/redeem", {"items": [
        {"code": issued.code, "member_id": "m-1", "order_id": "o-1", "order": factories.order()},
        {"code": issued.code, "member_id": "m-1"}]}, format="json")
    assert response.status_code == 400
    assert response.json()["details"] == {"index": 1, "missing": ["order_id", "order"]}
    assert not CouponUsage.objects.exists()


def test_an_unknown_batch_action_is_404(api, db):
    assert api.post("/api/v1/coupons/batch/explode", {"items": [{"code": "X"}]}, format="json").status_code == 404
