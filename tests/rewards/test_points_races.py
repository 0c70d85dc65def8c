"""Issue #16 (must show): points are money under real concurrency — threads, one PostgreSQL connection each.

50 concurrent spends of 100 from a balance of 1,000: exactly 10 succeed, the balance ends at 0 and each refund
restores exactly. The twins remove the guards and show what they prevent: without the member's row lock the
database's CHECKs still refuse every overspend; without the lock and the CHECKs the balance goes negative.
An exchange sent concurrently under one Idempotency-Key issues one coupon and debits once. Concurrent refunds of one
order credit it once; their twins remove the row lock (UNIQUE(refund_of) still holds) and then the constraint too."""
from __future__ import annotations

from collections import Counter
from contextlib import ExitStack

import pytest
from django.db import connection

from coupons.models import CouponCode
from rewards import services
from rewards.models import ExchangeOffer, MemberPoints, PointsEntry
from tests import factories
from tests.coupons.concurrency import constraint_dropped, race, rendezvous
from tests.factories import TEST_ACTOR, api_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]
M = "m-race"
SPENDERS = 50


def member_with(points: int):
    tenant = factories.make_tenant()
    services.points_adjust(tenant=tenant, member_id=M, amount=points, note="race", actor=TEST_ACTOR)
    return tenant, factories.make_client(tenant)[1]


def spend_burst(token: str) -> list:
    return race(lambda i: api_for(token).post(f"/api/v1/members/{M}/points/spend",
                                              {"order_id": f"o-{i}", "points": 100}, format="json"),
                range(SPENDERS), threads=SPENDERS)


def stored_balance(tenant) -> int:
    return MemberPoints.objects.get(tenant=tenant, member_id=M).balance


def without_row_locks(monkeypatch) -> None:
    """The guard removed: the member's points row is not locked and neither are the credits, and every spender has
    read the credits before any writes (``rendezvous``), so the check-then-act window is certainly open."""
    def lock_member(tenant_id, member_id):
        MemberPoints.objects.bulk_create([MemberPoints(tenant_id=tenant_id, member_id=member_id)],
                                         ignore_conflicts=True)
        return MemberPoints.objects.get(tenant_id=tenant_id, member_id=member_id)

    def open_credits(tenant, member_id, now):
        return list(PointsEntry.objects.filter(services._unexpired(now), tenant=tenant, member_id=member_id,
                                               amount__gt=0, remaining__gt=0).order_by("id"))

    monkeypatch.setattr(services, "_lock_member", lock_member)
    monkeypatch.setattr(services, "_open_credits", rendezvous(open_credits, parties=SPENDERS, timeout=30))


def definition(name: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conname = %s", [name])
        table, body = cursor.fetchone()
    return table, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {body}'


def test_fifty_concurrent_spends_of_100_from_1000_exactly_ten_succeed_and_refunds_restore_exactly():
    tenant, token = member_with(1000)
    responses = spend_burst(token)
    assert Counter(r.status_code for r in responses) == {201: 10, 422: 40}
    assert {r.json()["code"] for r in responses if r.status_code == 422} == {"insufficient_points"}
    assert stored_balance(tenant) == 0
    assert PointsEntry.objects.filter(tenant=tenant, reason="spend").count() == 10
    assert PointsEntry.objects.get(tenant=tenant, reason="adjustment").remaining == 0
    paid = [r.json()["spend"]["order_id"] for r in responses if r.status_code == 201]
    refunds = race(lambda order_id: api_for(token).post(f"/api/v1/members/{M}/points/refund",
                                                        {"order_id": order_id}, format="json"),
                   paid + paid, threads=20)  # every order refunded twice, concurrently
    assert Counter(r.status_code for r in refunds) == {200: 20}
    assert Counter(r.json()["refunded"] for r in refunds) == {True: 10, False: 10}
    assert stored_balance(tenant) == 1000
    assert PointsEntry.objects.filter(tenant=tenant, reason="refund").count() == 10


def test_without_the_row_lock_the_databases_checks_still_refuse_every_overspend(monkeypatch):
    without_row_locks(monkeypatch)
    tenant, token = member_with(1000)
    responses = spend_burst(token)
    assert Counter(r.status_code for r in responses) == {201: 10, 422: 40}
    assert stored_balance(tenant) == 0


def test_without_the_row_lock_and_the_checks_concurrent_spends_overspend_and_the_balance_goes_negative(monkeypatch):
    without_row_locks(monkeypatch)
    tenant, token = member_with(1000)
    with ExitStack() as stack:
        for name in ("pointsentry_remaining_within_credit", "memberpoints_balance_not_negative"):
            table, sql = definition(name)
            stack.enter_context(constraint_dropped(table, name, sql))
        responses = spend_burst(token)
        succeeded = Counter(r.status_code for r in responses)[201]
        assert succeeded > 10  # the guards above are what make the first test pass
        assert stored_balance(tenant) == 1000 - 100 * succeeded < 0


def test_an_exchange_sent_concurrently_under_one_key_issues_one_coupon_and_debits_once():
    tenant, token = member_with(1000)
    inventory, _codes = factories.make_pool(tenant, size=5)
    services.exchange_offer_save(offer=ExchangeOffer(tenant=tenant, inventory=inventory, points=300),
                                 actor=TEST_ACTOR)
    responses = race(lambda _: api_for(token).post(f"/api/v1/members/{M}/points/exchange",
                                                   {"inventory": inventory.public_id}, format="json",
                                                   HTTP_IDEMPOTENCY_KEY="exchange-1"), range(20), threads=20)
    fresh = [r for r in responses if r.status_code == 201 and r.get("Idempotent-Replayed") != "true"]
    assert len(fresh) == 1
    assert all(r.status_code == 201 and r.json() == fresh[0].json() or r.status_code == 409 for r in responses)
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {"request_in_progress"}
    assert CouponCode.objects.filter(tenant=tenant, member_id=M).count() == 1
    assert PointsEntry.objects.filter(tenant=tenant, reason="exchange").count() == 1
    assert stored_balance(tenant) == 700


def refund_unique_constraint() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'rewards_pointsentry'::regclass "
                       "AND contype = 'u' AND pg_get_constraintdef(oid) = 'UNIQUE (tenant_id, refund_of_id)'")
        return cursor.fetchone()[0]


def refund_burst(monkeypatch, n: int = 10):
    """n concurrent refunds of one order, with the member's row lock removed and every refund having seen the
    order not yet refunded before any credits (``rendezvous``)."""
    tenant, token = member_with(1000)
    services.points_spend_order(tenant=tenant, member_id=M, order_id="o-1", points=400)
    monkeypatch.setattr(services, "_lock_member", lambda tenant_id, member_id: MemberPoints.objects.get(
        tenant_id=tenant_id, member_id=member_id))
    monkeypatch.setattr(services, "spend_refund", rendezvous(services.spend_refund, parties=n, timeout=30))
    responses = race(lambda _: api_for(token).post(f"/api/v1/members/{M}/points/refund", {"order_id": "o-1"},
                                                   format="json"), range(n), threads=n)
    return tenant, responses


def test_without_the_row_lock_unique_refund_of_still_credits_a_refund_once(monkeypatch):
    tenant, responses = refund_burst(monkeypatch)
    assert Counter(r.status_code for r in responses) == {200: 10}
    assert Counter(r.json()["refunded"] for r in responses) == {True: 1, False: 9}
    assert stored_balance(tenant) == 1000
    assert PointsEntry.objects.filter(tenant=tenant, reason="refund").count() == 1


def test_without_the_row_lock_and_unique_refund_of_concurrent_refunds_credit_twice(monkeypatch):
    name = refund_unique_constraint()
    with constraint_dropped("rewards_pointsentry", name,
                            f'ALTER TABLE rewards_pointsentry ADD CONSTRAINT "{name}" UNIQUE (tenant_id, refund_of_id)'):
        tenant, responses = refund_burst(monkeypatch)
        credited = Counter(r.json()["refunded"] for r in responses if r.status_code == 200)[True]
        assert credited > 1  # the guards above are what make a refund credit once
        assert stored_balance(tenant) == 600 + 400 * credited > 1000
