"""R-RISK-1: daily frequency limits per device id, member, IP, phone and postcode, per inventory or policy, for claim
and for use — counted on success only, refused with 429 rate_limited and a Retry-After up to the tenant's midnight.
Runs with Redis (the Lua script) and, where marked, with the PostgreSQL fallback of the embedded quick start."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from coupons.services.issue import RequestContext, issue_from_pool
from coupons.models import CouponCode, CouponIssue
from risk import limits
from risk.models import FrequencyLimit
from tests import factories
from tests.risk.util import add_limit, claim

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["redis", "postgresql"])
def backend(request, settings):
    """Every test here runs twice: Redis counters (Lua) and the PostgreSQL fallback (USE_REDIS false)."""
    if request.param == "postgresql":
        settings.USE_REDIS = False
    else:
        from risk.limits import forget_counters

        forget_counters()  # this database's only: flushdb wiped the other xdist worker's keys mid-test
    return request.param


def counter_value(inventory, dimension, value, action="claim", scope=None):
    day, _ = limits.local_day(inventory.tenant.time_zone)
    key = limits.counter_key(tenant_id=inventory.tenant_id, scope=scope or f"i{inventory.pk}", action=action,
                             dimension=dimension, value=value, day=day)
    return limits.current(key, day)


def test_a_device_gets_five_claims_a_day_then_429_with_retry_after_until_local_midnight(tenant, api, backend):
    """R-RISK-1: the sixth claim from one device is refused in the API error shape, Retry-After = seconds to the
    tenant's midnight, and issues nothing."""
    inventory, _ = factories.make_pool(tenant, size=10)
    add_limit(inventory=inventory, dimension="device_id", max_per_day=5)
    for i in range(5):
        assert claim(api, inventory, f"m-{i}", device_id="dev-1").status_code == 201
    refused = claim(api, inventory, "m-5", device_id="dev-1")
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert body["details"]["dimension"] == "device_id" and body["details"]["limit"] == 5
    _, seconds_left = limits.local_day(tenant.time_zone)
    assert abs(int(refused["Retry-After"]) - seconds_left) <= 5
    assert body["details"]["retry_after"] == int(refused["Retry-After"])
    assert not CouponIssue.objects.filter(member_id="m-5").exists()
    assert counter_value(inventory, "device_id", "dev-1") == 5
    # another device is not affected
    assert claim(api, inventory, "m-6", device_id="dev-2").status_code == 201


def test_a_claim_that_fails_after_taking_the_counter_gives_the_slot_back(tenant, api, backend):
    """R-RISK-1 counts successes: sold out (after the counter was taken) and an already-claimed member cost nothing."""
    inventory = factories.make_inventory(tenant, total_quantity=10)
    factories.make_codes(factories.make_batch(inventory, quantity=2), 2)
    add_limit(inventory=inventory, dimension="device_id", max_per_day=3)
    assert claim(api, inventory, "a", device_id="d").status_code == 201
    assert claim(api, inventory, "a", device_id="d").status_code == 409  # already claimed: not counted
    assert claim(api, inventory, "b", device_id="d").status_code == 201
    sold_out = claim(api, inventory, "c", device_id="d")
    assert sold_out.status_code == 422 and sold_out.json()["code"] == "sold_out"
    assert counter_value(inventory, "device_id", "d") == 2
    factories.make_codes(factories.make_batch(inventory, quantity=5), 5)
    assert claim(api, inventory, "c", device_id="d").status_code == 201
    assert counter_value(inventory, "device_id", "d") == 3
    assert claim(api, inventory, "e", device_id="d").status_code == 429


def test_a_request_refused_by_one_dimension_consumes_none_of_the_others(tenant, api, backend):
    """R-RISK-1: all counters of a request move together (one script / one savepoint)."""
    inventory, _ = factories.make_pool(tenant, size=10)
    add_limit(inventory=inventory, dimension="device_id", max_per_day=5)
    add_limit(inventory=inventory, dimension="phone", max_per_day=1)
    assert claim(api, inventory, "m-1", device_id="d", phone="+82 10-1234-5678").status_code == 201
    # the same number written differently is the same phone
    refused = claim(api, inventory, "m-2", device_id="d", phone="+8210 1234 5678")
    assert refused.status_code == 429 and refused.json()["details"]["dimension"] == "phone"
    assert counter_value(inventory, "device_id", "d") == 1
    assert counter_value(inventory, "phone", "+821012345678") == 1


@pytest.mark.parametrize("dimension, context, other", [
    ("member", {}, None),
    ("ip", {"ip": "203.0.113.7"}, {"ip": "203.0.113.8"}),
    ("postcode", {"postcode": "04524"}, {"postcode": "04525"}),
    ("phone", {"phone": "010-1111-2222"}, {"phone": "010-1111-2223"}),
])
def test_every_dimension_limits_its_own_value(tenant, api, dimension, context, other):
    """R-RISK-1: member, IP, postcode and phone limits (device id above)."""
    inventory, _ = factories.make_pool(tenant, size=10, per_member_limit=5)
    add_limit(inventory=inventory, dimension=dimension, max_per_day=2)
    member = "same" if dimension == "member" else None
    assert claim(api, inventory, member or "m-1", **context).status_code == 201
    assert claim(api, inventory, member or "m-2", **context).status_code == 201
    refused = claim(api, inventory, member or "m-3", **context)
    assert refused.status_code == 429 and refused.json()["details"]["dimension"] == dimension
    if other is not None:
        assert claim(api, inventory, "m-4", **other).status_code == 201
    else:
        assert claim(api, inventory, "someone-else").status_code == 201


def test_the_ip_of_the_connection_counts_when_the_body_gives_none(tenant, api):
    inventory, _ = factories.make_pool(tenant, size=5)
    add_limit(inventory=inventory, dimension="ip", max_per_day=1)
    assert claim(api, inventory, "m-1").status_code == 201
    assert claim(api, inventory, "m-2").status_code == 429  # both from the test client's REMOTE_ADDR


def test_a_claim_without_the_limited_field_is_refused_400_naming_it_and_takes_nothing(tenant, api, backend):
    """R-RISK-1: a per-device limit cannot be dodged by leaving device_id out — 400 risk_context_required naming the
    field, nothing issued, no counter taken (not even the member counter the request does carry)."""
    inventory, _ = factories.make_pool(tenant, size=5)
    add_limit(inventory=inventory, dimension="device_id", max_per_day=5)
    add_limit(inventory=inventory, dimension="member", max_per_day=5)
    for body in ({}, {"device_id": ""}, {"device_id": "   "}):
        refused = claim(api, inventory, "m-1", **body)
        assert refused.status_code == 400, refused.content
        payload = refused.json()
        assert payload["code"] == "risk_context_required"
        assert "device_id" in payload["message"]
        assert list(payload["details"]["fields"]) == ["device_id"]
    assert not CouponIssue.objects.filter(member_id="m-1").exists()
    assert CouponCode.objects.filter(inventory=inventory, status="ISSUED").count() == 0
    assert counter_value(inventory, "member", "m-1") == 0
    assert claim(api, inventory, "m-1", device_id="d").status_code == 201
    assert counter_value(inventory, "member", "m-1") == 1 and counter_value(inventory, "device_id", "d") == 1


def test_every_missing_limited_field_is_named_and_a_policy_limit_counts_too(tenant, api):
    """R-RISK-1: phone and postcode limits on the policy, neither given → both named in one answer."""
    inventory, _ = factories.make_pool(tenant, size=5)
    add_limit(policy=inventory.policy, dimension="phone", max_per_day=1)
    add_limit(inventory=inventory, dimension="postcode", max_per_day=1)
    refused = claim(api, inventory, "m-1", device_id="d")
    assert refused.status_code == 400 and refused.json()["code"] == "risk_context_required"
    assert sorted(refused.json()["details"]["fields"]) == ["phone", "postcode"]
    assert claim(api, inventory, "m-1", phone="010-1111-2222", postcode="04524").status_code == 201


def test_without_limits_a_claim_needs_no_risk_context(tenant, api):
    """API.md: the risk context stays optional unless an operator configured a limit that counts it; a limit of
    another inventory, another action or an inactive one asks for nothing."""
    inventory, _ = factories.make_pool(tenant, size=5)
    other, _ = factories.make_pool(tenant, size=5)
    add_limit(inventory=other, dimension="device_id", max_per_day=5)
    add_limit(inventory=inventory, action="use", dimension="device_id", max_per_day=5)
    inactive = add_limit(inventory=inventory, dimension="phone", max_per_day=5)
    FrequencyLimit.objects.filter(pk=inactive.pk).update(is_active=False)
    assert claim(api, inventory, "m-1").status_code == 201


def test_an_allow_listed_member_skips_limits_and_so_needs_no_risk_context(tenant, api):
    """R-RISK-2: allowed (trusted) members skip the daily limits, including the field they would need."""
    from tests.risk.util import set_level

    inventory, _ = factories.make_pool(tenant, size=5)
    add_limit(inventory=inventory, dimension="device_id", max_per_day=1)
    set_level(tenant, "trusted", "allow")
    assert claim(api, inventory, "trusted").status_code == 201
    assert claim(api, inventory, "someone").json()["code"] == "risk_context_required"


def test_a_redemption_without_the_limited_field_is_refused_and_the_coupon_stays_issued(tenant, api, backend):
    """R-RISK-1 for use: a per-device use limit and a redemption without device_id → 400, nothing used."""
    inventory, _ = factories.make_pool(tenant, size=5)
    add_limit(inventory=inventory, action="use", dimension="device_id", max_per_day=1)
    code = claim(api, inventory, "m").json()["coupon"]["code"]

    def redeem(**context):
        return api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m", "order_id": "o-1",
                                                           "order": factories.order(50_000, order_id="o-1"),
                                                           **context}, format="json")

    refused = redeem()
    assert refused.status_code == 400 and refused.json()["code"] == "risk_context_required"
    assert "device_id" in refused.json()["details"]["fields"]
    assert CouponCode.objects.get(code=code).status == "ISSUED"
    assert redeem(device_id="d").status_code == 200
    assert counter_value(inventory, "device_id", "d", action="use") == 1


def test_a_policy_limit_counts_every_inventory_of_the_policy_together(tenant, api, backend):
    """R-RISK-1 'per policy': two inventories of one policy share the policy's counter."""
    policy = factories.make_approved_policy(tenant)
    first, _ = factories.make_pool(tenant, size=5, policy=policy)
    second, _ = factories.make_pool(tenant, size=5, policy=policy)
    add_limit(policy=policy, dimension="device_id", max_per_day=2)
    assert claim(api, first, "m-1", device_id="d").status_code == 201
    assert claim(api, second, "m-2", device_id="d").status_code == 201
    assert claim(api, second, "m-3", device_id="d").status_code == 429
    assert claim(api, first, "m-3", device_id="d").status_code == 429


def test_inactive_limits_and_limits_of_other_actions_do_not_count(tenant, api):
    inventory, _ = factories.make_pool(tenant, size=5)
    limit = add_limit(inventory=inventory, dimension="device_id", max_per_day=1)
    add_limit(inventory=inventory, action="use", dimension="device_id", max_per_day=1)
    FrequencyLimit.objects.filter(pk=limit.pk).update(is_active=False)
    for i in range(3):
        assert claim(api, inventory, f"m-{i}", device_id="d").status_code == 201


def test_operator_grants_are_not_frequency_limited(tenant):
    inventory, _ = factories.make_pool(tenant, size=5)
    add_limit(inventory=inventory, dimension="device_id", max_per_day=1)
    ctx = RequestContext(device_id="d")
    for i in range(3):
        issue_from_pool(inventory=inventory, member_id=f"g-{i}", via=CouponIssue.Via.GRANT, ctx=ctx)
    assert CouponCode.objects.filter(inventory=inventory, status="ISSUED").count() == 3


def test_use_limits_count_successful_redemptions_per_member(tenant, api, backend):
    """R-RISK-1 for use: one redemption per member per day; a refused redemption (below threshold) costs nothing."""
    policy = factories.make_approved_policy(tenant, kind="threshold", amount=3000, threshold=30000)
    inventory, _ = factories.make_pool(tenant, size=5, policy=policy, per_member_limit=3)
    add_limit(inventory=inventory, action="use", dimension="member", max_per_day=1)
    codes = [claim(api, inventory, "m").json()["coupon"]["code"] for _ in range(3)]

    def redeem(code, total, order_id):
        return api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m", "order_id": order_id,
                                                           "order": factories.order(total, order_id=order_id)},
                        format="json")

    assert redeem(codes[0], 10_000, "o-1").json()["code"] == "not_applicable"  # below threshold: not counted
    assert redeem(codes[0], 50_000, "o-2").status_code == 200
    refused = redeem(codes[1], 50_000, "o-3")
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert CouponCode.objects.get(code=codes[1]).status == "ISSUED"
    assert counter_value(inventory, "member", "m", action="use") == 1


def test_counters_are_per_local_day_of_the_tenant(tenant):
    """The key's day is the tenant's calendar day: 23:30 UTC on Jan 1 is already Jan 2 in Seoul."""
    moment = datetime(2026, 1, 1, 23, 30, tzinfo=ZoneInfo("UTC"))
    day, seconds_left = limits.local_day("Asia/Seoul", moment)
    assert str(day) == "2026-01-02" and seconds_left == 15 * 3600 + 30 * 60
    day_utc, left_utc = limits.local_day("UTC", moment)
    assert str(day_utc) == "2026-01-01" and left_utc == 30 * 60


def test_redis_counters_expire_after_the_local_day(tenant, api):
    from core.redis import client as redis_client

    inventory, _ = factories.make_pool(tenant, size=2)
    add_limit(inventory=inventory, dimension="device_id", max_per_day=5)
    assert claim(api, inventory, "m", device_id="ttl-device").status_code == 201
    day, seconds_left = limits.local_day(tenant.time_zone)
    key = limits.counter_key(tenant_id=tenant.pk, scope=f"i{inventory.pk}", action="claim", dimension="device_id",
                             value="ttl-device", day=day)
    assert seconds_left <= redis_client().ttl(key) <= seconds_left + 61
    assert b"ttl-device" not in key.encode()  # values are hashed, never stored in clear


def test_a_limit_needs_exactly_one_scope_of_its_own_tenant(tenant, other_tenant):
    from core.exceptions import InvalidInput
    from risk import services

    inventory, _ = factories.make_pool(tenant, size=1)
    foreign = factories.make_inventory(other_tenant)
    with pytest.raises(InvalidInput, match="exactly one"):
        services.frequency_limit_save(limit=FrequencyLimit(tenant=tenant, inventory=inventory,
                                                           policy=inventory.policy, action="claim",
                                                           dimension="member", max_per_day=1),
                                      actor=factories.TEST_ACTOR)
    with pytest.raises(InvalidInput, match="another tenant"):
        services.frequency_limit_save(limit=FrequencyLimit(tenant=tenant, inventory=foreign, action="claim",
                                                           dimension="member", max_per_day=1),
                                      actor=factories.TEST_ACTOR)
    add_limit(inventory=inventory, dimension="member", max_per_day=1)
    with pytest.raises(InvalidInput, match="already has a limit"):
        add_limit(inventory=inventory, dimension="member", max_per_day=3)
    assert FrequencyLimit.objects.count() == 1


def test_purge_frequency_counters_deletes_past_days_only(settings):
    """Cron frame (R-OPS-2): dry run counts, a run deletes the fallback's rows of past days, a rerun finds none."""
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    from risk.models import FrequencyCounter

    today = timezone.now().date()
    FrequencyCounter.objects.create(key="old", day=today - timedelta(days=5), count=3)
    FrequencyCounter.objects.create(key="today", day=today, count=1)

    def run(*args):
        out = StringIO()
        call_command("purge_frequency_counters", *args, stdout=out)
        return out.getvalue().strip().splitlines()[-1]

    assert run("--dry-run").startswith("purge_frequency_counters: deleted=1 dry_run=yes")
    assert FrequencyCounter.objects.count() == 2
    assert run().startswith("purge_frequency_counters: deleted=1 ")
    assert run().startswith("purge_frequency_counters: deleted=0 ")
    assert list(FrequencyCounter.objects.values_list("key", flat=True)) == ["today"]
