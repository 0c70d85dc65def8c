"""R-ISS-1/3/4, API.md "Getting coupons": claims by inventory, promo code and unique code."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import AuditLog
from coupons.services.counters import inventory_counts
from coupons.models import AudienceEntry, CouponCode, CouponIssue
from events.models import Event
from tests import factories

COUPON_KEYS = {"code", "status", "member_id", "policy", "inventory", "batch_code", "valid_from", "valid_until",
               "issued_at", "locked_order_id", "used_at"}


def claim(api, **body):
    return api.post("/api/v1/claims", body, format="json")


@pytest.fixture
def pool(tenant):
    return factories.make_pool(tenant, size=5)


def test_claim_by_inventory_issues_the_next_code_in_the_api_shape(api, pool, member_client):
    inventory, codes = pool
    response = claim(api, member_id="m-1", inventory=inventory.public_id, channel="ios", device_id="dev-9",
                     ip="10.1.2.3")
    assert response.status_code == 201, response.json()
    coupon = response.json()["coupon"]
    assert set(coupon) == COUPON_KEYS
    assert coupon["code"] == codes[0].code
    assert (coupon["status"], coupon["member_id"], coupon["inventory"]) == ("ISSUED", "m-1", inventory.public_id)
    assert set(coupon["policy"]) == {"id", "name", "kind", "amount", "rate", "threshold", "cap", "stacking_group",
                                     "audience", "tiers"}  # audience and tiers: issue #16
    issue = CouponIssue.objects.get(coupon__code=coupon["code"])
    assert (issue.member_id, issue.slot, issue.via, issue.client, issue.channel, issue.device_id, issue.ip) == (
        "m-1", 1, "inventory", member_client[0], "ios", "dev-9", "10.1.2.3")
    assert inventory_counts(inventory.pk)["issued"] == 1
    assert AuditLog.objects.filter(action="coupon.issue", object_id=str(codes[0].pk)).count() == 1


def test_fixed_validity_is_the_policys_period(api, tenant):
    policy = factories.make_approved_policy(tenant)
    inventory, _ = factories.make_pool(tenant, size=1, policy=policy)
    coupon = claim(api, member_id="m", inventory=inventory.public_id).json()["coupon"]
    row = CouponCode.objects.get(code=coupon["code"])
    assert (row.valid_from, row.valid_until) == (policy.valid_from, policy.valid_until)


def test_dynamic_validity_starts_at_issue_and_never_passes_the_policy_end(api, tenant):
    now = timezone.now()
    short = factories.make_approved_policy(tenant, validity_type="dynamic", validity_hours=48, valid_from=None,
                                           valid_until=None)
    capped = factories.make_approved_policy(tenant, validity_type="dynamic", validity_hours=48, valid_from=None,
                                            valid_until=now + timedelta(hours=5))
    for policy, hours in ((short, 48), (capped, None)):
        inventory, _ = factories.make_pool(tenant, size=1, policy=policy)
        row = CouponCode.objects.get(code=claim(api, member_id="m", inventory=inventory.public_id)
                                     .json()["coupon"]["code"])
        assert row.valid_from == row.issued_at
        expected = row.issued_at + timedelta(hours=hours) if hours else policy.valid_until
        assert row.valid_until == expected


def test_claim_by_promo_code_is_case_and_separator_insensitive(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=2, promo_code="SPRING-10")
    assert inventory.promo_code == "SPRING10"
    response = claim(api, member_id="m-1", promo_code=" spring 10 ")
    assert response.status_code == 201
    assert CouponIssue.objects.get().via == "promo_code"


def test_claim_by_unique_code_registers_that_exact_code(api, pool):
    inventory, codes = pool
    target = codes[3].code
    typed = f"{target[:4].lower()}-{target[4:]}"
    response = claim(api, member_id="m-1", code=typed)
    assert response.status_code == 201
    assert response.json()["coupon"]["code"] == target
    second = claim(api, member_id="m-2", code=target)
    assert (second.status_code, second.json()["code"]) == (409, "already_claimed")
    assert CouponCode.objects.get(code=target).member_id == "m-1"


def test_a_mapped_code_cannot_be_registered_as_an_internal_code(api, pool):
    _, codes = pool
    CouponCode.objects.filter(pk=codes[0].pk).update(status="MAPPED")
    response = claim(api, member_id="m-1", code=codes[0].code)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_second_claim_with_a_limit_of_one_is_already_claimed(api, pool):
    inventory, _ = pool
    assert claim(api, member_id="m-1", inventory=inventory.public_id).status_code == 201
    response = claim(api, member_id="m-1", inventory=inventory.public_id)
    assert (response.status_code, response.json()["code"]) == (409, "already_claimed")
    assert CouponIssue.objects.filter(member_id="m-1").count() == 1


def test_a_limit_of_two_allows_two_then_limit_reached(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=5, per_member_limit=2)
    assert [claim(api, member_id="m", inventory=inventory.public_id).status_code for _ in range(2)] == [201, 201]
    response = claim(api, member_id="m", inventory=inventory.public_id)
    assert (response.status_code, response.json()["code"]) == (422, "limit_reached")
    assert response.json()["details"] == {"limit": 2}


def test_an_empty_pool_answers_sold_out_and_changes_nothing(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=1)
    claim(api, member_id="m-1", inventory=inventory.public_id)
    response = claim(api, member_id="m-2", inventory=inventory.public_id)
    assert (response.status_code, response.json()["code"]) == (422, "sold_out")
    assert CouponIssue.objects.count() == 1
    assert inventory_counts(inventory.pk)["issued"] == 1


@pytest.mark.parametrize("change,code", [
    ({"status": Event.Status.CLOSED}, "event_closed"),
    ({"starts_at_offset": timedelta(days=2)}, "event_closed"),
])
def test_claims_outside_an_open_event_are_refused(api, tenant, change, code):
    inventory, _ = factories.make_pool(tenant, size=1)
    event = inventory.event
    if "status" in change:
        Event.objects.filter(pk=event.pk).update(status=change["status"])
    else:
        Event.objects.filter(pk=event.pk).update(starts_at=timezone.now() + change["starts_at_offset"],
                                                 ends_at=timezone.now() + timedelta(days=5))
    response = claim(api, member_id="m", inventory=inventory.public_id)
    assert (response.status_code, response.json()["code"]) == (422, code)
    assert not CouponIssue.objects.exists()


def test_an_inactive_inventory_is_not_claimable(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=1)
    type(inventory).objects.filter(pk=inventory.pk).update(is_active=False)
    response = claim(api, member_id="m", inventory=inventory.public_id)
    assert (response.status_code, response.json()["code"]) == (422, "not_eligible")


def test_a_whitelist_audience_admits_only_listed_members(api, tenant):
    policy = factories.make_approved_policy(tenant, audience="whitelist")
    inventory, _ = factories.make_pool(tenant, size=2, policy=policy)
    AudienceEntry.objects.create(tenant=tenant, inventory=inventory, member_id="vip")
    refused = claim(api, member_id="nobody", inventory=inventory.public_id)
    assert (refused.status_code, refused.json()["details"]) == (422, {"reason": "audience"})
    assert claim(api, member_id="vip", inventory=inventory.public_id).status_code == 201


def test_another_tenants_inventory_answers_exactly_like_a_missing_one(api, other_tenant):
    foreign, _ = factories.make_pool(other_tenant, size=1)
    theirs = claim(api, member_id="m", inventory=foreign.public_id)
    missing = claim(api, member_id="m", inventory="ABCDEFGHJKLMNPQR")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert not CouponIssue.objects.exists()


@pytest.mark.parametrize("body", [
    {"member_id": "m"},
    {"member_id": "m", "inventory": "X" * 16, "promo_code": "P"},
    {"inventory": "X" * 16},
    {"member_id": "", "inventory": "X" * 16},
    {"member_id": "m" * 65, "inventory": "X" * 16},
    {"member_id": "m", "inventory": "X" * 16, "channel": "fax"},
    {"member_id": "m", "inventory": "X" * 16, "ip": "not-an-ip"},
])
def test_bad_claim_bodies_answer_400_with_the_error_shape(api, db, body):
    response = claim(api, **body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and response.json()["message"]


def test_claims_need_a_token(db):
    assert APIClient().post("/api/v1/claims", {"member_id": "m"}, format="json").status_code == 401


def test_inventory_configuration_is_cached_for_the_configured_seconds_only(api, tenant, settings):
    from coupons.services import issue as issuing

    settings.COUPON_CONFIG_CACHE_SECONDS = 60
    inventory, _ = factories.make_pool(tenant, size=3)
    assert claim(api, member_id="m-1", inventory=inventory.public_id).status_code == 201
    type(inventory).objects.filter(pk=inventory.pk).update(is_active=False)
    assert claim(api, member_id="m-2", inventory=inventory.public_id).status_code == 201  # cached config
    issuing._inventories.clear()  # what the TTL does after COUPON_CONFIG_CACHE_SECONDS
    assert claim(api, member_id="m-3", inventory=inventory.public_id).json()["code"] == "not_eligible"
