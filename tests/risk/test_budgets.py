"""R-RISK-3: issue and use budgets by count and by amount per inventory — refused exactly at the limit with
422 budget_exhausted (nothing written), refunds give the use budget back, thresholds raise one alarm each."""
from __future__ import annotations

import logging

import pytest

from core.audit import Actor
from coupons.discounts import validate_order_payload
from coupons.services.issue import RequestContext
from coupons.services.lifecycle import coupon_redeem, coupon_refund
from coupons.models import CouponCode, CouponInventory, CouponIssue, CouponUsage
from risk.budgets import budget_recount
from risk.models import Alarm, InventoryBudget
from tests import factories
from tests.risk.util import claim

pytestmark = pytest.mark.django_db


def budgeted_pool(tenant, size=10, **budgets):
    inventory, codes = factories.make_pool(tenant, size=size, per_member_limit=5)
    CouponInventory.objects.filter(pk=inventory.pk).update(**budgets)
    inventory.refresh_from_db()
    return inventory, codes


def test_a_count_budget_issues_exactly_its_count_then_refuses_with_nothing_written(tenant, api):
    inventory, _ = budgeted_pool(tenant, issue_budget_count=3)
    for i in range(3):
        assert claim(api, inventory, f"m-{i}").status_code == 201
    refused = claim(api, inventory, "m-3")
    assert refused.status_code == 422
    assert refused.json() == {"code": "budget_exhausted", "message": "The issue budget of this coupon is exhausted.",
                              "details": {"budget": "issue_count", "spent": 3, "limit": 3}}
    assert CouponCode.objects.filter(inventory=inventory, status="ISSUED").count() == 3
    assert not CouponIssue.objects.filter(member_id="m-3").exists()
    spend = InventoryBudget.objects.get(inventory=inventory)
    assert (spend.issued_count, spend.issued_amount) == (3, 3 * 5000)


def test_an_amount_budget_counts_the_face_value_of_each_coupon(tenant, api):
    """Issue amount = face value (the amount policy's 5,000): 12,000 fits two coupons, not a third."""
    inventory, _ = budgeted_pool(tenant, issue_budget_amount=12_000)
    assert inventory.policy.face_value() == 5000
    assert claim(api, inventory, "a").status_code == 201
    assert claim(api, inventory, "b").status_code == 201
    refused = claim(api, inventory, "c")
    assert refused.json()["details"] == {"budget": "issue_amount", "spent": 10_000, "limit": 12_000}


def test_face_value_of_each_kind(tenant):
    assert factories.make_approved_policy(tenant, kind="threshold").face_value() == 3000
    assert factories.make_approved_policy(tenant, kind="percentage").face_value() == 5000  # the cap
    assert factories.make_approved_policy(tenant, kind="sku_deduction").face_value() == 0


def test_a_budget_set_later_starts_from_the_inventorys_history(tenant, api):
    inventory, _ = factories.make_pool(tenant, size=10)
    for i in range(4):
        assert claim(api, inventory, f"m-{i}").status_code == 201
    CouponInventory.objects.filter(pk=inventory.pk).update(issue_budget_count=5)
    assert claim(api, inventory, "m-4").status_code == 201
    assert claim(api, inventory, "m-5").json()["code"] == "budget_exhausted"
    assert InventoryBudget.objects.get(inventory=inventory).issued_count == 5


def redeem(tenant, code, member, total, order_id):
    return coupon_redeem(tenant=tenant, code=code, member_id=member, order_id=order_id,
                         order=validate_order_payload(factories.order(total, order_id=order_id)), ctx=RequestContext())


def test_the_use_budget_counts_actual_discounts_and_a_full_refund_gives_it_back(tenant, api):
    """Use amount = the redemption's actual discount (a 10 % coupon on 30,000 → 3,000)."""
    policy = factories.make_approved_policy(tenant, kind="percentage", rate=10, cap=5000)
    inventory, _ = factories.make_pool(tenant, size=5, policy=policy, per_member_limit=5)
    CouponInventory.objects.filter(pk=inventory.pk).update(use_budget_amount=7000)
    codes = [claim(api, inventory, "m").json()["coupon"]["code"] for _ in range(3)]
    redeem(tenant, codes[0], "m", 30_000, "o-1")  # 3,000
    redeem(tenant, codes[1], "m", 30_000, "o-2")  # 6,000
    from risk.exceptions import BudgetExhausted

    with pytest.raises(BudgetExhausted) as refused:
        redeem(tenant, codes[2], "m", 30_000, "o-3")  # 9,000 > 7,000
    assert refused.value.details == {"budget": "use_amount", "spent": 6000, "limit": 7000}
    assert CouponCode.objects.get(code=codes[2]).status == "ISSUED"
    assert not CouponUsage.objects.filter(order_id="o-3").exists()
    assert redeem(tenant, codes[2], "m", 10_000, "o-4")[1].discount == 1000  # 7,000 fits exactly
    coupon_refund(tenant=tenant, code=codes[0], order_id="o-1", ctx=RequestContext())
    spend = InventoryBudget.objects.get(inventory=inventory)
    assert (spend.used_count, spend.used_amount) == (2, 4000)


def test_thresholds_raise_one_alarm_each_with_a_warning_log_line(tenant, api, caplog,
                                                                 django_capture_on_commit_callbacks):
    """80 % and 100 % of a count budget of 5: the 4th claim raises 80 %, the 5th 100 %; refusals raise nothing new.
    The log line is written when the crossing commits."""
    inventory, _ = budgeted_pool(tenant, issue_budget_count=5)
    with caplog.at_level(logging.WARNING, logger="coupons.risk"), django_capture_on_commit_callbacks(execute=True):
        for i in range(7):
            claim(api, inventory, f"m-{i}")
    alarms = list(Alarm.objects.filter(inventory=inventory).order_by("threshold").values_list(
        "budget", "threshold", "spent", "limit"))
    assert alarms == [("issue_count", 80, 4, 5), ("issue_count", 100, 5, 5)]
    lines = [r.getMessage() for r in caplog.records if r.name == "coupons.risk" and "budget alarm" in r.message]
    assert len(lines) == 2 and "80 %" in lines[0] and "100 %" in lines[1]


def test_an_amount_budget_that_stops_short_of_100_percent_raises_the_100_alarm_when_it_refuses(tenant, api):
    inventory, _ = budgeted_pool(tenant, issue_budget_amount=12_000)
    for member in ("a", "b", "c", "d"):
        claim(api, inventory, member)
    assert list(Alarm.objects.filter(inventory=inventory).order_by("threshold").values_list(
        "threshold", "spent", "limit")) == [(80, 10_000, 12_000), (100, 10_000, 12_000)]


def test_thresholds_are_configurable_per_inventory(tenant, api):
    from risk import services

    inventory, _ = budgeted_pool(tenant, issue_budget_count=10)
    spend = services.budget_settings_save(spend=InventoryBudget(tenant=tenant, inventory=inventory,
                                                                alarm_thresholds="50, 90%"),
                                          actor=factories.TEST_ACTOR)
    assert spend.alarm_thresholds == [50, 90]
    for i in range(9):
        claim(api, inventory, f"m-{i}")
    assert sorted(Alarm.objects.filter(inventory=inventory).values_list("threshold", flat=True)) == [50, 90]


@pytest.mark.parametrize("raw", ["0", "101", "abc", "80,x"])
def test_bad_thresholds_are_refused_naming_the_value(raw):
    from core.exceptions import InvalidInput
    from risk.services import thresholds_parse

    with pytest.raises(InvalidInput, match="whole percentages"):
        thresholds_parse(raw)


def test_recount_sets_the_spend_from_history(tenant, api):
    inventory, _ = budgeted_pool(tenant, issue_budget_count=100)
    for i in range(3):
        claim(api, inventory, f"m-{i}")
    InventoryBudget.objects.filter(inventory=inventory).update(issued_count=0, issued_amount=0)
    spend = budget_recount(inventory=inventory, actor=Actor.system("test"))
    assert (spend.issued_count, spend.issued_amount) == (3, 15_000)


def test_alarms_are_written_once_even_when_the_budget_goes_down_and_up_again(tenant, api):
    policy = factories.make_approved_policy(tenant)
    inventory, _ = factories.make_pool(tenant, size=5, policy=policy, per_member_limit=5)
    CouponInventory.objects.filter(pk=inventory.pk).update(use_budget_count=1)
    code = claim(api, inventory, "m").json()["coupon"]["code"]
    redeem(tenant, code, "m", 50_000, "o-1")
    coupon_refund(tenant=tenant, code=code, order_id="o-1", ctx=RequestContext())
    redeem(tenant, code, "m", 50_000, "o-2")
    assert Alarm.objects.filter(inventory=inventory, budget="use_count", threshold=100).count() == 1
