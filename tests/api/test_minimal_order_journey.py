"""#19 (must show): an integrator who sends only what docs/API.md requires of an order line — ``sku``, ``unit_price``,
``quantity`` — gets through checkout: validate, best, lock, redeem, refund, over the real API as one journey. And one
order id: at the top level or in ``order``, equal when both are given, else 400 ``order_id_mismatch`` and nothing
written (R-USE-1, R-USE-3, R-LIFE-4)."""
from __future__ import annotations

import pytest

from core.models import AuditLog
from coupons.models import CouponCode, CouponUsage
from tests import factories

pytestmark = pytest.mark.django_db

MINIMAL_ORDER = {"items": [{"sku": "S-1", "unit_price": 12000, "quantity": 3}]}


def test_a_minimal_order_line_validates_locks_redeems_and_refunds(api, tenant):
    inventory, _codes = factories.make_pool(tenant, size=2, policy=factories.make_approved_policy(
        tenant, kind="threshold", amount=3000, threshold=30000))
    claimed = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id}, format="json")
    assert claimed.status_code == 201, claimed.json()
    code = claimed.json()["coupon"]["code"]

    validated = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": [code], "order": MINIMAL_ORDER},
                         format="json")
    assert validated.status_code == 200, validated.json()
    assert validated.json() == {"valid": True, "codes": [code], "discount": 3000, "rejected": [], "payable": 33000,
                                "applied": [{"code": code, "discount": 3000,
                                             "lines": [{"line": 0, "sku": "S-1", "discount": 3000}]}]}

    best = api.post("/api/v1/checkout/best", {"member_id": "m-1", "order": MINIMAL_ORDER}, format="json")
    assert (best.status_code, best.json()["codes"], best.json()["discount"]) == (200, [code], 3000)

    locked = api.post(f"/api/v1/coupons/{code}/lock", {"member_id": "m-1", "order_id": "o-min", "order": MINIMAL_ORDER},
                      format="json")
    assert locked.status_code == 200, locked.json()
    assert (locked.json()["coupon"]["status"], locked.json()["coupon"]["locked_order_id"],
            locked.json()["discount"]) == ("LOCKED", "o-min", 3000)

    # The order id given only inside the order this time: the same order, so the lock holds.
    redeemed = api.post(f"/api/v1/coupons/{code}/redeem",
                        {"member_id": "m-1", "order": {**MINIMAL_ORDER, "order_id": "o-min"}}, format="json")
    assert redeemed.status_code == 200, redeemed.json()
    assert redeemed.json()["coupon"]["status"] == "USED"
    assert (redeemed.json()["usage"]["discount"], redeemed.json()["usage"]["order_amount"]) == (3000, 36000)
    usage = CouponUsage.objects.get(coupon__code=code)
    assert (usage.order_id, usage.discount, usage.order_amount) == ("o-min", 3000, 36000)

    refunded = api.post(f"/api/v1/coupons/{code}/refund", {"order_id": "o-min"}, format="json")
    assert (refunded.status_code, refunded.json()["returned"], refunded.json()["coupon"]["status"]) == (
        200, True, "ISSUED")


def test_optional_line_fields_default_to_empty_and_a_scope_on_them_does_not_match(api, tenant):
    """A coupon for one category cannot apply to a line without a category; one excluding a category still can."""
    only_shoes = factories.make_approved_policy(tenant, include_categories=["SHOES"])
    not_shoes = factories.make_approved_policy(tenant, exclude_categories=["SHOES"])
    codes = []
    for policy in (only_shoes, not_shoes):
        inventory, _ = factories.make_pool(tenant, size=1, policy=policy)
        codes.append(api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id},
                              format="json").json()["coupon"]["code"])
    body = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": codes, "order": MINIMAL_ORDER},
                    format="json").json()
    assert [a["code"] for a in body["applied"]] == [codes[1]]
    assert [(r["code"], r["reason"]) for r in body["rejected"]] == [(codes[0], "no_applicable_items")]


def issued(tenant, api):
    inventory, _ = factories.make_pool(tenant, size=1)
    return api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id},
                    format="json").json()["coupon"]["code"]


@pytest.mark.parametrize("action", ["lock", "redeem"])
def test_two_different_order_ids_are_refused_and_nothing_is_written(api, tenant, action):
    code = issued(tenant, api)
    audit_rows = AuditLog.objects.count()
    response = api.post(f"/api/v1/coupons/{code}/{action}",
                        {"member_id": "m-1", "order_id": "o-1", "order": {**MINIMAL_ORDER, "order_id": "o-2"}},
                        format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert response.json() == {
        "code": "order_id_mismatch",
        "message": "order_id and order.order_id differ; give one order id, or the same in both places.",
        "details": {"field": "order_id", "order_id": "o-1", "order.order_id": "o-2"}}
    coupon = CouponCode.objects.get(code=code)
    assert (coupon.status, coupon.locked_order_id) == (CouponCode.Status.ISSUED, None)
    assert not CouponUsage.objects.filter(coupon=coupon).exists()
    assert AuditLog.objects.count() == audit_rows


def test_the_same_order_id_in_both_places_is_accepted(api, tenant):
    code = issued(tenant, api)
    response = api.post(f"/api/v1/coupons/{code}/lock",
                        {"member_id": "m-1", "order_id": "o-1", "order": {**MINIMAL_ORDER, "order_id": "o-1"}},
                        format="json")
    assert (response.status_code, response.json()["coupon"]["locked_order_id"]) == (200, "o-1")


def test_no_order_id_anywhere_is_refused_naming_the_field(api, tenant):
    code = issued(tenant, api)
    response = api.post(f"/api/v1/coupons/{code}/lock", {"member_id": "m-1", "order": MINIMAL_ORDER}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert response.json()["details"] == {"fields": {"order_id": [
        "Give the order id as order_id or as order.order_id."]}}
    assert CouponCode.objects.get(code=code).status == CouponCode.Status.ISSUED


def test_checkout_refuses_two_different_order_ids_too(api, tenant):
    code = issued(tenant, api)
    response = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": [code], "order_id": "o-1",
                                                      "order": {**MINIMAL_ORDER, "order_id": "o-2"}}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "order_id_mismatch")


def test_a_batch_with_one_mismatching_item_is_refused_whole_and_changes_nothing(api, tenant):
    first, second = issued(tenant, api), issued(tenant, api)
    response = api.post("/api/v1/coupons/batch/lock", {"items": [
        {"code": first, "member_id": "m-1", "order": {**MINIMAL_ORDER, "order_id": "o-1"}},
        {"code": second, "member_id": "m-1", "order_id": "o-1", "order": {**MINIMAL_ORDER, "order_id": "o-9"}}]},
        format="json")
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["details"]["index"], response.json()["details"]["field"]) == (
        "order_id_mismatch", 1, "items[1].order_id")
    assert set(CouponCode.objects.filter(code__in=[first, second]).values_list("status", flat=True)) == {"ISSUED"}


def test_a_batch_item_may_carry_its_order_id_in_the_order_alone(api, tenant):
    code = issued(tenant, api)
    response = api.post("/api/v1/coupons/batch/redeem", {"items": [
        {"code": code, "member_id": "m-1", "order": {**MINIMAL_ORDER, "order_id": "o-7"}}]}, format="json")
    assert response.json() == {"results": [{"code": code, "ok": True}]}
    assert CouponUsage.objects.get(coupon__code=code).order_id == "o-7"
