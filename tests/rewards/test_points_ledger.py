"""R-REW-3: the points ledger — balance, spending never below zero, and expiry exactly once (expire_points)."""
from __future__ import annotations

import re

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.models import AuditLog
from rewards.exceptions import InsufficientPoints
from rewards.models import MemberPoints, PointsEntry
from rewards.selectors import points_balance
from rewards.services import points_expire, points_spend, reward_trigger
from tests.factories import TEST_ACTOR
from tests.rewards.factories import make_rule

pytestmark = pytest.mark.django_db


def grant(tenant, reference: str, member_id: str = "m-1"):
    return reward_trigger(tenant=tenant, member_id=member_id, trigger="review", reference=reference)[0]


def age(grant_obj, days: int) -> None:
    """Move a grant's credit back in time, as if granted `days` ago."""
    entry = grant_obj.points_entry
    PointsEntry.objects.filter(pk=entry.pk).update(expires_at=entry.expires_at - timedelta(days=days))


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("expire_points", *args, stdout=out)
    return re.sub(r" seconds=[0-9.]+$", "", out.getvalue().strip())  # R-OPS-2 summary line, minus its timing


@pytest.fixture
def review_rule(tenant):
    return make_rule(tenant, "review", review_text_points=100, review_image_points=500, points_valid_days=30)


def test_expired_credits_leave_the_balance_exactly_once_even_if_the_command_runs_twice(tenant, review_rule):
    old, fresh = grant(tenant, "r-1"), grant(tenant, "r-2")
    age(old, 31)
    assert run() == "expire_points: credits=1 points=100"
    assert run() == "expire_points: credits=0 points=0"
    debits = PointsEntry.objects.filter(reason="expiry")
    assert list(debits.values_list("amount", "expired_entry", "reference")) == [(-100, old.points_entry.pk,
                                                                                  "review:r-1")]
    assert MemberPoints.objects.get(member_id="m-1").balance == 100
    assert points_balance(tenant=tenant, member_id="m-1", now=timezone.now()) == 100
    assert PointsEntry.objects.get(pk=fresh.points_entry.pk).remaining == 100
    assert AuditLog.objects.filter(action="points.expire").count() == 1


def test_a_credit_past_its_expiry_no_longer_counts_even_before_the_job_runs(tenant, review_rule):
    grant(tenant, "r-1")
    grant(tenant, "r-2")
    now = timezone.now()
    assert points_balance(tenant=tenant, member_id="m-1", now=now + timedelta(days=31)) == 0
    assert points_balance(tenant=tenant, member_id="m-1", now=now) == 200


def test_the_dry_run_counts_and_changes_nothing(tenant, review_rule):
    age(grant(tenant, "r-1"), 31)
    assert run("--dry-run") == "expire_points: credits=1 points=100 dry_run=yes"
    assert PointsEntry.objects.filter(reason="expiry").count() == 0
    assert MemberPoints.objects.get(member_id="m-1").balance == 100


def test_a_second_expiry_debit_of_the_same_credit_is_refused_by_the_database(tenant, review_rule):
    old = grant(tenant, "r-1")
    age(old, 31)
    points_expire()
    with pytest.raises(IntegrityError), transaction.atomic():
        PointsEntry.objects.create(tenant=tenant, member_id="m-1", amount=-100, reason="expiry",
                                   expired_entry=old.points_entry)


def test_spending_uses_the_credit_that_expires_first_and_expiry_takes_only_the_unspent_rest(tenant, review_rule):
    first = grant(tenant, "r-1")                       # 100, expires first
    second = grant(tenant, "r-2")
    PointsEntry.objects.filter(pk=second.points_entry.pk).update(expires_at=None)  # never expires
    points_spend(tenant=tenant, member_id="m-1", amount=30, reference="order-7", actor=TEST_ACTOR)
    assert PointsEntry.objects.get(pk=first.points_entry.pk).remaining == 70
    assert PointsEntry.objects.get(pk=second.points_entry.pk).remaining == 100
    age(first, 31)
    assert run() == "expire_points: credits=1 points=70"
    assert MemberPoints.objects.get(member_id="m-1").balance == 100
    assert points_balance(tenant=tenant, member_id="m-1", now=timezone.now()) == 100
    assert list(PointsEntry.objects.order_by("id").values_list("amount", "reason")) == [
        (100, "grant"), (100, "grant"), (-30, "spend"), (-70, "expiry")]


def test_spending_more_than_the_balance_is_refused_and_writes_nothing(tenant, review_rule):
    grant(tenant, "r-1")
    with pytest.raises(InsufficientPoints) as refused:
        points_spend(tenant=tenant, member_id="m-1", amount=101, reference="order-7", actor=TEST_ACTOR)
    assert refused.value.details == {"balance": 100, "requested": 101}
    assert PointsEntry.objects.filter(reason="spend").count() == 0
    assert MemberPoints.objects.get(member_id="m-1").balance == 100


def test_expired_points_cannot_be_spent(tenant, review_rule):
    age(grant(tenant, "r-1"), 31)
    with pytest.raises(InsufficientPoints):
        points_spend(tenant=tenant, member_id="m-1", amount=1, reference="order-7", actor=TEST_ACTOR)


def test_the_database_refuses_a_negative_balance(tenant):
    MemberPoints.objects.create(tenant=tenant, member_id="m-1", balance=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        MemberPoints.objects.filter(member_id="m-1").update(balance=-1)


def test_a_fully_spent_credit_expires_without_a_debit(tenant, review_rule):
    old = grant(tenant, "r-1")
    points_spend(tenant=tenant, member_id="m-1", amount=100, reference="order-7", actor=TEST_ACTOR)
    age(old, 31)
    assert run() == "expire_points: credits=0 points=0"
    assert MemberPoints.objects.get(member_id="m-1").balance == 0


def test_expiry_never_touches_another_tenants_member_with_the_same_id(tenant, other_tenant, review_rule):
    make_rule(other_tenant, "review", review_text_points=40, review_image_points=50, points_valid_days=30)
    age(grant(tenant, "r-1"), 31)
    grant(other_tenant, "r-1")
    assert run() == "expire_points: credits=1 points=100"
    assert MemberPoints.objects.get(tenant=other_tenant, member_id="m-1").balance == 40
    assert points_balance(tenant=other_tenant, member_id="m-1", now=timezone.now()) == 40
