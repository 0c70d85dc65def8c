"""R-NFR-3 for flow 1 (R-PART-4): distributions racing pool claims never put a code in two hands — over real
requests, real connections and PostgreSQL row locks. The twin removes the distribution's guards (SKIP LOCKED and
the status re-check, and the CHECK that an unissued code has no member) and shows the violation appear."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections

from core.models import ApiClient
from coupons.services import issue as issuing
from coupons.models import CouponCode, CouponIssue
from partners import distribution
from partners.models import Distribution
from partners.services import partner_create
from tests import factories
from tests.coupons.concurrency import constraint_dropped, race
from tests.factories import api_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]


def world(pool: int):
    tenant = factories.make_tenant()
    inventory = factories.make_inventory(tenant, total_quantity=pool)
    factories.make_codes(factories.make_batch(inventory, quantity=pool), pool)
    for code in ("GS25", "CU"):
        partner_create(tenant=tenant, name=code, code=code, actor=factories.TEST_ACTOR)
    member = factories.make_client(tenant)[1]
    operator = factories.make_client(tenant, scope=ApiClient.Scope.OPERATOR)[1]
    return tenant, inventory, member, operator


def hands_per_code(inventory) -> Counter:
    """How many holders each code has: a distribution, and an issue (a member) that did not come through it."""
    holders: Counter = Counter()
    for code_id, _dist_id in CouponCode.objects.filter(inventory=inventory, distribution_id__isnull=False
                                                      ).values_list("id", "distribution_id"):
        holders[code_id] += 1
    for code_id, via in CouponIssue.objects.filter(inventory=inventory).values_list("coupon_id", "via"):
        if via != "code":  # a member registering a distributed code is the same hand, not a second one
            holders[code_id] += 1
    return holders


def test_two_distributions_and_200_pool_claims_at_once_never_share_a_code():
    _tenant, inventory, member, operator = world(300)

    def act(i: int):
        if i in (0, 1):
            return api_for(operator).post("/api/v1/distributions", {
                "inventory": inventory.public_id, "partner": ("GS25", "CU")[i], "quantity": 50}, format="json")
        return api_for(member).post("/api/v1/claims", {"member_id": f"m-{i}", "inventory": inventory.public_id},
                                    format="json")

    # the distributions start in the middle of the claims
    responses = race(act, [*range(2, 102), 0, 1, *range(102, 202)], threads=40)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 202}, Counter((r.status_code, r.json().get("code")) for r in responses)
    assert max(hands_per_code(inventory).values()) == 1
    dists = list(Distribution.objects.filter(inventory=inventory))
    assert sorted(d.quantity for d in dists) == [50, 50]
    assert CouponCode.objects.filter(inventory=inventory, status="DISTRIBUTED").count() == 100
    assert CouponCode.objects.filter(inventory=inventory, status="ISSUED", distribution_id__isnull=True).count() == 200
    assert CouponCode.objects.filter(inventory=inventory, status="AVAILABLE").count() == 0


_RESERVE_UNGUARDED = (distribution._RESERVE.replace("FOR UPDATE SKIP LOCKED", "")
                      .replace("AND c.status = 'AVAILABLE'", ""))


def _wait_until_blocked(pid_holder: list[int], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            if pid_holder:
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid_holder[0]])
                row = cursor.fetchone()
                if row and row[0] == "Lock":
                    return
            time.sleep(0.05)
    raise AssertionError("the distribution never waited on a claimed code's row lock")


def test_without_its_guards_a_distribution_takes_codes_that_members_claimed(monkeypatch):
    """Claims take their codes and hold their transactions open; the unguarded distribution reads those codes as
    AVAILABLE from its snapshot, queues on their row locks, and overwrites them once the claims commit."""
    _tenant, inventory, member, operator = world(20)
    monkeypatch.setattr(distribution, "_RESERVE", _RESERVE_UNGUARDED)
    release = threading.Event()
    real_consume = issuing.budget_consume

    def held(*args, **kwargs):  # runs right after a claim took its code, inside its transaction
        release.wait(timeout=30)
        return real_consume(*args, **kwargs)

    monkeypatch.setattr(issuing, "budget_consume", held)
    dist_pid: list[int] = []
    results: dict[str, object] = {}

    def claim(i: int) -> None:
        try:
            results[f"claim-{i}"] = api_for(member).post(
                "/api/v1/claims", {"member_id": f"m-{i}", "inventory": inventory.public_id}, format="json")
        finally:
            connection.close()

    def distribute() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                dist_pid.append(cursor.fetchone()[0])
            results["distribution"] = api_for(operator).post("/api/v1/distributions", {
                "inventory": inventory.public_id, "partner": "GS25", "quantity": 20}, format="json")
        finally:
            connection.close()

    with constraint_dropped("coupons_couponcode", "code_unissued_has_no_member",
                            "ALTER TABLE coupons_couponcode ADD CONSTRAINT code_unissued_has_no_member CHECK "
                            "(NOT (status IN ('AVAILABLE', 'MAPPED', 'DISTRIBUTED')) OR member_id IS NULL)"):
        claims = [threading.Thread(target=claim, args=(i,)) for i in range(5)]
        for thread in claims:
            thread.start()
        deadline = time.monotonic() + 20
        while True:  # until the five claims have each taken (and row-locked) a code
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                               "WHERE c.relname = 'coupons_couponcode' AND l.mode = 'RowExclusiveLock'")
                if cursor.fetchone()[0] >= 5:
                    break
            assert time.monotonic() < deadline, "the claims never took their codes"
            time.sleep(0.05)
        distributor = threading.Thread(target=distribute)
        distributor.start()
        _wait_until_blocked(dist_pid)
        release.set()
        for thread in [*claims, distributor]:
            thread.join(timeout=60)
        assert results["distribution"].status_code == 201, results["distribution"].json()
        assert max(hands_per_code(inventory).values()) > 1  # the violation the guards prevent
