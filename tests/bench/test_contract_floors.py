"""The contract floors of ``bench claim|redeem`` (#21, R-NFR-2, bench/floor.py): they are the least a claim or a
redemption can do and keep the contract, so each must really do that work — a floor that wrote less would make the
targets look out of reach when they are not."""
from __future__ import annotations

import pytest

from bench.floor import CLAIM_FLOOR_PATH, FLOOR_PATH, REDEEM_FLOOR_PATH
from core.models import AuditLog
from coupons.models import CouponCode, CouponIssue, CouponUsage
from coupons.services.counters import inventory_counts
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.urls("bench.urls")]


def test_the_claim_floor_takes_a_code_and_writes_every_row_a_claim_owes():
    tenant = factories.make_tenant()
    inventory, _codes = factories.make_pool(tenant, size=5, per_member_limit=2)
    api = factories.make_api(tenant)

    answers = [api.post(CLAIM_FLOOR_PATH, {"member_id": "m-1", "inventory": inventory.public_id}, format="json")
               for _ in range(2)]

    assert [a.status_code for a in answers] == [201, 201]
    codes = [a.json()["code"] for a in answers]
    assert len(set(codes)) == 2
    taken = CouponCode.objects.filter(tenant=tenant, code__in=codes)
    assert {(c.status, c.member_id) for c in taken} == {("ISSUED", "m-1")}
    assert sorted(CouponIssue.objects.filter(inventory=inventory).values_list("member_id", "slot")) == \
        [("m-1", 1), ("m-1", 2)]  # the slot count under the member's lock
    assert AuditLog.objects.filter(tenant=tenant, action="coupon.issue").count() == 2
    assert inventory_counts(inventory.pk)["issued"] == 2


def test_the_redemption_floor_uses_the_code_writes_its_rows_and_counts_the_lookup(api, tenant, settings):
    inventory, _codes = factories.make_pool(tenant, size=3)
    claimed = [api.post("/api/v1/claims", {"member_id": f"m-{i}", "inventory": inventory.public_id},
                        format="json").json()["coupon"]["code"] for i in range(3)]
    settings.COUPON_FAILED_GUESS_CLIENT_LIMIT = 1  # a found code's lookup is given back, or the second one is refused

    def redeem(i: int):
        return api.post(REDEEM_FLOOR_PATH.replace("<str:code>", claimed[i]),
                        {"member_id": f"m-{i}", "order_id": f"o-{i}"}, format="json")

    answers = [redeem(0), redeem(1)]

    assert [a.status_code for a in answers] == [200, 200], answers[1].content
    coupon = CouponCode.objects.get(tenant=tenant, code=claimed[0])
    assert coupon.status == "USED"
    usage = CouponUsage.objects.get(coupon=coupon)
    assert (usage.member_id, usage.order_id, usage.discount) == ("m-0", "o-0", 3000)
    assert AuditLog.objects.filter(tenant=tenant, action="coupon.redeem").count() == 2
    assert inventory_counts(inventory.pk)["used"] == 2
    # The code-lookup budgets are reserved before the code is read: a client out of lookups changes nothing.
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = "2/m"
    refused = redeem(2)
    assert refused.status_code == 429 and refused.json()["details"]["reason"] == "client_rate"
    assert CouponCode.objects.get(tenant=tenant, code=claimed[2]).status == "ISSUED"


def test_a_scratch_database_made_again_does_not_inherit_the_last_runs_redis_keys(settings):
    """The scratch database restarts its ids, so the last run's spent lookup budgets would refuse the new run's first
    requests (a run of the redemption floor got nothing but 429s): its keys go when it is made again."""
    import redis

    from bench.db import forget_redis_keys

    client = redis.Redis.from_url(settings.REDIS_URL)
    ours = ["rl:sec:bench_x_benchapi:{t1}:guess:c:1", "risk:bench_x_benchapi:{t1}:member:claim:d:h:20261207",
            "coupons:bloom:bench_x_benchapi:{t1}"]
    others = ["rl:sec:bench_x_benchapi_flat:{t1}:guess:c:1", "rl:sec:bench_x:{t1}:client:1"]
    for key in ours + others:
        client.set(key, 1)
    try:
        assert forget_redis_keys("bench_x_benchapi") == 3
        assert [client.exists(key) for key in ours + others] == [0, 0, 0, 1, 1]
    finally:
        client.delete(*others)


@pytest.mark.urls("coupon_project.urls")
def test_the_product_serves_no_floor(api):
    """The floors write codes with no validation, risk rule or idempotency: only the benchmark's server mounts them.
    A member token against the product's URLs finds none of them."""
    for path in (FLOOR_PATH, CLAIM_FLOOR_PATH, REDEEM_FLOOR_PATH.replace("<str:code>", "ABCDEFGH")):
        assert api.post(path, {"member_id": "m-1"}, format="json").status_code == 404, path
