"""R-RISK-2: member risk levels per tenant — blocked members can neither claim nor use (403 member_blocked),
allow-listed (trusted) members skip the daily frequency limits but never the budgets, watched members are logged;
an entry past its expiry no longer counts."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from coupons.services.issue import RequestContext
from coupons.services.grant import grant_create
from coupons.models import CouponCode, CouponInventory, CouponIssue
from tests import factories
from tests.risk.util import add_limit, claim, set_level

pytestmark = pytest.mark.django_db


def test_a_blocked_member_cannot_claim(tenant, api):
    inventory, _ = factories.make_pool(tenant, size=3)
    set_level(tenant, "bad", "block", reason="fraud ring")
    refused = claim(api, inventory, "bad")
    assert refused.status_code == 403
    assert refused.json() == {"code": "member_blocked",
                              "message": "This member is blocked from claiming and using coupons.", "details": {}}
    assert not CouponIssue.objects.filter(member_id="bad").exists()


def test_a_blocked_member_cannot_lock_or_redeem_a_coupon_they_already_hold(tenant, api):
    inventory, _ = factories.make_pool(tenant, size=3)
    code = claim(api, inventory, "later-bad").json()["coupon"]["code"]
    set_level(tenant, "later-bad", "block")
    body = {"member_id": "later-bad", "order_id": "o-1", "order": factories.order(order_id="o-1")}
    for action in ("lock", "redeem"):
        response = api.post(f"/api/v1/coupons/{code}/{action}", body, format="json")
        assert response.status_code == 403 and response.json()["code"] == "member_blocked"
    assert CouponCode.objects.get(code=code).status == "ISSUED"


def test_grants_to_a_blocked_member_fail_with_the_reason(tenant):
    inventory, _ = factories.make_pool(tenant, size=3)
    set_level(tenant, "bad", "block")
    result = grant_create(tenant=tenant, inventory_public_id=inventory.public_id, member_ids=["bad", "good"],
                          ctx=RequestContext())
    assert result.failed == [{"member_id": "bad", "code": "member_blocked"}]
    assert [c.member_id for c in result.issued] == ["good"]


def test_an_expired_block_no_longer_counts(tenant, api):
    inventory, _ = factories.make_pool(tenant, size=3)
    set_level(tenant, "was-bad", "block", expires_at=timezone.now() - timedelta(minutes=1))
    assert claim(api, inventory, "was-bad").status_code == 201


def test_a_block_in_another_tenant_does_not_count(tenant, other_tenant, api):
    inventory, _ = factories.make_pool(tenant, size=3)
    set_level(other_tenant, "m-1", "block")
    assert claim(api, inventory, "m-1").status_code == 201


def test_an_allow_listed_member_skips_frequency_limits_but_not_budgets(tenant, api):
    inventory, _ = factories.make_pool(tenant, size=10, per_member_limit=10)
    add_limit(inventory=inventory, dimension="member", max_per_day=1)
    set_level(tenant, "vip", "allow")
    for _ in range(3):
        assert claim(api, inventory, "vip").status_code == 201
    assert claim(api, inventory, "plain").status_code == 201
    assert claim(api, inventory, "plain").json()["code"] == "rate_limited"  # an ordinary member is limited
    CouponInventory.objects.filter(pk=inventory.pk).update(issue_budget_count=5)
    assert claim(api, inventory, "vip").status_code == 201
    assert claim(api, inventory, "vip").json()["code"] == "budget_exhausted"
    assert CouponIssue.objects.filter(member_id="vip").count() == 4


def test_a_watched_member_is_served_and_logged(tenant, api, caplog):
    inventory, _ = factories.make_pool(tenant, size=3)
    set_level(tenant, "watched", "watch")
    with caplog.at_level(logging.INFO, logger="coupons.risk"):
        assert claim(api, inventory, "watched").status_code == 201
    assert any("watched member watched" in r.getMessage() for r in caplog.records)


def test_member_levels_are_validated_and_unique_per_tenant(tenant):
    from core.exceptions import InvalidInput
    from risk.models import MemberRisk

    with pytest.raises(InvalidInput, match="one of block, watch, allow"):
        set_level(tenant, "m", "banned")
    with pytest.raises(InvalidInput, match="1 to 64"):
        set_level(tenant, " ", "block")
    set_level(tenant, "m", "block")
    with pytest.raises(InvalidInput, match="already has a risk level"):
        set_level(tenant, "m", "allow")
    assert list(MemberRisk.objects.values_list("member_id", "level")) == [("m", "block")]
