"""Issue #16's journeys over the real HTTP API of a live server: points are money (seed 003) — a member earns points,
pays part of an order with them, gets them back when the order is refunded and exchanges them for a coupon — and the
back office revokes coupons by member list (seed 002), which a member app may not do."""
from __future__ import annotations

import pytest

from core.models import ApiClient
from rewards.models import ExchangeOffer
from rewards.services import exchange_offer_save
from tests import factories
from tests.rewards.factories import make_rule

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_member_earns_points_pays_with_them_gets_them_back_on_refund_and_buys_a_coupon(tenant, http):
    make_rule(tenant, "purchase_confirmed", purchase_rate_bp=1000, points_valid_days=365)  # 10 % back
    policy = factories.make_approved_policy(tenant, kind="threshold", amount=3000, threshold=30000)
    sale, _ = factories.make_pool(tenant, size=5, policy=policy)
    gift, _ = factories.make_pool(tenant, size=5)
    exchange_offer_save(offer=ExchangeOffer(tenant=tenant, inventory=gift, points=3000), actor=factories.TEST_ACTOR)
    app = http(factories.make_client(tenant)[1])
    points = "/members/m-1001/points"

    # Earn: a confirmed purchase of 50,000 gives 5,000 points.
    earned = app.post("/rewards/triggers", json={"member_id": "m-1001", "trigger": "purchase_confirmed",
                                                 "reference": "o-1", "amount": 50000})
    assert earned.status_code == 201, earned.text
    assert app.get(points).json()["balance"] == 5000

    # Checkout of o-2: a coupon takes 3,000 off, points pay 2,000 of the rest, the card the remainder.
    code = app.post("/claims", json={"member_id": "m-1001", "inventory": sale.public_id}).json()["coupon"]["code"]
    order = {"order_id": "o-2", "items": [{"sku": "S-1", "unit_price": 12000, "quantity": 3}], "shipping_fee": 3000}
    quote = app.post("/checkout/validate", json={"member_id": "m-1001", "codes": [code], "order": order}).json()
    assert (quote["valid"], quote["payable"]) == (True, 36000)
    paid = app.post(f"{points}/spend", json={"order_id": "o-2", "points": 2000, "payable": quote["payable"]},
                    headers={"Idempotency-Key": "spend-o-2"})
    assert paid.status_code == 201, paid.text
    assert (paid.json()["payable"], paid.json()["balance"]) == (34000, 3000)
    retry = app.post(f"{points}/spend", json={"order_id": "o-2", "points": 2000, "payable": quote["payable"]},
                     headers={"Idempotency-Key": "spend-o-2"})
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.json() == paid.json()
    assert app.post(f"/coupons/{code}/redeem", json={"member_id": "m-1001", "order": order}).status_code == 200
    assert app.post(f"{points}/spend", json={"order_id": "o-3", "points": 3001}).json()["code"] == \
        "insufficient_points"

    # The order is refunded in full: the coupon and the points come back, once.
    assert app.post(f"/coupons/{code}/refund", json={"order_id": "o-2"}).json()["returned"] is True
    back = app.post(f"{points}/refund", json={"order_id": "o-2"})
    assert (back.status_code, back.json()["refunded"], back.json()["balance"]) == (200, True, 5000)
    again = app.post(f"{points}/refund", json={"order_id": "o-2"})
    assert (again.json()["refunded"], again.json()["balance"]) == (False, 5000)
    assert app.post(f"{points}/refund", json={"order_id": "o-9"}).status_code == 404

    # 3,000 points buy a gift coupon; a retry with the same key buys nothing more.
    bought = app.post(f"{points}/exchange", json={"inventory": gift.public_id}, headers={"Idempotency-Key": "x-1"})
    assert bought.status_code == 201, bought.text
    assert (bought.json()["points"], bought.json()["balance"], bought.json()["coupon"]["status"]) == (3000, 2000,
                                                                                                     "ISSUED")
    replay = app.post(f"{points}/exchange", json={"inventory": gift.public_id}, headers={"Idempotency-Key": "x-1"})
    assert replay.json()["coupon"]["code"] == bought.json()["coupon"]["code"]
    ledger = app.get(points).json()
    assert ledger["balance"] == 2000
    assert [e["reason"] for e in ledger["entries"]] == ["exchange", "refund", "spend", "grant"]
    coupons = app.get("/members/m-1001/coupons", params={"state": "usable"}).json()["results"]
    assert sorted(c["code"] for c in coupons) == sorted([code, bought.json()["coupon"]["code"]])


def test_the_back_office_revokes_by_member_list_and_a_member_app_may_not(tenant, http):
    inventory, _ = factories.make_pool(tenant, size=3)
    app = http(factories.make_client(tenant)[1])
    ops = http(factories.make_client(tenant, scope=ApiClient.Scope.OPERATOR)[1])
    held = {m: app.post("/claims", json={"member_id": m, "inventory": inventory.public_id}).json()["coupon"]["code"]
            for m in ("m-1", "m-2")}
    body = {"inventory": inventory.public_id, "member_ids": ["m-1", "m-2", "m-3"], "reason": "fraud ring"}

    refused = app.post("/revocations", json=body)
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    single = app.post(f"/coupons/{held['m-1']}/revoke", json={"reason": "fraud"})
    assert single.status_code == 403
    wrong = ops.post(f"/coupons/{held['m-1']}/revoke", json={"reason": "fraud", "member_id": "m-2"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "not_owner")

    done = ops.post("/revocations", json=body, headers={"Idempotency-Key": "revoke-1"})
    assert done.status_code == 200, done.text
    assert [(r["member_id"], r["ok"], r["revoked"], [e["code"] for e in r["errors"]])
            for r in done.json()["results"]] == [("m-1", True, [held["m-1"]], []), ("m-2", True, [held["m-2"]], []),
                                                 ("m-3", False, [], ["not_found"])]
    assert ops.post("/revocations", json=body, headers={"Idempotency-Key": "revoke-1"}).json() == done.json()
    for code in held.values():
        assert app.get(f"/coupons/{code}").json()["status"] == "REVOKED"
