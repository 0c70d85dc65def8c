"""R-REW-1/2 over the API: POST /rewards/triggers grants once per (member, trigger, reference), with the amounts of
seed 003; GET /members/{id}/points shows the balance and ledger of the caller's tenant only."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.models import AuditLog
from coupons.models import CouponCode, CouponIssue
from rewards.models import MemberPoints, PointsEntry, RewardGrant
from rewards.services import reward_rule_save
from tests import factories
from tests.rewards.factories import make_rule

pytestmark = pytest.mark.django_db


def trigger(api, **body):
    return api.post("/api/v1/rewards/triggers", body, format="json")


def nothing_written():
    return (RewardGrant.objects.count(), PointsEntry.objects.count(), MemberPoints.objects.count(),
            CouponIssue.objects.count()) == (0, 0, 0, 0)


# --- seed 003 amounts -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("has_image, expected", [(False, 500), (True, 2000)])
def test_a_review_earns_the_text_or_the_image_amount(api, tenant, has_image, expected):
    make_rule(tenant, "review", review_text_points=500, review_image_points=2000)
    response = trigger(api, member_id="m-1", trigger="review", reference="review-9", has_image=has_image)
    assert response.status_code == 201
    assert response.json()["grant"]["points"] == expected
    assert list(PointsEntry.objects.values_list("member_id", "amount", "reason")) == [("m-1", expected, "grant")]


@pytest.mark.parametrize("amount, rate_bp, unit, expected", [
    (100_100, 100, 10, 1_000),    # 1 % of 100,100 is 1,001 → rounded down to the unit: 1,000
    (100_000, 100, 10, 1_000),
    (99_999, 100, 10, 990),       # 999.99 → 999 → 990
    (12_345, 250, 1, 308),        # 2.5 % = 308.625 → 308
    (12_345, 250, 100, 300),
    (1_001, 10_000, 10, 1_000),   # 100 %
    (999, 100, 10, 0),            # 9.99 → 0: recorded, nothing credited
])
def test_purchase_confirmation_earns_the_rate_of_the_payment_rounded_down_to_the_tenant_unit(
        api, tenant, amount, rate_bp, unit, expected):
    tenant.rounding_unit = unit
    tenant.save()
    make_rule(tenant, "purchase_confirmed", purchase_rate_bp=rate_bp)
    response = trigger(api, member_id="m-1", trigger="purchase_confirmed", reference="order-1", amount=amount)
    assert response.status_code == 201
    assert response.json()["grant"]["points"] == expected
    assert RewardGrant.objects.get().points == expected
    assert list(PointsEntry.objects.values_list("amount", flat=True)) == ([expected] if expected else [])


def test_signup_grants_the_signup_points_and_the_signup_coupon(api, tenant):
    inventory, codes = factories.make_pool(tenant, size=3)
    make_rule(tenant, "signup", points=3000, inventory=inventory, points_valid_days=30)
    response = trigger(api, member_id="m-1", trigger="signup", reference="m-1")
    assert response.status_code == 201
    grant = response.json()["grant"]
    assert grant["points"] == 3000 and grant["trigger"] == "signup" and grant["reference"] == "m-1"
    assert grant["coupon"]["code"] == codes[0].code
    assert grant["coupon"]["status"] == "ISSUED" and grant["coupon"]["member_id"] == "m-1"
    assert grant["coupon_error"] is None
    assert grant["points_expire_at"] is not None
    assert CouponCode.objects.get(pk=codes[0].pk).member_id == "m-1"
    assert AuditLog.objects.filter(action="reward.grant").count() == 1


# --- idempotency (R-REW-2) ------------------------------------------------------------------------------------------

def test_a_repeated_trigger_answers_the_earlier_grant_and_grants_nothing(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=3)
    make_rule(tenant, "signup", points=1000, inventory=inventory)
    first = trigger(api, member_id="m-1", trigger="signup", reference="m-1")
    again = trigger(api, member_id="m-1", trigger="signup", reference="m-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert RewardGrant.objects.count() == 1
    assert PointsEntry.objects.count() == 1
    assert CouponIssue.objects.filter(member_id="m-1").count() == 1
    assert MemberPoints.objects.get(member_id="m-1").balance == 1000


def test_another_reference_or_trigger_is_a_new_grant(api, tenant):
    make_rule(tenant, "review", review_text_points=100, review_image_points=200)
    make_rule(tenant, "signup", points=1000)
    assert trigger(api, member_id="m-1", trigger="review", reference="r-1").status_code == 201
    assert trigger(api, member_id="m-1", trigger="review", reference="r-2").status_code == 201
    assert trigger(api, member_id="m-1", trigger="signup", reference="r-1").status_code == 201
    assert MemberPoints.objects.get(member_id="m-1").balance == 1200


def test_changing_a_rule_never_changes_past_grants(api, tenant):
    rule = make_rule(tenant, "review", review_text_points=100, review_image_points=200)
    trigger(api, member_id="m-1", trigger="review", reference="r-1")
    rule.review_text_points = 300
    reward_rule_save(rule=rule, actor=factories.TEST_ACTOR)
    again = trigger(api, member_id="m-1", trigger="review", reference="r-1")
    assert again.status_code == 200 and again.json()["grant"]["points"] == 100
    assert trigger(api, member_id="m-1", trigger="review", reference="r-2").json()["grant"]["points"] == 300
    first = RewardGrant.objects.get(reference="r-1")
    assert (first.points, first.rule_snapshot["review_text_points"]) == (100, 100)
    assert PointsEntry.objects.get(grant=first).amount == 100


# --- the coupon cannot be issued ----------------------------------------------------------------------------------

def test_a_sold_out_coupon_still_grants_the_points_and_says_why(api, tenant):
    inventory, codes = factories.make_pool(tenant, size=1)
    make_rule(tenant, "signup", points=1000, inventory=inventory)
    trigger(api, member_id="m-1", trigger="signup", reference="m-1")
    response = trigger(api, member_id="m-2", trigger="signup", reference="m-2")
    assert response.status_code == 201
    grant = response.json()["grant"]
    assert (grant["points"], grant["coupon"], grant["coupon_error"]) == (1000, None, "sold_out")
    assert MemberPoints.objects.get(member_id="m-2").balance == 1000
    assert RewardGrant.objects.get(member_id="m-2").coupon_error == "sold_out"


def test_a_coupon_only_rule_with_a_sold_out_pool_answers_sold_out_and_records_nothing(api, tenant):
    inventory, _ = factories.make_pool(tenant, size=0)
    make_rule(tenant, "signup", inventory=inventory)
    response = trigger(api, member_id="m-1", trigger="signup", reference="m-1")
    assert response.status_code == 422
    assert response.json()["code"] == "sold_out"
    assert nothing_written()


# --- refusals -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, code", [
    ({"member_id": "m-1", "trigger": "login", "reference": "x"}, "unknown_trigger"),
    ({"member_id": "m-1", "trigger": "purchase_confirmed", "reference": "o-1"}, "invalid"),
    ({"member_id": "m-1", "trigger": "purchase_confirmed", "reference": "o-1", "amount": -1}, "invalid"),
    ({"member_id": "m-1", "trigger": "purchase_confirmed", "reference": "o-1", "amount": "100"}, "invalid"),
    ({"member_id": "m-1", "trigger": "purchase_confirmed", "reference": "o-1", "amount": 10.5}, "invalid"),
    ({"member_id": "m-1", "trigger": "signup", "reference": "m-1", "amount": 100}, "invalid"),
    ({"member_id": "m-1", "trigger": "signup", "reference": "m-1", "has_image": True}, "invalid"),
    ({"member_id": "", "trigger": "signup", "reference": "m-1"}, "invalid"),
    ({"member_id": "m" * 65, "trigger": "signup", "reference": "m-1"}, "invalid"),
    ({"member_id": "m-1", "trigger": "signup", "reference": ""}, "invalid"),
    ({"member_id": "m-1", "trigger": "signup", "reference": "r" * 129}, "invalid"),
    ({"member_id": "m-1", "trigger": "signup"}, "invalid"),
])
def test_bad_trigger_input_is_refused_with_400_and_changes_nothing(api, tenant, body, code):
    make_rule(tenant, "signup", points=100)
    make_rule(tenant, "purchase_confirmed", purchase_rate_bp=100)
    response = trigger(api, **body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert nothing_written()


def test_a_trigger_without_an_active_rule_answers_422_no_active_rule(api, tenant):
    rule = make_rule(tenant, "signup", points=100)
    rule.is_active = False
    reward_rule_save(rule=rule, actor=factories.TEST_ACTOR)
    response = trigger(api, member_id="m-1", trigger="signup", reference="m-1")
    assert response.status_code == 422
    assert response.json()["code"] == "no_active_rule"
    assert trigger(api, member_id="m-1", trigger="review", reference="r-1").json()["code"] == "no_active_rule"
    assert nothing_written()


def test_the_same_idempotency_key_with_the_same_body_answers_the_stored_response(api, tenant):
    make_rule(tenant, "signup", points=100)
    body = {"member_id": "m-1", "trigger": "signup", "reference": "m-1"}
    first = api.post("/api/v1/rewards/triggers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/v1/rewards/triggers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert RewardGrant.objects.count() == 1


# --- points endpoint and tenancy ----------------------------------------------------------------------------------

def test_the_points_endpoint_shows_the_balance_and_the_newest_entries_first(api, tenant):
    make_rule(tenant, "review", review_text_points=100, review_image_points=200)
    trigger(api, member_id="m-1", trigger="review", reference="r-1")
    trigger(api, member_id="m-1", trigger="review", reference="r-2", has_image=True)
    body = api.get("/api/v1/members/m-1/points").json()
    assert body["member_id"] == "m-1" and body["balance"] == 300
    assert [(e["amount"], e["reason"], e["reference"]) for e in body["entries"]] == [
        (200, "grant", "review:r-2"), (100, "grant", "review:r-1")]
    assert len(api.get("/api/v1/members/m-1/points", {"limit": 1}).json()["entries"]) == 1
    assert api.get("/api/v1/members/m-1/points", {"limit": 0}).status_code == 400
    assert api.get("/api/v1/members/m-1/points", {"limit": "x"}).status_code == 400
    assert api.get("/api/v1/members/nobody/points").json() == {"member_id": "nobody", "balance": 0, "entries": []}


def test_another_tenants_member_with_the_same_id_never_sees_your_points(api, tenant, other_tenant):
    make_rule(tenant, "signup", points=1000)
    make_rule(other_tenant, "signup", points=7)
    trigger(api, member_id="m-1", trigger="signup", reference="m-1")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {factories.make_client(other_tenant)[1]}")
    assert other.get("/api/v1/members/m-1/points").json() == {"member_id": "m-1", "balance": 0, "entries": []}
    # the same (member, trigger, reference) in the other tenant is that tenant's own, first grant
    response = trigger(other, member_id="m-1", trigger="signup", reference="m-1")
    assert response.status_code == 201 and response.json()["grant"]["points"] == 7
    assert other.get("/api/v1/members/m-1/points").json()["balance"] == 7
    assert api.get("/api/v1/members/m-1/points").json()["balance"] == 1000


def test_the_points_endpoint_needs_a_token(tenant):
    assert APIClient().get("/api/v1/members/m-1/points").status_code == 401
    assert APIClient().post("/api/v1/rewards/triggers", {}, format="json").status_code == 401
