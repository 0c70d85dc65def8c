"""Issue #16 (R-POL-3): the request states the buyer — a member (optionally of a tier or segment) or a guest; a
members-only coupon refuses a guest and a tier-scoped one a member of another tier, with the reason, in validate,
best, lock and redeem alike. Nothing is written by a refusal."""
from __future__ import annotations

import pytest

from coupons.models import CouponCode, CouponUsage
from tests import factories

pytestmark = pytest.mark.django_db

ORDER = factories.order(50_000)


def issued(api, tenant, member="m-1", **policy_fields):
    inventory, _ = factories.make_pool(tenant, size=3, policy=factories.make_approved_policy(tenant, **policy_fields))
    answer = api.post("/api/v1/claims", {"member_id": member, "inventory": inventory.public_id}, format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()["coupon"]["code"]


def validate(api, code, member="m-1", **buyer):
    return api.post("/api/v1/checkout/validate", {"member_id": member, "codes": [code], "order": ORDER, **buyer},
                    format="json")


def best(api, member="m-1", **buyer):
    return api.post("/api/v1/checkout/best", {"member_id": member, "order": ORDER, **buyer}, format="json")


def test_a_guest_is_refused_a_members_only_coupon_in_validate_and_best_with_its_reason(api, tenant):
    code = issued(api, tenant, audience="members")
    answer = validate(api, code, buyer="guest")
    assert answer.status_code == 200
    assert answer.json() == {"valid": False, "codes": [], "discount": 0, "applied": [], "payable": 53_000,
                             "rejected": [{"code": code, "reason": "members_only",
                                           "message": "This coupon is for members only; a guest cannot use it."}]}
    answer = best(api, buyer="guest")
    assert answer.json()["applied"] == [] and answer.json()["discount"] == 0
    assert answer.json()["rejected"] == [{"code": code, "reason": "members_only",
                                          "message": "This coupon is for members only; a guest cannot use it."}]
    # the same coupon for a member (stated, or by default as before buyers were stated)
    for buyer in ({"buyer": "member"}, {}):
        assert validate(api, code, **buyer).json()["discount"] == 5000
        assert best(api, **buyer).json()["codes"] == [code]


def test_the_refusal_reads_in_korean_for_a_korean_caller(api, tenant):
    code = issued(api, tenant, audience="members")
    answer = api.post("/api/v1/checkout/validate", {"member_id": "m-1", "codes": [code], "order": ORDER,
                                                    "buyer": "guest"}, format="json", HTTP_ACCEPT_LANGUAGE="ko")
    assert answer.json()["rejected"][0]["reason"] == "members_only"
    assert answer.json()["rejected"][0]["message"] == "회원 전용 쿠폰입니다. 비회원은 사용할 수 없습니다."


def test_a_tier_scoped_coupon_refuses_guests_and_other_tiers_in_validate_and_best(api, tenant):
    code = issued(api, tenant, audience_tiers=["gold", "vip"])
    assert validate(api, code, buyer="guest").json()["rejected"][0]["reason"] == "members_only"
    assert best(api, buyer="guest").json()["rejected"][0]["reason"] == "members_only"
    for buyer in ({"tier": "silver"}, {}):  # another tier, or none stated
        refused = validate(api, code, **buyer).json()["rejected"]
        assert refused == [{"code": code, "reason": "tier_not_allowed",
                            "message": "This coupon is for members of other tiers only."}]
        assert best(api, **buyer).json()["rejected"] == refused
    assert validate(api, code, tier="gold").json()["codes"] == [code]
    assert best(api, buyer="member", tier="vip").json()["codes"] == [code]


def test_lock_and_redeem_refuse_a_guest_with_the_reason_and_change_nothing(api, tenant):
    code = issued(api, tenant, audience="members")
    for action in ("lock", "redeem"):
        answer = api.post(f"/api/v1/coupons/{code}/{action}", {"member_id": "m-1", "order": ORDER, "buyer": "guest"},
                          format="json")
        assert answer.status_code == 422
        assert (answer.json()["code"], answer.json()["details"]) == ("not_applicable", {"reason": "members_only"})
    assert CouponCode.objects.get(code=code).status == "ISSUED"
    assert not CouponUsage.objects.exists()
    batch = api.post("/api/v1/coupons/batch/redeem", {"items": [
        {"code": code, "member_id": "m-1", "order": ORDER, "buyer": "guest"}]}, format="json")
    assert batch.json()["results"][0]["ok"] is False
    assert batch.json()["results"][0]["error"]["code"] == "not_applicable"
    assert CouponCode.objects.get(code=code).status == "ISSUED"
    answer = api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-1", "order": ORDER, "buyer": "member"},
                      format="json")
    assert answer.status_code == 200 and answer.json()["coupon"]["status"] == "USED"


def test_a_coupon_for_everyone_serves_guests_and_shows_its_audience(api, tenant):
    code = issued(api, tenant)
    assert validate(api, code, buyer="guest").json()["codes"] == [code]
    policy = api.get(f"/api/v1/coupons/{code}").json()["policy"]
    assert (policy["audience"], policy["tiers"]) == ("all", [])
    tiered = issued(api, tenant, member="m-2", audience="members", audience_tiers=["gold"])
    policy = api.get(f"/api/v1/coupons/{tiered}").json()["policy"]
    assert (policy["audience"], policy["tiers"]) == ("members", ["gold"])


@pytest.mark.parametrize("body, field", [
    ({"buyer": "visitor"}, "buyer"),
    ({"buyer": "guest", "tier": "gold"}, "tier"),
    ({"tier": ""}, "tier"),
    ({"tier": "x" * 65}, "tier"),
])
def test_a_bad_buyer_is_a_400_naming_the_field(api, tenant, body, field):
    code = issued(api, tenant, audience="members")
    for answer in (validate(api, code, **body), best(api, **body),
                   api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-1", "order": ORDER, **body},
                            format="json")):
        assert answer.status_code == 400, answer.json()
        assert answer.json()["code"] == "invalid"
        assert field in answer.json()["details"]["fields"]
    assert CouponCode.objects.get(code=code).status == "ISSUED"


def test_a_blank_tier_in_a_policy_is_refused_with_a_clear_message(tenant):
    from core.exceptions import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        factories.make_draft_policy(tenant, audience_tiers=["gold", " "])
    assert refused.value.details["fields"] == {"audience_tiers": "A member tier is 1 to 64 characters and not blank."}
