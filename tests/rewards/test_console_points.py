"""Issue #16 console: a member's points page (balance, ledger, adjustment with a reason — audited; operators only),
exchange offers, and revoking an inventory's coupons from a file of members with every member reported."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from core.models import AuditLog
from coupons.models import CouponCode
from rewards.models import ExchangeOffer, MemberPoints, PointsEntry
from rewards.services import points_adjust
from tests import factories
from tests.factories import TEST_ACTOR

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(tenant):
    points_adjust(tenant=tenant, member_id="m-1", amount=500, note="welcome", actor=TEST_ACTOR)
    return MemberPoints.objects.get(tenant=tenant, member_id="m-1")


def ledger_url(member):
    return reverse("admin:rewards_memberpoints_ledger", args=[member.pk])


def test_an_operator_sees_the_balance_and_ledger_and_adjusts_with_a_reason(client, operator_user, member):
    client.force_login(operator_user)
    page = client.get(ledger_url(member))
    assert page.status_code == 200
    assert "<strong>500</strong>" in page.content.decode() and "welcome" in page.content.decode()
    response = client.post(ledger_url(member), {"amount": "-120", "note": "duplicate credit", "valid_days": ""})
    assert response.status_code == 302
    entry = PointsEntry.objects.filter(member_id="m-1").order_by("id").last()
    assert (entry.amount, entry.reason, entry.note) == (-120, "adjustment", "duplicate credit")
    assert MemberPoints.objects.get(pk=member.pk).balance == 380
    audit = AuditLog.objects.filter(action="points.adjust").order_by("id").last()
    assert audit.actor_id == str(operator_user.pk) and audit.after["note"] == "duplicate credit"


@pytest.mark.parametrize("data, message", [
    ({"amount": "ten", "note": "x"}, "Enter a whole number."),
    ({"amount": "5", "note": ""}, "This field is required."),
    ({"amount": "0", "note": "x"}, "other than 0"),
    ({"amount": "-501", "note": "x"}, "The member does not have enough points."),
    ({"amount": "-5", "note": "x", "valid_days": "30"}, "only for added points"),
])
def test_a_bad_adjustment_shows_why_and_changes_nothing(client, operator_user, member, data, message):
    client.force_login(operator_user)
    response = client.post(ledger_url(member), data, follow=True)
    assert message in response.content.decode()
    assert MemberPoints.objects.get(pk=member.pk).balance == 500
    assert PointsEntry.objects.filter(member_id="m-1").count() == 1


def test_the_page_speaks_korean_to_a_korean_user(client, operator_user, member):
    operator_user.language = "ko"
    operator_user.save()
    client.force_login(operator_user)
    response = client.post(ledger_url(member), {"amount": "-501", "note": "x"}, follow=True,
                           HTTP_ACCEPT_LANGUAGE="ko")
    assert "회원의 포인트가 부족합니다." in response.content.decode()


def test_a_viewer_sees_the_ledger_but_cannot_adjust(client, tenant, member):
    viewer = factories.make_viewer(tenant)
    client.force_login(viewer)
    page = client.get(ledger_url(member))
    assert page.status_code == 200 and "<form" not in page.content.decode().split("points-ledger")[0].split(
        "content-main")[1]
    assert client.post(ledger_url(member), {"amount": "5", "note": "x"}).status_code == 403
    assert client.get(reverse("admin:rewards_memberpoints_adjust")).status_code == 403
    assert MemberPoints.objects.get(pk=member.pk).balance == 500


def test_points_can_be_given_to_a_member_who_has_none_yet(client, operator_user, tenant):
    client.force_login(operator_user)
    response = client.post(reverse("admin:rewards_memberpoints_adjust"),
                           {"member_id": "m-new", "amount": "300", "valid_days": "90", "note": "apology"})
    row = MemberPoints.objects.get(tenant=tenant, member_id="m-new")
    assert response.status_code == 302 and response["Location"] == ledger_url(row)
    entry = PointsEntry.objects.get(member_id="m-new")
    assert (entry.amount, entry.remaining, entry.expires_at is not None) == (300, 300, True)


def test_an_operator_offers_an_inventory_for_points(client, operator_user, tenant):
    inventory, _ = factories.make_pool(tenant, size=1)
    client.force_login(operator_user)
    response = client.post(reverse("admin:rewards_exchangeoffer_add"),
                           {"inventory": inventory.pk, "points": "700", "is_active": "on"})
    assert response.status_code == 302
    offer = ExchangeOffer.objects.get()
    assert (offer.tenant_id, offer.inventory_id, offer.points) == (tenant.pk, inventory.pk, 700)
    assert AuditLog.objects.filter(action="exchange_offer.save").count() == 1


def test_revoking_from_a_file_reports_every_member(client, operator_user, tenant):
    inventory, codes = factories.make_pool(tenant, size=3)
    for code, member in zip(codes[:2], ["m-1", "m-2"], strict=True):
        CouponCode.objects.filter(pk=code.pk).update(status="ISSUED", member_id=member, issued_at=timezone.now())
    client.force_login(operator_user)
    upload = SimpleUploadedFile("members.csv", b"member_id\nm-1\nm-2\nm-3\n")
    response = client.post(reverse("admin:coupons_couponinventory_revoke", args=[inventory.pk]),
                           {"members_file": upload, "reason": "fraud"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "2 coupons revoked for 3 members; 1 members with a problem are listed below." in body
    assert body.count("<tr><td>m-") == 3 and "The member holds no coupon here that can be revoked." in body
    assert CouponCode.objects.filter(inventory=inventory, status="REVOKED").count() == 2


def test_a_revoke_without_a_reason_or_a_file_changes_nothing(client, operator_user, tenant):
    inventory, codes = factories.make_pool(tenant, size=1)
    CouponCode.objects.filter(pk=codes[0].pk).update(status="ISSUED", member_id="m-1", issued_at=timezone.now())
    client.force_login(operator_user)
    url = reverse("admin:coupons_couponinventory_revoke", args=[inventory.pk])
    response = client.post(url, {"members_file": SimpleUploadedFile("m.csv", b"m-1\n"), "reason": ""})
    assert "This field is required." in response.content.decode()
    response = client.post(url, {"members_file": SimpleUploadedFile("m.csv", b"\xff\xfe"), "reason": "x"})
    assert "Line 1 is not UTF-8 text." in response.content.decode()
    assert CouponCode.objects.get(pk=codes[0].pk).status == "ISSUED"
    viewer = factories.make_viewer(tenant)
    client.force_login(viewer)
    assert client.post(url, {"members_file": SimpleUploadedFile("m.csv", b"m-1\n"), "reason": "x"}).status_code == 403


def test_a_superuser_names_the_tenant_of_the_member(client, tenant):
    admin_user = factories.make_user(tenant=None, role=None, superuser=True)
    client.force_login(admin_user)
    url = reverse("admin:rewards_memberpoints_adjust")
    response = client.post(url, {"member_id": "m-9", "amount": "10", "note": "x"}, follow=True)
    assert "Choose the tenant of this member." in response.content.decode()
    assert not PointsEntry.objects.exists()
    response = client.post(url, {"tenant": tenant.pk, "member_id": "m-9", "amount": "10", "note": "x"})
    assert response.status_code == 302
    assert MemberPoints.objects.get(tenant=tenant, member_id="m-9").balance == 10
