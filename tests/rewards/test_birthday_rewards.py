"""R-REW-1 birthdays: members' birthdays from an uploaded list; grant_birthday_rewards grants once a year, on the
birthday in the tenant's time zone."""
from __future__ import annotations

import re

from datetime import date, datetime, UTC
from io import StringIO

import pytest
from django.core.management import call_command

from core.exceptions import InvalidInput
from rewards.models import MemberBirthday, MemberPoints, PointsEntry, RewardGrant
from rewards.services import birthday_rewards_grant, birthdays_import
from tests.factories import TEST_ACTOR
from tests.rewards.factories import make_rule

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("grant_birthday_rewards", *args, stdout=out)
    return re.sub(r" seconds=[0-9.]+$", "", out.getvalue().strip())  # R-OPS-2 summary line, minus its timing


@pytest.fixture
def birthday_rule(tenant):
    return make_rule(tenant, "birthday", points=2000)


def test_birthday_rewards_are_granted_once_per_year_however_often_the_command_runs(tenant, birthday_rule):
    birthdays_import(tenant=tenant, text="member_id,birthday\nm-1,1990-03-15\nm-2,1985-07-01\n", actor=TEST_ACTOR)
    assert run("--date", "2026-03-15") == "grant_birthday_rewards: tenants=1 due=1 granted=1 already=0 failed=0"
    assert run("--date", "2026-03-15") == "grant_birthday_rewards: tenants=1 due=1 granted=0 already=1 failed=0"
    assert list(RewardGrant.objects.values_list("member_id", "reference", "points")) == [("m-1", "2026", 2000)]
    assert MemberPoints.objects.get(member_id="m-1").balance == 2000
    assert run("--date", "2027-03-15").endswith("granted=1 already=0 failed=0")
    assert sorted(RewardGrant.objects.values_list("reference", flat=True)) == ["2026", "2027"]
    assert MemberPoints.objects.get(member_id="m-1").balance == 4000
    assert not PointsEntry.objects.filter(member_id="m-2").exists()


def test_the_dry_run_counts_and_grants_nothing(tenant, birthday_rule):
    birthdays_import(tenant=tenant, text="m-1,03-15\n", actor=TEST_ACTOR)
    assert run("--dry-run", "--date", "2026-03-15") == (
        "grant_birthday_rewards: tenants=1 due=1 granted=1 already=0 failed=0 dry_run=yes")
    assert RewardGrant.objects.count() == 0


def test_today_is_the_birthday_in_the_tenants_time_zone(tenant, birthday_rule):
    tenant.time_zone = "Asia/Seoul"
    tenant.save()
    birthdays_import(tenant=tenant, text="seoul-today,3,15\nutc-today,3,14\n", actor=TEST_ACTOR)
    run_result = birthday_rewards_grant(now=datetime(2026, 3, 14, 16, 0, tzinfo=UTC))  # 01:00 in Seoul
    assert (run_result.due, run_result.granted) == (1, 1)
    assert list(RewardGrant.objects.values_list("member_id", flat=True)) == ["seoul-today"]


def test_a_february_29_birthday_is_celebrated_on_february_28_in_other_years(tenant, birthday_rule):
    birthdays_import(tenant=tenant, text="leap,2000-02-29\n", actor=TEST_ACTOR)
    assert birthday_rewards_grant(on_date=date(2027, 2, 28)).granted == 1
    assert birthday_rewards_grant(on_date=date(2028, 2, 28)).granted == 0
    assert birthday_rewards_grant(on_date=date(2028, 2, 29)).granted == 1


def test_tenants_without_an_active_birthday_rule_grant_nothing(tenant):
    birthdays_import(tenant=tenant, text="m-1,03-15\n", actor=TEST_ACTOR)
    assert run("--date", "2026-03-15") == "grant_birthday_rewards: tenants=0 due=0 granted=0 already=0 failed=0"


def test_a_birthday_member_whose_coupon_cannot_be_issued_is_counted_as_failed_and_retried_next_run(tenant):
    from tests import factories

    inventory, _ = factories.make_pool(tenant, size=0)
    make_rule(tenant, "birthday", inventory=inventory)
    birthdays_import(tenant=tenant, text="m-1,03-15\n", actor=TEST_ACTOR)
    assert run("--date", "2026-03-15").endswith("granted=0 already=0 failed=1")
    assert RewardGrant.objects.count() == 0


def test_a_bad_birthday_file_imports_nothing_and_names_the_lines(tenant):
    with pytest.raises(InvalidInput) as refused:
        birthdays_import(tenant=tenant, text="m-1,03-15\nm-2,02-30\nm-3\nm-4,13,1\n", actor=TEST_ACTOR)
    assert refused.value.details["errors"] == [
        "line 2: 02-30 is not a date", "line 3: expected member_id,month,day or member_id,YYYY-MM-DD",
        "line 4: 13-01 is not a date"]
    assert MemberBirthday.objects.count() == 0


def test_uploading_again_updates_a_members_birthday(tenant):
    birthdays_import(tenant=tenant, text="m-1,03-15\n", actor=TEST_ACTOR)
    assert birthdays_import(tenant=tenant, text="m-1,1999-12-01\nm-2,1,2\n", actor=TEST_ACTOR) == 2
    assert sorted(MemberBirthday.objects.values_list("member_id", "month", "day")) == [("m-1", 12, 1),
                                                                                        ("m-2", 1, 2)]


def test_the_date_option_must_be_a_date(tenant):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        run("--date", "2026-02-30")
