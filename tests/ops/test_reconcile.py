"""reconcile (R-OPS-2): pool counters against their rows, the Bloom filter against the code table."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from core.models import AuditLog
from coupons.bloom import bloom_drop, bloom_rebuild
from coupons.services.counters import inventory_counts
from coupons.services.issue import RequestContext, issue_from_pool
from coupons.services.lifecycle import coupon_redeem
from coupons.models import CouponCode, InventoryCounter
from ops.reconcile import counters_check, counters_fix
from core.audit import Actor
from tests import factories


def reconcile(*args: str) -> list[str]:
    out = StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.fixture
def counted_pool(tenant):
    """An inventory with 3 issued coupons; its counters agree with its rows."""
    inventory, _ = factories.make_pool(tenant, size=5, per_member_limit=5)
    coupons = [issue_from_pool(inventory=inventory, member_id=f"m-{i}", via="grant", ctx=RequestContext())
               for i in range(3)]
    return inventory, coupons


@pytest.mark.django_db
def test_matching_counters_report_nothing(counted_pool):
    inventory, _ = counted_pool
    lines = reconcile("--bloom", "skip", "--inventory", str(inventory.pk))
    assert lines == [lines[-1]] and lines[-1].startswith(
        "reconcile: inventories=1 counter_mismatches=0 fixed=0 seconds=")


@pytest.mark.django_db
def test_wrong_counters_are_reported_and_the_command_fails_until_fixed(counted_pool):
    """R-OPS-2: a lost increment shows as a mismatch naming the inventory and both figures."""
    inventory, _ = counted_pool
    InventoryCounter.objects.filter(inventory=inventory).update(issued=0)
    InventoryCounter.objects.filter(inventory=inventory, issued=0).update(used=2, used_discount=500)
    with pytest.raises(CommandError, match="1 mismatch"):
        reconcile("--bloom", "skip")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("reconcile", "--bloom", "skip", stdout=out)
    assert f"mismatch inventory {inventory.pk}: issued: rows=3 counter=0" in out.getvalue()
    assert inventory_counts(inventory.pk)["issued"] == 0  # a report changes nothing

    dry = reconcile("--bloom", "skip", "--fix", "--dry-run")
    assert dry[0].startswith(f"would fix inventory {inventory.pk}: issued: rows=3 counter=0, used: rows=0 counter=")
    assert inventory_counts(inventory.pk)["issued"] == 0 and not AuditLog.objects.filter(
        action="inventory.counters_reconcile").exists()

    fixed = reconcile("--bloom", "skip", "--fix")
    assert fixed[0].startswith(f"fixed inventory {inventory.pk}: issued: rows=3 counter=0")
    assert " counter_mismatches=1 fixed=1 " in fixed[-1]
    assert inventory_counts(inventory.pk) == {"issued": 3, "used": 0, "used_discount": 0}
    row = AuditLog.objects.get(action="inventory.counters_reconcile")
    assert row.before["issued"] == 0 and row.after == {"issued": 3, "used": 0, "used_discount": 0}
    assert row.tenant_id == inventory.tenant_id

    again = reconcile("--bloom", "skip", "--fix")
    assert " counter_mismatches=0 fixed=0 " in again[-1]
    assert AuditLog.objects.filter(action="inventory.counters_reconcile").count() == 1


def _order():
    from coupons.discounts.inputs import Order, OrderLine

    data = factories.order(order_id="o-1")
    return Order(order_id=data["order_id"], items=tuple(OrderLine(**item) for item in data["items"]),
                 shipping_fee=data["shipping_fee"], channel=data["channel"], payment_method=data["payment_method"])


@pytest.mark.django_db
def test_used_counts_only_unrefunded_usages(counted_pool):
    inventory, coupons = counted_pool
    coupon_redeem(tenant=inventory.tenant, code=coupons[0].code, member_id="m-0", order_id="o-1",
                  order=_order(), ctx=RequestContext())
    assert [m for _id, m in counters_check(inventory_id=inventory.pk)] == [None]
    counts = inventory_counts(inventory.pk)
    InventoryCounter.objects.filter(inventory=inventory).update(used=0, used_discount=0)
    mismatch = counters_fix(inventory_id=inventory.pk, actor=Actor.system("test"))
    assert mismatch is not None and mismatch.used_rows == 1
    assert inventory_counts(inventory.pk) == counts


@pytest.fixture
def small_filter(settings, transactional_db):
    settings.BLOOM_CAPACITY = 10_000
    bloom_drop()
    yield
    bloom_drop()


@pytest.mark.usefixtures("small_filter")
@pytest.mark.parametrize("mode", ["full", "sample"])
def test_codes_missing_from_the_bloom_filter_are_found_and_fixed_by_a_rebuild(mode):
    """R-OPS-2: codes written behind the filter's back (here: renamed in SQL after the filter was built) are reported;
    --fix rebuilds the filter, after which nothing is missing."""
    tenant = factories.make_tenant()
    inventory, _codes = factories.make_pool(tenant, size=40)
    bloom_rebuild()
    assert " bloom_missing=0" in reconcile("--bloom", mode)[-1]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE coupons_couponcode SET code = code || 'QZ' WHERE inventory_id = %s", [inventory.pk])
    with pytest.raises(CommandError, match="1 mismatch"):
        reconcile("--bloom", mode)
    dry = reconcile("--bloom", mode, "--fix", "--dry-run")
    assert " bloom_missing=40 " in dry[-1] and "(would rebuild)" in dry[-2]
    assert " bloom_missing=40 " in (out := reconcile("--bloom", mode, "--fix"))[-1]
    assert "bloom: rebuilt from 40 codes" in out
    assert " bloom_missing=0 " in reconcile("--bloom", mode)[-1]
    assert CouponCode.objects.filter(code__endswith="QZ").count() == 40


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")
def test_fixes_running_at_once_and_claims_meanwhile_apply_the_difference_exactly_once(monkeypatch):
    """R-OPS-2: counters_fix locks every shard of the inventory before it counts, so four fixes started together
    repair five lost increments once (not four times), and the 20 claims committing meanwhile are neither lost nor
    counted twice: afterwards counters equal rows without a further fix."""
    import threading

    from django.db import connection as main_connection

    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=30, per_member_limit=1)
    for i in range(5):
        issue_from_pool(inventory=inventory, member_id=f"pre-{i}", via="grant", ctx=RequestContext())
    for shard in range(InventoryCounter.SHARDS):  # every shard row exists: only the row locks order the fixes
        InventoryCounter.objects.get_or_create(tenant_id=inventory.tenant_id, inventory=inventory, shard=shard)
    InventoryCounter.objects.filter(inventory=inventory).update(issued=0)  # five lost increments
    import time

    from ops import reconcile as module

    real_totals = module._totals

    def slow_totals(**kwargs):  # widen the window between counting and correcting, where an unguarded fix races
        rows = real_totals(**kwargs)
        time.sleep(0.2)
        return rows

    monkeypatch.setattr(module, "_totals", slow_totals)
    start = threading.Barrier(24)
    errors: list[BaseException] = []
    repaired: list[int] = []

    def claim(i: int) -> None:
        try:
            main_connection.ensure_connection()  # connect first, so the barrier releases ready sessions together
            start.wait()
            issue_from_pool(inventory=inventory, member_id=f"m-{i}", via="grant", ctx=RequestContext())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            main_connection.close()

    def fixer() -> None:
        try:
            main_connection.ensure_connection()
            start.wait()
            if counters_fix(inventory_id=inventory.pk, actor=Actor.system("test")) is not None:
                repaired.append(1)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            main_connection.close()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(20)]
    threads += [threading.Thread(target=fixer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(repaired) == 1
    assert [m for _id, m in counters_check(inventory_id=inventory.pk)] == [None]
    assert inventory_counts(inventory.pk)["issued"] == 25
    assert AuditLog.objects.filter(action="inventory.counters_reconcile").count() == 1
