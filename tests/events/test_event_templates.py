"""Issue #16 (R-EVT-1, seed 001 §8): a repeatable event's next occurrence carries its pools, budgets and draw setup;
an event or a policy can be copied as a template, from the console too."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import AuditLog
from coupons.models import AudienceEntry, CouponBatch, CouponCode, CouponInventory, CouponPolicy
from draws.models import Draw
from draws.services import TierSpec, draw_create
from draws.templates import event_clone
from events.models import Event
from events.services import events_roll_recurring
from risk.models import FrequencyLimit, InventoryBudget
from tests import factories

pytestmark = pytest.mark.django_db


def event_with_setup(tenant, **event_fields):
    now = timezone.now()
    event = factories.make_event(tenant, recurrence="weekly", starts_at=now - timedelta(days=6),
                                 ends_at=now - timedelta(hours=1), status="OPEN", **event_fields)
    policy = factories.make_approved_policy(tenant, valid_until=now + timedelta(days=60))
    pool = factories.make_inventory(tenant, event=event, policy=policy, total_quantity=20, per_member_limit=2,
                                    promo_code="WEEKLY", issue_budget_count=15, use_budget_amount=90_000)
    factories.make_codes(factories.make_batch(pool, quantity=8, batch_code="W-1"), 8)
    InventoryBudget.objects.create(tenant=tenant, inventory=pool, alarm_thresholds=[50, 90], issued_count=7)
    AudienceEntry.objects.create(tenant=tenant, inventory=pool, member_id="vip-1")
    FrequencyLimit.objects.create(tenant=tenant, inventory=pool, action="claim", dimension="member", max_per_day=3)
    other_event_pool = factories.make_inventory(tenant, total_quantity=5)
    draw = draw_create(event=event, name="Weekly draw", draw_at=event.ends_at + timedelta(hours=2),
                       tiers=[TierSpec(name="first", winners=1, inventory=pool),
                              TierSpec(name="second", winners=3, inventory=other_event_pool),
                              TierSpec(name="thanks", winners=10)], actor=factories.TEST_ACTOR)
    return event, pool, other_event_pool, draw


def test_the_next_occurrence_gets_the_pools_budgets_and_draw_setup(tenant, django_capture_on_commit_callbacks):
    event, pool, other_pool, draw = event_with_setup(tenant)
    with django_capture_on_commit_callbacks(execute=True):  # the copied batch's generation job runs at commit
        assert events_roll_recurring() == 1
    nxt = Event.objects.get(previous=event)
    copy = CouponInventory.objects.get(event=nxt)
    assert (copy.policy_id, copy.name, copy.total_quantity, copy.per_member_limit, copy.issue_budget_count,
            copy.use_budget_amount, copy.issue_budget_amount, copy.promo_code) == (
        pool.policy_id, pool.name, 20, 2, 15, 90_000, None, "WEEKLY")
    pool.refresh_from_db()
    assert pool.promo_code is None  # the code members know moved on with the pool
    budget = InventoryBudget.objects.get(inventory=copy)
    assert (budget.alarm_thresholds, budget.issued_count, budget.used_amount) == ([50, 90], 0, 0)
    assert list(AudienceEntry.objects.filter(inventory=copy).values_list("member_id", flat=True)) == ["vip-1"]
    assert list(FrequencyLimit.objects.filter(inventory=copy).values_list("action", "dimension", "max_per_day")) == [
        ("claim", "member", 3)]
    batch = CouponBatch.objects.get(inventory=copy)
    assert (batch.batch_code, batch.quantity, batch.status) == (f"W-1-{nxt.public_id}", 8, "COMPLETED")
    assert CouponCode.objects.filter(inventory=copy, status="AVAILABLE").count() == 8
    assert CouponCode.objects.filter(inventory=pool).count() == 8  # the old pool's codes stay where they were
    new_draw = Draw.objects.get(event=nxt)
    assert (new_draw.name, new_draw.status, new_draw.draw_at) == ("Weekly draw", "COMMITTED",
                                                                   draw.draw_at + timedelta(weeks=1))
    assert new_draw.seed_hash and new_draw.seed_hash != Draw.objects.get(pk=draw.pk).seed_hash
    assert list(new_draw.tiers.order_by("position").values_list("name", "winners", "inventory_id")) == [
        ("first", 1, copy.pk), ("second", 3, other_pool.pk), ("thanks", 10, None)]
    assert AuditLog.objects.filter(action="event.copy_setup", object_id=str(nxt.pk)).count() == 1
    assert events_roll_recurring() == 0  # rolled once; nothing copied twice
    assert CouponInventory.objects.filter(event__previous=event).count() == 1


def test_an_event_copied_as_a_template_is_a_draft_with_copies_of_its_pools_and_draws(tenant):
    event, pool, _, _ = event_with_setup(tenant)
    copy = event_clone(event=event, actor=factories.TEST_ACTOR)
    assert (copy.name, copy.status, copy.starts_at, copy.ends_at, copy.recurrence, copy.previous_id) == (
        f"{event.name} (copy)", "DRAFT", event.starts_at, event.ends_at, "weekly", None)
    pool_copy = CouponInventory.objects.get(event=copy)
    assert (pool_copy.policy_id, pool_copy.total_quantity, pool_copy.promo_code) == (pool.policy_id, 20, None)
    pool.refresh_from_db()
    assert pool.promo_code == "WEEKLY"  # the original keeps its promo code
    assert Draw.objects.get(event=copy).tiers.count() == 3
    assert AuditLog.objects.filter(action="event.clone", object_id=str(copy.pk)).exists()


def test_a_policy_copied_as_a_template_is_a_new_draft_of_the_copier_with_the_same_rule(tenant):
    original = factories.make_approved_policy(tenant, kind="threshold", audience="members",
                                              audience_tiers=["gold"], channels=["ios"])
    operator = factories.make_operator(tenant)
    from coupons.services.policy import CLONED_POLICY_FIELDS, policy_clone

    copy = policy_clone(policy=original, actor_user=operator)
    assert (copy.status, copy.created_by_id, copy.name) == ("DRAFT", operator.pk, f"{original.name} (copy)")
    assert copy.public_id != original.public_id
    assert {f: getattr(copy, f) for f in CLONED_POLICY_FIELDS} == {f: getattr(original, f)
                                                                  for f in CLONED_POLICY_FIELDS}
    assert CouponPolicy.objects.get(pk=original.pk).status == "APPROVED"


def test_the_console_copies_events_and_policies_in_korean(client, tenant):
    tenant.language = "ko"  # the console speaks the tenant's language
    tenant.save(update_fields=["language"])
    event, _, _, _ = event_with_setup(tenant)
    policy = factories.make_approved_policy(tenant)
    operator = factories.make_operator(tenant)
    client.force_login(operator)
    answer = client.post(reverse("admin:events_event_changelist"), {
        "action": "clone_as_template", "_selected_action": [event.pk]}, follow=True)
    copy = Event.objects.get(name=f"{event.name} (사본)")
    assert f"“{event.name}”을(를) 풀과 추첨을 포함해 초안 “{copy.name}”(으)로 복사했습니다." in answer.content.decode()
    answer = client.post(reverse("admin:coupons_couponpolicy_changelist"), {
        "action": "clone_as_template", "_selected_action": [policy.pk]}, follow=True)
    assert CouponPolicy.objects.filter(name=f"{policy.name} (사본)", status="DRAFT").count() == 1
    assert "정책 1개를 초안으로 복사했습니다." in answer.content.decode()
