"""Issue #16, seed 003 "save money": points pay part of an order (all or nothing, one spend per order, oldest expiry
first), come back when the order is refunded (exactly, once), buy a coupon of an inventory offered for points, and
staff correct a balance with a reason (audited). Service and API, on PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.models import AuditLog
from coupons.models import CouponCode
from rewards import services
from rewards.exceptions import InsufficientPoints
from rewards.models import ExchangeOffer, MemberPoints, PointsAllocation, PointsEntry
from rewards.selectors import points_balance
from tests import factories
from tests.factories import TEST_ACTOR

pytestmark = pytest.mark.django_db
M = "m-1"


def credit(tenant, amount: int, *, days: int | None = None, member_id: str = M) -> PointsEntry:
    return services.points_adjust(tenant=tenant, member_id=member_id, amount=amount, note="welcome", actor=TEST_ACTOR,
                                  valid_days=days)


def balance(tenant, member_id: str = M) -> int:
    stored = MemberPoints.objects.get(tenant=tenant, member_id=member_id).balance
    spendable = points_balance(tenant=tenant, member_id=member_id, now=timezone.now())
    assert stored == spendable  # nothing has expired in these tests: the running total and the ledger agree
    return stored


def spend(api, points: int, order_id: str = "o-1", member_id: str = M, **extra):
    return api.post(f"/api/v1/members/{member_id}/points/spend", {"order_id": order_id, "points": points, **extra},
                    format="json")


def refund(api, order_id: str = "o-1", member_id: str = M):
    return api.post(f"/api/v1/members/{member_id}/points/refund", {"order_id": order_id}, format="json")


def ledger(tenant) -> list[tuple[int, str]]:
    return list(PointsEntry.objects.filter(tenant=tenant).order_by("id").values_list("amount", "reason"))


# --- spend -------------------------------------------------------------------------------------------------------------

def test_a_spend_takes_the_soonest_expiring_credits_first_and_reduces_what_is_left_to_pay(api, tenant,
                                                                                          member_client):
    late, never, soon = credit(tenant, 300, days=60), credit(tenant, 500), credit(tenant, 200, days=10)
    response = spend(api, 400, payable=36000)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["payable"] == 35600 and body["balance"] == 600
    assert {k: body["spend"][k] for k in ("member_id", "order_id", "points", "refunded_at")} == {
        "member_id": M, "order_id": "o-1", "points": 400, "refunded_at": None}
    remaining = dict(PointsEntry.objects.filter(pk__in=[late.pk, never.pk, soon.pk]).values_list("pk", "remaining"))
    assert remaining == {soon.pk: 0, late.pk: 100, never.pk: 500}
    debit = PointsEntry.objects.get(reason="spend")
    assert (debit.amount, debit.order_id, debit.client_id) == (-400, "o-1", member_client[0].pk)
    assert list(PointsAllocation.objects.filter(debit=debit).values_list("credit_id", "amount")) == [
        (soon.pk, 200), (late.pk, 200)]
    assert balance(tenant) == 600
    assert AuditLog.objects.filter(action="points.spend", object_id=str(debit.pk)).count() == 1


def test_a_spend_larger_than_the_balance_is_refused_whole_and_writes_nothing(api, tenant):
    credit(tenant, 250)
    before = ledger(tenant)
    response = spend(api, 300)
    assert response.status_code == 422
    assert response.json()["code"] == "insufficient_points"
    assert response.json()["details"] == {"balance": 250, "requested": 300}
    assert ledger(tenant) == before and PointsAllocation.objects.count() == 0
    assert balance(tenant) == 250


def test_the_same_order_and_points_again_debits_nothing_and_other_points_are_refused(api, tenant):
    credit(tenant, 1000)
    assert spend(api, 300).status_code == 201
    again = spend(api, 300)
    assert again.status_code == 200 and again.json()["balance"] == 700
    other = spend(api, 200)
    assert other.status_code == 409 and other.json()["code"] == "points_already_spent"
    someone_else = spend(api, 300, member_id="m-2")
    assert someone_else.status_code == 409 and someone_else.json()["code"] == "points_already_spent"
    assert PointsEntry.objects.filter(reason="spend").count() == 1
    assert balance(tenant) == 700


def test_points_above_what_is_left_to_pay_are_refused(api, tenant):
    credit(tenant, 1000)
    response = spend(api, 600, payable=500)
    assert response.status_code == 422 and response.json()["code"] == "points_exceed_payable"
    assert PointsEntry.objects.filter(reason="spend").count() == 0


@pytest.mark.parametrize("body, field", [
    ({"order_id": "o-1", "points": 0}, "points"),
    ({"order_id": "o-1", "points": "100"}, "points"),
    ({"order_id": "o-1", "points": True}, "points"),
    ({"order_id": "o-1", "points": 10**12 + 1}, "points"),
    ({"points": 100}, "order_id"),
    ({"order_id": " ", "points": 100}, "order_id"),
    ({"order_id": "o-1", "points": 100, "payable": -1}, "payable"),
])
def test_a_bad_spend_is_refused_with_400_naming_the_field_and_changes_nothing(api, tenant, body, field):
    credit(tenant, 1000)
    response = api.post(f"/api/v1/members/{M}/points/spend", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["details"]["fields"]
    assert PointsEntry.objects.filter(reason="spend").count() == 0 and balance(tenant) == 1000


def test_the_refusal_is_in_korean_for_a_korean_caller(api, tenant):
    credit(tenant, 10)
    response = api.post(f"/api/v1/members/{M}/points/spend", {"order_id": "o-1", "points": 100}, format="json",
                        HTTP_ACCEPT_LANGUAGE="ko")
    assert response.json()["code"] == "insufficient_points"
    assert response.json()["message"] == "회원의 포인트가 부족합니다."


def test_another_tenants_member_with_the_same_id_is_never_touched(api, tenant, other_tenant):
    credit(other_tenant, 1000)
    response = spend(api, 100)
    assert response.status_code == 422 and response.json()["details"]["balance"] == 0
    assert balance(other_tenant) == 1000


# --- refund ------------------------------------------------------------------------------------------------------------

def test_a_refund_restores_exactly_what_the_order_took_with_each_credits_expiry_and_only_once(api, tenant):
    soon, never = credit(tenant, 200, days=10), credit(tenant, 500)
    assert spend(api, 400).status_code == 201
    first = refund(api)
    assert first.status_code == 200, first.content
    assert first.json()["refunded"] is True and first.json()["balance"] == 700
    assert first.json()["spend"]["refunded_at"] is not None
    back = list(PointsEntry.objects.filter(reason="refund").order_by("id").values_list("amount", "remaining",
                                                                                       "expires_at"))
    assert back == [(200, 200, soon.expires_at), (200, 200, None)]
    second = refund(api)
    assert second.status_code == 200 and second.json()["refunded"] is False and second.json()["balance"] == 700
    assert PointsEntry.objects.filter(reason="refund").count() == 2
    assert balance(tenant) == 700
    assert AuditLog.objects.filter(action="points.refund").count() == 1
    assert never.pk  # the never-expiring credit paid 200 and got it back as a never-expiring credit


def test_refunding_an_order_without_points_is_a_clear_404_and_changes_nothing(api, tenant):
    credit(tenant, 1000)
    response = refund(api, "o-404")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["message"] == "No points were spent on this order."
    assert spend(api, 100, order_id="o-9").status_code == 201
    assert refund(api, "o-9", member_id="m-2").status_code == 404  # another member's order: the same answer
    assert balance(tenant) == 900


def test_the_database_refuses_a_second_refund_of_the_same_allocation(tenant):
    credit(tenant, 100)
    debit, _ = services.points_spend_order(tenant=tenant, member_id=M, order_id="o-1", points=100)
    services.points_refund_order(tenant=tenant, member_id=M, order_id="o-1")
    allocation = PointsAllocation.objects.get(debit=debit)
    with pytest.raises(IntegrityError), transaction.atomic():
        PointsEntry.objects.create(tenant=tenant, member_id=M, amount=100, remaining=100, reason="refund",
                                   refund_of=allocation)


def test_the_database_refuses_a_second_spend_on_the_same_order(tenant):
    credit(tenant, 1000)
    services.points_spend_order(tenant=tenant, member_id=M, order_id="o-1", points=100)
    with pytest.raises(IntegrityError), transaction.atomic():
        PointsEntry.objects.create(tenant=tenant, member_id=M, amount=-100, reason="spend", order_id="o-1")


def test_expiry_takes_only_the_unspent_part_and_a_refund_after_expiry_comes_back_expired(tenant):
    lot = credit(tenant, 100, days=10)
    services.points_spend_order(tenant=tenant, member_id=M, order_id="o-1", points=60)
    PointsEntry.objects.filter(pk=lot.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.points_expire().points == 40  # the 60 already spent are not expired
    assert MemberPoints.objects.get(member_id=M).balance == 0
    services.points_refund_order(tenant=tenant, member_id=M, order_id="o-1")
    assert points_balance(tenant=tenant, member_id=M, now=timezone.now()) == 0  # its credit's expiry has passed
    assert services.points_expire().points == 60
    assert MemberPoints.objects.get(member_id=M).balance == 0


# --- exchange ----------------------------------------------------------------------------------------------------------

@pytest.fixture
def offer(tenant):
    inventory, _codes = factories.make_pool(tenant, size=2)
    return services.exchange_offer_save(offer=ExchangeOffer(tenant=tenant, inventory=inventory, points=400),
                                        actor=TEST_ACTOR)


def exchange(api, inventory: str, member_id: str = M, **headers):
    return api.post(f"/api/v1/members/{member_id}/points/exchange", {"inventory": inventory}, format="json",
                    **headers)


def test_an_exchange_issues_one_coupon_and_debits_its_price_together(api, tenant, offer):
    credit(tenant, 1000)
    response = exchange(api, offer.inventory.public_id)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["points"] == 400 and body["balance"] == 600
    assert body["coupon"]["status"] == "ISSUED" and body["coupon"]["member_id"] == M
    debit = PointsEntry.objects.get(reason="exchange")
    assert (debit.amount, debit.coupon.code) == (-400, body["coupon"]["code"])
    assert CouponCode.objects.filter(member_id=M).count() == 1
    assert AuditLog.objects.filter(action="points.exchange").count() == 1


def test_an_exchange_key_reused_answers_the_same_coupon_without_a_second_debit(api, tenant, offer):
    credit(tenant, 1000)
    first = exchange(api, offer.inventory.public_id, HTTP_IDEMPOTENCY_KEY="x-1")
    again = exchange(api, offer.inventory.public_id, HTTP_IDEMPOTENCY_KEY="x-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    other_body = api.post(f"/api/v1/members/{M}/points/exchange", {"inventory": "OTHERINVENTORY01"},
                          format="json", HTTP_IDEMPOTENCY_KEY="x-1")
    assert other_body.status_code == 422 and other_body.json()["code"] == "idempotency_key_reused"
    assert PointsEntry.objects.filter(reason="exchange").count() == 1
    assert CouponCode.objects.filter(member_id=M).count() == 1
    assert balance(tenant) == 600


def test_too_few_points_issue_no_coupon(api, tenant, offer):
    credit(tenant, 399)
    response = exchange(api, offer.inventory.public_id)
    assert response.status_code == 422 and response.json()["code"] == "insufficient_points"
    assert CouponCode.objects.filter(member_id=M).count() == 0 and balance(tenant) == 399


def test_a_sold_out_inventory_debits_nothing(api, tenant, offer):
    credit(tenant, 2000)
    assert exchange(api, offer.inventory.public_id, member_id=M).status_code == 201
    credit(tenant, 2000, member_id="m-2")
    assert exchange(api, offer.inventory.public_id, member_id="m-2").status_code == 201
    credit(tenant, 2000, member_id="m-3")
    response = exchange(api, offer.inventory.public_id, member_id="m-3")
    assert response.status_code == 422 and response.json()["code"] == "sold_out"
    assert balance(tenant, "m-3") == 2000 and not PointsEntry.objects.filter(member_id="m-3", reason="exchange")


def test_an_inventory_not_offered_or_switched_off_is_not_exchangeable_and_an_unknown_one_is_not_found(
        api, tenant, offer, other_tenant):
    credit(tenant, 1000)
    plain, _ = factories.make_pool(tenant, size=1)
    assert exchange(api, plain.public_id).json()["code"] == "not_exchangeable"
    ExchangeOffer.objects.filter(pk=offer.pk).update(is_active=False)
    response = exchange(api, offer.inventory.public_id)
    assert response.status_code == 422 and response.json()["code"] == "not_exchangeable"
    foreign, _ = factories.make_pool(other_tenant, size=1)
    assert exchange(api, foreign.public_id).status_code == 404
    assert exchange(api, "NOSUCHINVENTORY1").status_code == 404
    assert balance(tenant) == 1000


def test_an_offer_of_another_tenants_inventory_or_without_a_price_is_refused(tenant, other_tenant):
    from core.exceptions import InvalidInput

    foreign, _ = factories.make_pool(other_tenant, size=1)
    with pytest.raises(InvalidInput):
        services.exchange_offer_save(offer=ExchangeOffer(tenant=tenant, inventory=foreign, points=10),
                                     actor=TEST_ACTOR)
    mine, _ = factories.make_pool(tenant, size=1)
    with pytest.raises(InvalidInput):
        services.exchange_offer_save(offer=ExchangeOffer(tenant=tenant, inventory=mine, points=0), actor=TEST_ACTOR)
    assert ExchangeOffer.objects.count() == 0


# --- manual adjustment -------------------------------------------------------------------------------------------------

def test_an_adjustment_needs_a_reason_and_never_takes_the_balance_below_zero(tenant):
    from core.exceptions import InvalidInput

    credit(tenant, 100)
    with pytest.raises(InvalidInput) as no_reason:
        services.points_adjust(tenant=tenant, member_id=M, amount=50, note="  ", actor=TEST_ACTOR)
    assert no_reason.value.code == "reason_required"
    with pytest.raises(InsufficientPoints):
        services.points_adjust(tenant=tenant, member_id=M, amount=-101, note="correction", actor=TEST_ACTOR)
    entry = services.points_adjust(tenant=tenant, member_id=M, amount=-30, note="double credit", actor=TEST_ACTOR)
    assert (entry.amount, entry.reason, entry.note) == (-30, "adjustment", "double credit")
    assert balance(tenant) == 70
    audit = AuditLog.objects.filter(action="points.adjust").order_by("id").last()
    assert audit.after["note"] == "double credit" and audit.after["amount"] == -30

