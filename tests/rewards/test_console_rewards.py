"""Console for rewards (issue #10): rules through the service, read-only grants and ledger, birthday upload — each
limited to the user's tenant (R-TEN-3)."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.models import AuditLog
from rewards.models import MemberBirthday, MemberPoints, PointsEntry, RewardGrant, RewardRule
from rewards.services import birthdays_import, reward_trigger
from tests import factories
from tests.rewards.factories import make_rule

pytestmark = pytest.mark.django_db

SECRET = "SECRETB"


@pytest.fixture
def a_user(tenant):
    # core.roles does not list the rewards app yet, so the test grants its permissions explicitly.
    user = factories.make_operator(tenant)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="rewards"))
    return user


def rule_form(**fields):
    data = {"name": "Signup points", "trigger": "signup", "inventory": "", "points": "1000",
            "review_text_points": "0", "review_image_points": "0", "purchase_rate_bp": "0",
            "points_valid_days": "365", "is_active": "on"}
    data.update(fields)
    return data


def test_an_operator_creates_a_rule_for_their_tenant_with_an_audit_row(client, a_user, tenant):
    client.force_login(a_user)
    response = client.post(reverse("admin:rewards_rewardrule_add"), rule_form())
    assert response.status_code == 302
    rule = RewardRule.objects.get()
    assert (rule.tenant_id, rule.trigger, rule.points, rule.points_valid_days) == (tenant.pk, "signup", 1000, 365)
    assert AuditLog.objects.filter(action="reward_rule.save", object_id=str(rule.pk)).count() == 1


def test_a_second_active_rule_for_a_trigger_is_refused_with_a_message(client, a_user, tenant):
    make_rule(tenant, "signup", points=10)
    client.force_login(a_user)
    response = client.post(reverse("admin:rewards_rewardrule_add"), rule_form())
    assert response.status_code == 200
    assert "Another active rule exists for signup" in response.content.decode()
    assert RewardRule.objects.count() == 1


@pytest.mark.parametrize("fields, message", [
    ({"points": "0"}, "A rule must grant points or a coupon"),
    ({"review_text_points": "5"}, "Not used by a signup rule"),
    ({"trigger": "purchase_confirmed", "points": "0", "purchase_rate_bp": "10001"}, "at most 10000"),
])
def test_a_rule_that_makes_no_sense_is_refused_with_a_message(client, a_user, fields, message):
    client.force_login(a_user)
    response = client.post(reverse("admin:rewards_rewardrule_add"), rule_form(**fields))
    assert response.status_code == 200
    assert message.lower() in response.content.decode().lower()
    assert RewardRule.objects.count() == 0


def test_the_rule_form_offers_only_the_users_tenants_inventories(client, a_user, tenant, other_tenant):
    factories.make_inventory(tenant, name="A pool")
    factories.make_inventory(other_tenant, name=f"{SECRET} pool")
    client.force_login(a_user)
    page = client.get(reverse("admin:rewards_rewardrule_add")).content.decode()
    assert "A pool" in page and SECRET not in page


def test_grants_and_the_ledger_are_read_only_and_searchable_by_member(client, a_user, tenant):
    make_rule(tenant, "signup", points=100)
    reward_trigger(tenant=tenant, member_id="m-1", trigger="signup", reference="m-1")
    reward_trigger(tenant=tenant, member_id="m-2", trigger="signup", reference="m-2")
    client.force_login(a_user)
    for model in ("rewardgrant", "pointsentry", "memberpoints"):
        assert client.get(reverse(f"admin:rewards_{model}_add")).status_code == 403
        listing = client.get(reverse(f"admin:rewards_{model}_changelist"), {"q": "m-2"}).content.decode()
        assert "m-2" in listing and ">m-1<" not in listing


def test_uploading_birthdays_sets_them_for_the_users_tenant(client, a_user, tenant):
    client.force_login(a_user)
    upload = SimpleUploadedFile("b.csv", b"member_id,birthday\nm-1,1990-03-15\nm-2,07-01\n")
    response = client.post(reverse("admin:rewards_memberbirthday_upload"), {"file": upload}, follow=True)
    assert "2 birthdays set." in response.content.decode()
    assert sorted(MemberBirthday.objects.values_list("tenant_id", "member_id", "month", "day")) == [
        (tenant.pk, "m-1", 3, 15), (tenant.pk, "m-2", 7, 1)]


def test_a_bad_birthday_upload_shows_the_lines_and_imports_nothing(client, a_user):
    client.force_login(a_user)
    upload = SimpleUploadedFile("b.csv", b"m-1,03-15\nm-2,02-30\n")
    response = client.post(reverse("admin:rewards_memberbirthday_upload"), {"file": upload})
    assert "line 2: 02-30 is not a date" in response.content.decode()
    assert MemberBirthday.objects.count() == 0


def test_adding_a_second_birthday_for_a_member_is_refused_with_a_message(client, a_user, tenant):
    birthdays_import(tenant=tenant, text="m-1,03-15\n", actor=factories.TEST_ACTOR)
    client.force_login(a_user)
    response = client.post(reverse("admin:rewards_memberbirthday_add"), {"member_id": "m-1", "month": "4",
                                                                          "day": "1"}, follow=True)
    assert "Member m-1 already has a birthday" in response.content.decode()
    assert list(MemberBirthday.objects.values_list("month", "day")) == [(3, 15)]


@pytest.fixture
def b_rewards(other_tenant):
    make_rule(other_tenant, "signup", points=100, name=f"{SECRET} rule")
    reward_trigger(tenant=other_tenant, member_id=f"{SECRET}-member", trigger="signup", reference="x")
    birthdays_import(tenant=other_tenant, text=f"{SECRET}-member,03-15\n", actor=factories.TEST_ACTOR)
    return {RewardRule: RewardRule.objects.get(), RewardGrant: RewardGrant.objects.get(),
            PointsEntry: PointsEntry.objects.get(), MemberPoints: MemberPoints.objects.get(),
            MemberBirthday: MemberBirthday.objects.get()}


@pytest.mark.parametrize("model", [RewardRule, RewardGrant, PointsEntry, MemberPoints, MemberBirthday],
                         ids=lambda m: m.__name__)
def test_tenant_a_user_cannot_list_search_or_open_tenant_b_rewards(client, a_user, b_rewards, model):
    client.force_login(a_user)
    name = model._meta.model_name
    obj = b_rewards[model]
    assert SECRET in str(obj)
    for params in ({}, {"q": f"{SECRET}-member"}):
        listing = client.get(reverse(f"admin:rewards_{name}_changelist"), params)
        assert listing.status_code == 200
        assert str(obj) not in listing.content.decode()
    change = client.get(reverse(f"admin:rewards_{name}_change", args=[obj.pk]), follow=True).content.decode()
    assert SECRET not in change and "doesn’t exist" in change
