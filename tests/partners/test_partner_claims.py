"""Flow 2: a member registers a partner code; the mapped internal code is issued to them, once."""
from __future__ import annotations

import pytest

from coupons.models import CouponCode, CouponIssue
from partners.models import CouponMapping, Partner
from tests import factories

pytestmark = pytest.mark.django_db


def mapped_pool(tenant, codes: bytes, size: int = 5, **kwargs):
    Partner.objects.get_or_create(tenant=tenant, code="GS25", defaults={"name": "GS"})
    inventory, _codes = factories.make_pool(tenant, size=size, **kwargs)
    factories.make_partner_upload(tenant, inventory, codes)
    return inventory


def claim(api, partner_code: str, member: str = "m-1"):
    return api.post("/api/v1/claims", {"member_id": member, "partner_code": partner_code}, format="json")


def test_a_partner_code_issues_its_mapped_code_to_the_member(tenant, api):
    mapped_pool(tenant, b"GS-0001\nGS-0002\n")
    mapping = CouponMapping.objects.get(partner_code="GS0001")
    response = claim(api, "gs 0001")
    assert response.status_code == 201
    assert response.json()["coupon"]["code"] == mapping.coupon.code
    coupon = CouponCode.objects.get(pk=mapping.coupon_id)
    assert (coupon.status, coupon.member_id) == ("ISSUED", "m-1")
    assert CouponIssue.objects.get(coupon=coupon).via == "partner_code"


def test_a_partner_code_is_claimed_only_once(tenant, api):
    mapped_pool(tenant, b"GS0001\n")
    assert claim(api, "GS0001", "m-1").status_code == 201
    second = claim(api, "GS0001", "m-2")
    assert second.status_code == 409
    assert second.json()["code"] == "already_claimed"
    assert CouponIssue.objects.count() == 1


def test_the_per_member_limit_applies_to_partner_codes(tenant, api):
    mapped_pool(tenant, b"GS0001\nGS0002\n")
    assert claim(api, "GS0001").status_code == 201
    again = claim(api, "GS0002")
    assert again.status_code == 409 and again.json()["code"] == "already_claimed"
    assert CouponCode.objects.get(partner_mapping__partner_code="GS0002").status == "MAPPED"


def test_unknown_and_foreign_partner_codes_answer_404_like_an_unknown_code(tenant, other_tenant, api):
    mapped_pool(other_tenant, b"FOREIGN1\n")
    foreign = claim(api, "FOREIGN1")
    unknown_partner = claim(api, "NOSUCH1")
    unknown_code = api.post("/api/v1/claims", {"member_id": "m-1", "code": "NOSUCHCODE"}, format="json")
    assert foreign.status_code == unknown_partner.status_code == unknown_code.status_code == 404
    assert foreign.json() == unknown_partner.json() == unknown_code.json()
    assert CouponCode.objects.get(partner_mapping__partner_code="FOREIGN1").status == "MAPPED"


def test_a_mapped_code_cannot_be_registered_as_a_plain_code(tenant, api):
    mapped_pool(tenant, b"GS0001\n")
    internal = CouponMapping.objects.get().coupon.code
    assert api.post("/api/v1/claims", {"member_id": "m-1", "code": internal}, format="json").status_code == 404
