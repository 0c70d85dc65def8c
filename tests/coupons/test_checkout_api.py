"""R-USE-1/2, R-QRY-1/2, API.md "Checkout": validate, best combination, product filters, claimable coupons, and
hostile input answered 400 — never a 5xx."""
from __future__ import annotations

import pytest

from coupons.services.issue import RequestContext, issue_from_pool
from tests import factories


def give(tenant, member="m-1", **policy):
    kind = policy.pop("kind", "amount")
    inventory, _ = factories.make_pool(tenant, size=2, policy=factories.make_approved_policy(tenant, kind=kind,
                                                                                              **policy))
    return issue_from_pool(inventory=inventory, member_id=member, via="grant", ctx=RequestContext()).code


def cart(**overrides):
    base = {"order_id": "o-1", "items": [
        {"sku": "S1", "spu": "P1", "category": "C1", "shop": "shop-1", "unit_price": 20000, "quantity": 2,
         "virtual": False},
        {"sku": "GIFT", "spu": "G", "category": "CARD", "shop": "shop-1", "unit_price": 10000, "quantity": 1,
         "virtual": True}], "shipping_fee": 3000, "channel": "ios", "payment_method": "online"}
    base.update(overrides)
    return base


def validate(api, codes, order=None, member="m-1"):
    return api.post("/api/v1/checkout/validate", {"member_id": member, "codes": codes, "order": order or cart()},
                    format="json")


def test_validate_applies_merchant_then_platform_then_shipping(api, tenant):
    merchant = give(tenant, kind="threshold", amount=3000, threshold=30000, stacking_group="merchant")
    platform = give(tenant, kind="percentage", rate=10, cap=5000, stacking_group="platform")
    shipping = give(tenant, kind="shipping", stacking_group="shipping")
    body = validate(api, [platform.lower(), shipping, merchant]).json()
    assert body["valid"] is True and body["rejected"] == []
    # items 40,000 (the virtual gift card never counts): merchant 3,000; platform 10% of 37,000 = 3,700; shipping 3,000
    assert [(a["code"], a["discount"]) for a in body["applied"]] == [(merchant, 3000), (platform, 3700),
                                                                     (shipping, 3000)]
    assert body["discount"] == 9700
    assert body["payable"] == 40000 + 10000 + 3000 - 9700


def test_validate_rejects_codes_it_cannot_use_with_reasons(api, tenant, other_tenant):
    mine = give(tenant)
    someone_elses = give(tenant, member="m-2")
    foreign = give(other_tenant)
    below = give(tenant, kind="threshold", amount=3000, threshold=90000, stacking_group="merchant")
    body = validate(api, [mine, someone_elses, foreign, below]).json()
    assert body["valid"] is False
    assert [a["code"] for a in body["applied"]] == [mine]
    assert {r["code"]: r["reason"] for r in body["rejected"]} == {
        someone_elses: "not_owner", foreign: "not_found", below: "below_threshold"}


def test_two_coupons_of_one_group_do_not_stack(api, tenant):
    first, second = give(tenant, amount=1000), give(tenant, amount=2000)
    body = validate(api, [first, second]).json()
    assert [a["code"] for a in body["applied"]] == [first]
    assert body["rejected"] == [{"code": second, "reason": "stacking_conflict",
                                 "message": "Another coupon of the same stacking group is already applied."}]


def test_best_picks_the_largest_total_from_the_members_wallet(api, tenant):
    give(tenant, amount=1000, stacking_group="platform")
    big = give(tenant, kind="percentage", rate=20, cap=10000, stacking_group="platform")
    ship = give(tenant, kind="shipping", stacking_group="shipping")
    give(tenant, member="m-2", amount=50000, stacking_group="super")  # not m-1's
    body = api.post("/api/v1/checkout/best", {"member_id": "m-1", "order": cart()}, format="json").json()
    assert sorted(body["codes"]) == sorted([big, ship])
    assert body["discount"] == 8000 + 3000


def test_lock_and_redeem_price_with_the_same_engine(api, tenant):
    code = give(tenant, kind="percentage", rate=10, cap=5000, include_skus=["S9"])
    refused = api.post(f"/api/v1/coupons/{code}/lock", {"member_id": "m-1", "order_id": "o-1", "order": cart()},
                       format="json")
    assert (refused.status_code, refused.json()["details"]) == (422, {"reason": "no_applicable_items"})


def test_member_coupons_filter_by_product_scope(api, tenant):
    anywhere = give(tenant)
    only_s1 = give(tenant, include_skus=["S1"])
    not_s1 = give(tenant, exclude_skus=["S1"])
    only_shop2 = give(tenant, include_shops=["shop-2"])
    listed = {c["code"] for c in api.get("/api/v1/members/m-1/coupons", {"state": "usable", "sku": "S1"})
              .json()["results"]}
    assert listed == {anywhere, only_s1, only_shop2}
    by_shop = {c["code"] for c in api.get("/api/v1/members/m-1/coupons", {"shop": "shop-2"}).json()["results"]}
    assert by_shop == {anywhere, only_s1, not_s1, only_shop2}
    both = {c["code"] for c in api.get("/api/v1/members/m-1/coupons", {"sku": "S1", "shop": "shop-1"})
            .json()["results"]}
    assert both == {anywhere, only_s1}


def test_claimable_lists_open_inventories_covering_the_product(api, tenant):
    everywhere, _ = factories.make_pool(tenant, size=1)
    for_s1, _ = factories.make_pool(tenant, size=1, policy=factories.make_approved_policy(tenant,
                                                                                          include_skus=["S1"]))
    factories.make_pool(tenant, size=1, policy=factories.make_approved_policy(tenant, include_skus=["S2"]))
    empty, _ = factories.make_pool(tenant, size=0)
    issue_from_pool(inventory=everywhere, member_id="m-1", via="grant", ctx=RequestContext())  # m-1 at its limit
    anyone = {row["inventory"] for row in api.get("/api/v1/claimable", {"sku": "S1"}).json()["results"]}
    assert anyone == {for_s1.public_id}  # `everywhere` has no code left now; `empty` never had one
    page = api.get("/api/v1/claimable", {"sku": "S1", "member_id": "m-2"}).json()
    assert (page["count"], page["next"], page["previous"]) == (1, None, None)
    assert [(r["inventory"], r["claimed"]) for r in page["results"]] == [(for_s1.public_id, 0)]


def test_claimable_is_paginated_like_every_other_list(api, tenant):
    """#19: page and page_size as in a member's coupon list; a bad page_size is a 400 naming it."""
    pools = [factories.make_pool(tenant, size=1)[0] for _ in range(3)]
    first = api.get("/api/v1/claimable", {"page_size": 2}).json()
    second = api.get("/api/v1/claimable", {"page_size": 2, "page": 2}).json()
    assert (first["count"], len(first["results"]), second["count"], len(second["results"])) == (3, 2, 3, 1)
    assert first["next"].endswith("/api/v1/claimable?page=2&page_size=2") and second["previous"] is not None
    assert {r["inventory"] for r in first["results"] + second["results"]} == {p.public_id for p in pools}
    refused = api.get("/api/v1/claimable", {"page_size": 500})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid")


HOSTILE_ORDERS = {
    "negative price": cart(items=[{**cart()["items"][0], "unit_price": -100}]),
    "zero quantity": cart(items=[{**cart()["items"][0], "quantity": 0}]),
    "huge price": cart(items=[{**cart()["items"][0], "unit_price": 10**18}]),
    "NaN string": cart(items=[{**cart()["items"][0], "unit_price": "NaN"}]),
    "float": cart(items=[{**cart()["items"][0], "unit_price": 1e3}]),
    "boolean quantity": cart(items=[{**cart()["items"][0], "quantity": True}]),
    "10,000 lines": cart(items=[cart()["items"][0]] * 10_000),
    "no items": cart(items=[]),
    "items not a list": cart(items="lots"),
    "unknown channel": cart(channel="carrier-pigeon"),
    "negative shipping": cart(shipping_fee=-1),
    "order not an object": ["not", "an", "order"],
}


@pytest.mark.parametrize("name", list(HOSTILE_ORDERS))
@pytest.mark.parametrize("endpoint", ["validate", "best", "redeem"])
def test_hostile_orders_are_refused_with_400_and_a_message(api, tenant, name, endpoint):
    code = give(tenant)
    order = HOSTILE_ORDERS[name]
    if endpoint == "validate":
        response = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": [code], "order": order},
                            format="json")
    elif endpoint == "best":
        response = api.post("/api/v1/checkout/best", {"member_id": "m-1", "order": order}, format="json")
    else:
        response = api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-1", "order_id": "o", "order": order},
                            format="json")
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "invalid" and "order" in body["message"]


@pytest.mark.parametrize("codes,reason", [
    (["AAAA2222", "aaaa-2222"], "codes[1] repeats codes[0]"),
    ([], "empty"),
    ("AAAA2222", "list"),
    ([123], "string"),
    (["X"] * 21, "20"),
])
def test_hostile_code_lists_are_refused_with_400(api, db, codes, reason):
    response = validate(api, codes)
    assert response.status_code == 400
    assert reason in response.content.decode()


def test_malformed_json_is_a_400_not_a_500(api, db):
    response = api.post("/api/v1/checkout/best", data="{not json", content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "malformed_request")


@pytest.mark.parametrize("content_type,body", [
    ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="member_id"\r\n\r\nm-1\r\n--x--\r\n'),
    ("application/x-www-form-urlencoded", b"member_id=m-1"),
    ("text/plain", b'{"member_id": "m-1"}'),
])
def test_a_body_that_is_not_json_is_a_415_naming_the_type(api, db, content_type, body):
    """Bodies are JSON (API.md: a JSON API); a form cannot carry the order and its lines. The partner upload alone
    takes multipart (tests/partners)."""
    response = api.generic("POST", "/api/v1/checkout/best", body, content_type=content_type)
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    assert content_type.split(";")[0] in response.json()["message"]
