"""#23 "Every query names its tenant": each member-API request path, run with the checker on
(tests/tenant_queries.py), sends no statement on a tenant table without a tenant_id predicate, so a planner that
distributes the tables by tenant routes every statement of the request to one node. Set-up runs outside the mode;
the request inside it, and it must still answer as it does without the mode."""
from __future__ import annotations

import pytest

from tests import factories

pytestmark = pytest.mark.django_db

ORDER = factories.order(40_000, order_id="o-1")


@pytest.fixture
def claimed(api, tenant):
    """A code issued to m-1 through the API (outside the mode)."""
    inventory, _codes = factories.make_pool(tenant, size=3)
    response = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["coupon"]["code"]


def test_claim_by_inventory(api, tenant, every_query_names_its_tenant):
    inventory, _codes = factories.make_pool(tenant, size=3)
    with every_query_names_its_tenant() as mode:
        response = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id}, format="json")
    assert response.status_code == 201, response.json()
    assert mode.statements  # the mode saw the request's SQL


def test_claim_by_code(api, tenant, every_query_names_its_tenant):
    _inventory, codes = factories.make_pool(tenant, size=3)
    with every_query_names_its_tenant():
        response = api.post("/api/v1/claims", {"member_id": "m-1", "code": codes[1].code}, format="json")
    assert (response.status_code, response.json()["coupon"]["code"]) == (201, codes[1].code)


def test_claim_by_promo_code(api, tenant, every_query_names_its_tenant):
    factories.make_pool(tenant, size=2, promo_code="SPRING-10")
    with every_query_names_its_tenant():
        response = api.post("/api/v1/claims", {"member_id": "m-1", "promo_code": "SPRING10"}, format="json")
    assert response.status_code == 201, response.json()


def test_get_a_coupon(api, claimed, every_query_names_its_tenant):
    with every_query_names_its_tenant():
        response = api.get(f"/api/v1/coupons/{claimed}")
    assert (response.status_code, response.json()["code"]) == (200, claimed)


def test_lock_release_redeem_refund(api, claimed, every_query_names_its_tenant):
    with every_query_names_its_tenant():
        locked = api.post(f"/api/v1/coupons/{claimed}/lock", {"member_id": "m-1", "order_id": "o-1", "order": ORDER},
                          format="json")
    assert (locked.status_code, locked.json()["coupon"]["status"]) == (200, "LOCKED"), locked.json()
    with every_query_names_its_tenant():
        released = api.post(f"/api/v1/coupons/{claimed}/release", {"order_id": "o-1"}, format="json")
    assert (released.status_code, released.json()["coupon"]["status"]) == (200, "ISSUED"), released.json()
    with every_query_names_its_tenant():
        redeemed = api.post(f"/api/v1/coupons/{claimed}/redeem", {"member_id": "m-1", "order_id": "o-1",
                                                                  "order": ORDER}, format="json")
    assert (redeemed.status_code, redeemed.json()["coupon"]["status"]) == (200, "USED"), redeemed.json()
    with every_query_names_its_tenant():
        refunded = api.post(f"/api/v1/coupons/{claimed}/refund", {"order_id": "o-1"}, format="json")
    assert (refunded.status_code, refunded.json()["coupon"]["status"]) == (200, "ISSUED"), refunded.json()


def test_checkout_validate_and_best(api, claimed, every_query_names_its_tenant):
    with every_query_names_its_tenant():
        validated = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": [claimed], "order": ORDER},
                             format="json")
        best = api.post("/api/v1/checkout/best", {"member_id": "m-1", "order": ORDER}, format="json")
    assert (validated.status_code, validated.json()["valid"]) == (200, True), validated.json()
    assert (best.status_code, best.json()["codes"]) == (200, [claimed]), best.json()


def test_a_members_coupons(api, claimed, every_query_names_its_tenant):
    with every_query_names_its_tenant():
        response = api.get("/api/v1/members/m-1/coupons")
    assert response.status_code == 200, response.json()
    assert [c["code"] for c in response.json()["results"]] == [claimed]


def test_claimable(api, tenant, every_query_names_its_tenant):
    inventory, _codes = factories.make_pool(tenant, size=2)
    with every_query_names_its_tenant():
        anyone = api.get("/api/v1/claimable")
        for_member = api.get("/api/v1/claimable", {"member_id": "m-1"})
    assert (anyone.status_code, for_member.status_code) == (200, 200)
    assert [r["inventory"] for r in for_member.json()["results"]] == [inventory.public_id]


def test_an_unknown_code_is_refused_inside_the_mode(api, tenant, every_query_names_its_tenant):
    factories.make_pool(tenant, size=1)
    with every_query_names_its_tenant():
        response = api.get(f"/api/v1/coupons/{factories.random_code()}")
    assert response.status_code == 404


def test_claim_by_partner_code(api, tenant, every_query_names_its_tenant, monkeypatch):
    from partners.models import CouponMapping, Partner

    # The test transaction never commits: the upload's mapping job starts at once (as tests/partners/conftest.py).
    monkeypatch.setattr("partners.services._after_commit", lambda fn: fn())

    Partner.objects.get_or_create(tenant=tenant, code="GS25", defaults={"name": "GS"})
    inventory, _codes = factories.make_pool(tenant, size=5)
    factories.make_partner_upload(tenant, inventory, b"GS-0001\nGS-0002\n")
    mapped = CouponMapping.objects.get(tenant=tenant, partner_code="GS0001").coupon.code
    with every_query_names_its_tenant():
        response = api.post("/api/v1/claims", {"member_id": "m-1", "partner_code": "GS-0001"}, format="json")
    assert (response.status_code, response.json()["coupon"]["code"]) == (201, mapped), response.json()


def test_revoke_one_coupon(operator_api, claimed, every_query_names_its_tenant):
    with every_query_names_its_tenant():
        response = operator_api.post(f"/api/v1/coupons/{claimed}/revoke", {"reason": "fraud"}, format="json")
    assert (response.status_code, response.json()["coupon"]["status"]) == (200, "REVOKED"), response.json()
