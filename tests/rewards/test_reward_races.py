"""R-REW-2 / R-NFR-3 under real concurrency: parallel identical triggers grant once (threads, one database
connection each). The twin test removes the unique grant key and shows the double grant appear."""
from __future__ import annotations

from collections import Counter

import pytest

from coupons.models import CouponCode, CouponIssue
from rewards import services
from rewards.models import MemberPoints, PointsEntry, RewardGrant
from tests import factories
from tests.coupons.concurrency import constraint_dropped, race, rendezvous
from tests.factories import api_for
from tests.rewards.factories import make_rule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]


def signup_burst(n: int = 20):
    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=5)
    make_rule(tenant, "signup", points=1000, inventory=inventory)
    token = factories.make_client(tenant)[1]
    body = {"member_id": "m-race", "trigger": "signup", "reference": "m-race"}
    return race(lambda _: api_for(token).post("/api/v1/rewards/triggers", body, format="json"), range(n),
                threads=n)


def test_twenty_parallel_identical_triggers_make_exactly_one_grant_one_credit_and_one_coupon():
    responses = signup_burst()
    assert Counter(r.status_code for r in responses) == {201: 1, 200: 19}
    assert len({r.content for r in responses}) == 1  # every answer is the one grant
    assert RewardGrant.objects.filter(member_id="m-race").count() == 1
    assert PointsEntry.objects.filter(member_id="m-race").count() == 1
    assert MemberPoints.objects.get(member_id="m-race").balance == 1000
    assert CouponIssue.objects.filter(member_id="m-race").count() == 1
    assert CouponCode.objects.filter(member_id="m-race").count() == 1


def test_without_the_unique_grant_key_parallel_triggers_grant_twice(monkeypatch):
    monkeypatch.setattr(services, "_existing_grant", rendezvous(services._existing_grant))  # two find no grant
    with constraint_dropped("rewards_rewardgrant", "rewardgrant_once_per_reference",
                            'ALTER TABLE rewards_rewardgrant ADD CONSTRAINT "rewardgrant_once_per_reference" '
                            "UNIQUE (tenant_id, member_id, trigger, reference)"):
        responses = signup_burst()
        grants = RewardGrant.objects.filter(member_id="m-race").count()
        assert Counter(r.status_code for r in responses)[201] == grants
        assert grants > 1  # the guard above is what makes the first test pass
