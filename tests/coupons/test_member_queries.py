"""R-QRY-1, API.md "A member's coupons": states, pagination, effective expiry, tenant isolation."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from coupons.services.issue import RequestContext, issue_from_pool
from coupons.models import CouponCode
from tests import factories


@pytest.fixture
def wallet(tenant):
    """m-1 holds: 2 usable, 1 used, 1 locked, 1 revoked, 1 expired by the job, 1 past validity not yet expired."""
    inventory, _ = factories.make_pool(tenant, size=8, per_member_limit=8)
    coupons = [issue_from_pool(inventory=inventory, member_id="m-1", via="grant", ctx=RequestContext())
               for _ in range(7)]
    past = timezone.now() - timedelta(minutes=1)
    CouponCode.objects.filter(pk=coupons[2].pk).update(status="USED", used_at=past)
    CouponCode.objects.filter(pk=coupons[3].pk).update(status="LOCKED", locked_order_id="o", locked_at=past)
    CouponCode.objects.filter(pk=coupons[4].pk).update(status="REVOKED")
    CouponCode.objects.filter(pk=coupons[5].pk).update(status="EXPIRED", valid_until=past)
    CouponCode.objects.filter(pk=coupons[6].pk).update(valid_until=past)
    return [c.code for c in coupons]


def listing(api, state, member="m-1", **params):
    return api.get(f"/api/v1/members/{member}/coupons", {"state": state, **params})


@pytest.mark.parametrize("state,indexes", [
    ("usable", [0, 1]), ("used", [2]), ("locked", [3]), ("invalid", [4, 5, 6]), ("all", list(range(7))),
])
def test_each_state_lists_exactly_its_coupons(api, wallet, state, indexes):
    response = listing(api, state)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(indexes)
    assert sorted(c["code"] for c in body["results"]) == sorted(wallet[i] for i in indexes)


def test_a_coupon_past_validity_reads_expired_in_the_list_before_the_job(api, wallet):
    statuses = {c["code"]: c["status"] for c in listing(api, "invalid").json()["results"]}
    assert statuses[wallet[6]] == "EXPIRED"
    assert CouponCode.objects.get(code=wallet[6]).status == "ISSUED"


def test_pages_are_bounded_and_linked(api, wallet):
    first = listing(api, "all", page_size=3).json()
    assert (first["count"], len(first["results"])) == (7, 3)
    assert "page=2" in first["next"]
    third = listing(api, "all", page_size=3, page=3).json()
    assert len(third["results"]) == 1 and third["next"] is None


def test_an_unknown_state_is_a_clear_400(api, wallet):
    response = listing(api, "shiny")
    assert response.status_code == 400
    assert "state must be one of usable, used, locked, invalid, all" in response.json()["message"]


def test_another_tenants_member_with_the_same_id_is_invisible(api, wallet, other_tenant):
    inventory, _ = factories.make_pool(other_tenant, size=1)
    theirs = issue_from_pool(inventory=inventory, member_id="m-1", via="grant", ctx=RequestContext())
    codes = {c["code"] for c in listing(api, "all", page_size=50).json()["results"]}
    assert theirs.code not in codes and len(codes) == 7


def test_coupon_detail_normalises_the_code(api, wallet):
    code = wallet[0]
    response = api.get(f"/api/v1/coupons/{code[:3].lower()}-{code[3:]}")
    assert response.status_code == 200
    assert response.json()["code"] == code
