"""Issue #16 (R-POL-2): besides N hours, a validity "until the end of the day of issue + N days" and "until the end
of the month of issue", in the tenant's time zone — shown to members as an exact timestamp."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coupons.models import CouponCode, CouponPolicy
from coupons.validity import validity_at_issue
from tests import factories

SEOUL = ZoneInfo("Asia/Seoul")
UTC = ZoneInfo("UTC")


def policy(validity_type, days=None, valid_until=None):
    return CouponPolicy(validity_type=validity_type, validity_days=days, valid_until=valid_until)


def test_end_of_day_plus_zero_issued_late_in_seoul_ends_that_seoul_day_although_utc_is_still_on_it():
    issued = datetime(2026, 3, 31, 14, 30, tzinfo=UTC)  # 2026-03-31 23:30 KST
    start, end = validity_at_issue(policy("end_of_day", 0), issued, "Asia/Seoul")
    assert start == issued
    assert end == datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=SEOUL)
    assert end.astimezone(UTC) == datetime(2026, 3, 31, 14, 59, 59, 999999, tzinfo=UTC)


def test_end_of_day_issued_just_after_midnight_in_seoul_counts_the_seoul_day_not_the_previous_utc_day():
    issued = datetime(2026, 3, 31, 15, 10, tzinfo=UTC)  # 2026-04-01 00:10 KST, still 2026-03-31 in UTC
    assert validity_at_issue(policy("end_of_day", 0), issued, "Asia/Seoul")[1] == datetime(
        2026, 4, 1, 23, 59, 59, 999999, tzinfo=SEOUL)
    assert validity_at_issue(policy("end_of_day", 2), issued, "Asia/Seoul")[1] == datetime(
        2026, 4, 3, 23, 59, 59, 999999, tzinfo=SEOUL)
    # the same instant for a tenant in UTC ends a day earlier
    assert validity_at_issue(policy("end_of_day", 0), issued, "UTC")[1] == datetime(
        2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_end_of_month_is_the_last_instant_of_the_tenants_month():
    late_march = datetime(2026, 3, 31, 14, 30, tzinfo=UTC)  # 23:30 KST on 31 March
    assert validity_at_issue(policy("end_of_month"), late_march, "Asia/Seoul")[1] == datetime(
        2026, 3, 31, 23, 59, 59, 999999, tzinfo=SEOUL)
    first_of_april = datetime(2026, 3, 31, 15, 10, tzinfo=UTC)  # 00:10 KST on 1 April: April's end
    assert validity_at_issue(policy("end_of_month"), first_of_april, "Asia/Seoul")[1] == datetime(
        2026, 4, 30, 23, 59, 59, 999999, tzinfo=SEOUL)
    assert validity_at_issue(policy("end_of_month"), datetime(2028, 2, 10, tzinfo=UTC), "Asia/Seoul")[1] == datetime(
        2028, 2, 29, 23, 59, 59, 999999, tzinfo=SEOUL)  # a leap year's February


def test_a_calendar_validity_never_outlives_the_policys_end():
    cap = datetime(2026, 4, 15, 12, 0, tzinfo=SEOUL)
    issued = datetime(2026, 4, 10, 3, 0, tzinfo=UTC)
    assert validity_at_issue(policy("end_of_month", valid_until=cap), issued, "Asia/Seoul")[1] == cap
    assert validity_at_issue(policy("end_of_day", 30, valid_until=cap), issued, "Asia/Seoul")[1] == cap


@pytest.mark.django_db
def test_a_claimed_end_of_day_coupon_shows_its_exact_end_in_the_tenants_zone(api, tenant):
    tenant.time_zone = "Asia/Seoul"
    tenant.save(update_fields=["time_zone"])
    fields = {"validity_type": "end_of_day", "validity_days": 1, "valid_from": None, "valid_until": None}
    inventory, _ = factories.make_pool(tenant, size=2, policy=factories.make_approved_policy(tenant, **fields))
    answer = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id}, format="json")
    assert answer.status_code == 201
    coupon = CouponCode.objects.get(code=answer.json()["coupon"]["code"])
    local_issue = coupon.issued_at.astimezone(SEOUL)
    expected = datetime.combine(local_issue.date() + timedelta(days=1), datetime.max.time(), tzinfo=SEOUL)
    assert coupon.valid_until == expected
    assert answer.json()["coupon"]["valid_until"] == f"{expected.date().isoformat()}T23:59:59+09:00"
    assert api.get(f"/api/v1/coupons/{coupon.code}").json()["valid_until"] == answer.json()["coupon"]["valid_until"]


@pytest.mark.django_db
@pytest.mark.parametrize("fields, field, message", [
    ({"validity_type": "end_of_day"}, "validity_days",
     "An end-of-day validity needs the number of days after the day of issue (0 = the day of issue)."),
    ({"validity_type": "end_of_day", "validity_days": 3651}, "validity_days",
     "At most 3650 days after the day of issue."),
    ({"validity_type": "end_of_month", "validity_hours": 5}, "validity_hours",
     "Hours from issue apply only to a dynamic validity."),
    ({"validity_type": "fixed", "validity_days": 2}, "validity_days",
     "Days after the day of issue apply only to an end-of-day validity."),
])
def test_a_calendar_validity_with_the_wrong_fields_is_refused_and_nothing_is_saved(tenant, fields, field, message):
    from core.exceptions import InvalidInput

    defaults = {"valid_from": None, "valid_until": None} if fields["validity_type"] != "fixed" else {}
    with pytest.raises(InvalidInput) as refused:
        factories.make_draft_policy(tenant, **{**defaults, **fields})
    assert refused.value.details["fields"][field] == message
    assert not CouponPolicy.objects.filter(tenant=tenant).exists()


@pytest.mark.django_db
def test_the_database_refuses_an_end_of_day_policy_without_days(tenant):
    from django.db import IntegrityError, transaction

    policy = factories.make_draft_policy(tenant, validity_type="end_of_month", valid_from=None, valid_until=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        CouponPolicy.objects.filter(pk=policy.pk).update(validity_type="end_of_day")


@pytest.mark.django_db
def test_the_korean_console_saves_an_end_of_day_members_tier_policy_and_explains_a_missing_day_count(client, tenant):
    from django.urls import reverse

    tenant.language = "ko"
    tenant.save(update_fields=["language"])
    client.force_login(factories.make_operator(tenant))
    form = {"name": "오늘만 3,000원", "kind": "amount", "amount": "3000", "validity_type": "end_of_day",
            "stacking_group": "platform", "audience": "members", "audience_tiers": "gold,vip"}
    page = client.get(reverse("admin:coupons_couponpolicy_add")).content.decode()
    assert "발급일 + N일의 자정까지" in page and "회원 등급" in page
    refused = client.post(reverse("admin:coupons_couponpolicy_add"), form)
    assert refused.status_code == 200
    assert "당일 마감 유효 기간에는 발급일 이후 일수가 필요합니다 (0 = 발급일 당일)." in refused.content.decode()
    assert not CouponPolicy.objects.filter(tenant=tenant).exists()
    saved = client.post(reverse("admin:coupons_couponpolicy_add"), {**form, "validity_days": "0"})
    assert saved.status_code == 302
    policy = CouponPolicy.objects.get(tenant=tenant)
    assert (policy.validity_type, policy.validity_days, policy.audience_tiers) == ("end_of_day", 0, ["gold", "vip"])
