"""Issue and use budgets of an inventory, by count and by amount, with threshold alarms (R-RISK-3).

Invariant: ``consume`` is the last statement of the claim's or redemption's transaction.
Design: docs/design/claims-and-limits.md#risk-budgets.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.audit import Actor, audit_record
from core.counters import counter_totals
from risk.exceptions import BudgetExhausted
from risk.models import Alarm, InventoryBudget, default_thresholds
from risk.webhooks import outbox_add_alarm

if TYPE_CHECKING:
    from coupons.models import CouponInventory

logger = logging.getLogger("coupons.risk")

# kind → (spent count column, spent amount column, budget count column, budget amount column)
_COLUMNS = {
    "issue": ("issued_count", "issued_amount", "issue_budget_count", "issue_budget_amount"),
    "use": ("used_count", "used_amount", "use_budget_count", "use_budget_amount"),
}


def has_budget(inventory: CouponInventory, kind: str) -> bool:
    _, _, count_col, amount_col = _COLUMNS[kind]
    return getattr(inventory, count_col) is not None or getattr(inventory, amount_col) is not None


def _consume_sql(kind: str) -> str:
    spent_count, spent_amount, budget_count, budget_amount = _COLUMNS[kind]
    return f"""
UPDATE risk_inventorybudget b
   SET {spent_count} = b.{spent_count} + 1, {spent_amount} = b.{spent_amount} + %(amount)s, updated_at = %(now)s
  FROM coupons_couponinventory i
 WHERE b.inventory_id = %(inventory)s AND i.id = b.inventory_id
   AND (i.{budget_count} IS NULL OR b.{spent_count} + 1 <= i.{budget_count})
   AND (i.{budget_amount} IS NULL OR b.{spent_amount} + %(amount)s <= i.{budget_amount})
RETURNING b.{spent_count}, b.{spent_amount}, i.{budget_count}, i.{budget_amount}, b.alarm_thresholds
"""


# A missing row starts from the inventory's history (its counter shards), less what the calling transaction has
# already counted there for the request being guarded. All coupons of an inventory share one policy, so the issued
# amount is the issued count times the face value.
_CREATE_FROM_HISTORY = """
INSERT INTO risk_inventorybudget (tenant_id, inventory_id, issued_count, issued_amount, used_count, used_amount,
                                  alarm_thresholds, updated_at)
SELECT %(tenant)s, %(inventory)s, GREATEST(COALESCE(SUM(issued), 0) - %(issued_now)s, 0),
       GREATEST(COALESCE(SUM(issued), 0) - %(issued_now)s, 0) * %(face)s,
       GREATEST(COALESCE(SUM(used), 0) - %(used_now)s, 0),
       GREATEST(COALESCE(SUM(used_discount), 0) - %(discount_now)s, 0), %(thresholds)s, %(now)s
  FROM coupons_inventorycounter WHERE tenant_id = %(tenant)s AND inventory_id = %(inventory)s
ON CONFLICT (tenant_id, inventory_id) DO NOTHING
"""


def _create_row(inventory: CouponInventory, *, kind: str | None, amount: int, now: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_CREATE_FROM_HISTORY, {
            "tenant": inventory.tenant_id, "inventory": inventory.pk, "face": inventory.policy.face_value(),
            "issued_now": 1 if kind == "issue" else 0, "used_now": 1 if kind == "use" else 0,
            "discount_now": amount if kind == "use" else 0, "thresholds": default_thresholds(), "now": now})


def consume(*, inventory: CouponInventory, kind: str, amount: int | None = None, now: datetime | None = None) -> None:
    """Spend one coupon's worth of the inventory's ``kind`` ("issue" or "use") budget, or raise ``BudgetExhausted``.

    Call it inside the transaction of the issue/redemption, after that transaction has written its counter shard,
    and as late as possible: the budget row stays locked until commit."""
    if not has_budget(inventory, kind):
        return
    now = now or timezone.now()
    amount = inventory.policy.face_value() if kind == "issue" else int(amount or 0)
    params: dict[str, Any] = {"amount": amount, "now": now, "inventory": inventory.pk}
    sql = _consume_sql(kind)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            # No row yet, or one another transaction is creating right now (invisible to the UPDATE, which does
            # not wait for it), or a full budget. The INSERT waits for a concurrent creator; only a second miss
            # means the budget is full.
            _create_row(inventory, kind=kind, amount=amount, now=now)
            cursor.execute(sql, params)
            row = cursor.fetchone()
    if row is None:
        raise _exhausted(inventory, kind, amount)
    spent_count, spent_amount, budget_count, budget_amount, thresholds = row
    for budget, spent, limit, delta in ((f"{kind}_count", spent_count, budget_count, 1),
                                        (f"{kind}_amount", spent_amount, budget_amount, amount)):
        if limit is None or limit <= 0 or delta <= 0:
            continue
        for threshold in sorted(set(thresholds or [])):
            if (spent - delta) * 100 < threshold * limit <= spent * 100:
                raise_alarm(inventory=inventory, budget=budget, threshold=threshold, spent=spent, limit=limit,
                            now=now)


def _exhausted(inventory: CouponInventory, kind: str, amount: int) -> BudgetExhausted:
    spent_count_col, spent_amount_col, budget_count_col, budget_amount_col = _COLUMNS[kind]
    spend = InventoryBudget.objects.filter(inventory_id=inventory.pk).values(spent_count_col, spent_amount_col).first()
    limits = inventory._meta.model._default_manager.filter(pk=inventory.pk).values(budget_count_col, budget_amount_col).first()
    spend, limits = spend or {}, limits or {}
    count_limit = limits.get(budget_count_col)
    if count_limit is not None and spend.get(spent_count_col, 0) + 1 > count_limit:
        budget, spent, limit = f"{kind}_count", spend.get(spent_count_col, 0), count_limit
    else:
        budget, spent, limit = f"{kind}_amount", spend.get(spent_amount_col, 0), limits.get(budget_amount_col) or 0
    message = (gettext("The issue budget of this coupon is exhausted.") if kind == "issue" else
               gettext("The use budget of this coupon is exhausted."))
    exc = BudgetExhausted(message,
                          details={"budget": budget, "spent": spent, "limit": limit})
    exc.inventory = inventory  # type: ignore[attr-defined]  # for alarm_exhausted, not for the client
    return exc


def release_use(*, tenant_id: int, inventory_id: int, discount: int, now: datetime | None = None) -> None:
    """A full refund gives one use and its discount back. Inside the refund's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE risk_inventorybudget SET used_count = GREATEST(used_count - 1, 0), "
                       "used_amount = GREATEST(used_amount - %s, 0), updated_at = %s WHERE tenant_id = %s AND inventory_id = %s",
                       [discount, now or timezone.now(), tenant_id, inventory_id])


def raise_alarm(*, inventory: CouponInventory, budget: str, threshold: int, spent: int, limit: int,
                now: datetime) -> Alarm | None:
    """Write the alarm once (None when it exists already), its audit row and its webhook deliveries, in the caller's
    transaction; the log line is written when that transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO risk_alarm (tenant_id, inventory_id, budget, threshold, spent, \"limit\", raised_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, inventory_id, budget, threshold) DO NOTHING "
            "RETURNING id",
            [inventory.tenant_id, inventory.pk, budget, threshold, spent, limit, now])
        row = cursor.fetchone()
    if row is None:
        return None
    alarm = Alarm(id=row[0], tenant_id=inventory.tenant_id, inventory=inventory, budget=budget, threshold=threshold,
                  spent=spent, limit=limit, raised_at=now)
    audit_record(tenant=inventory.tenant, actor=Actor.system("risk"), action="risk.alarm", obj=alarm,
                 after={"budget": budget, "threshold": threshold, "spent": spent, "limit": limit})

    outbox_add_alarm(alarm)
    message = (f"budget alarm: inventory {inventory.public_id} ({inventory.name}) {budget} reached {threshold} % "
               f"({spent} of {limit})")
    transaction.on_commit(lambda: logger.warning(message))
    return alarm


def alarm_exhausted(exc: BudgetExhausted) -> None:
    """After a request was refused for an exhausted budget (its transaction rolled back): raise the 100 % alarm of
    that budget if no request has. Own transaction (a savepoint when nested)."""
    details = exc.details
    refused = getattr(exc, "inventory", None)
    if refused is None:
        return
    inventory = refused._meta.model._default_manager.select_related("tenant").filter(pk=refused.pk).first()
    if inventory is None:
        return
    with transaction.atomic():
        raise_alarm(inventory=inventory, budget=details["budget"], threshold=100, spent=details["spent"],
                    limit=details["limit"], now=timezone.now())


def budget_recount(*, inventory: CouponInventory, actor: Actor) -> InventoryBudget:
    """Set the spend from the inventory's history (its counter shards): after a budget was switched off and on again,
    the spend row was not kept up to date meanwhile."""
    now = timezone.now()
    with transaction.atomic():
        _create_row(inventory, kind=None, amount=0, now=now)
        spend = InventoryBudget.objects.select_for_update().get(inventory_id=inventory.pk)
        before = {"issued_count": spend.issued_count, "issued_amount": spend.issued_amount,
                  "used_count": spend.used_count, "used_amount": spend.used_amount}
        # The inventory's counter shards (coupons.services.counters; read by table name: coupons is a layer above risk).
        counts = counter_totals(table="coupons_inventorycounter", owner="inventory_id", owner_id=inventory.pk,
                                columns=("issued", "used", "used_discount"))
        spend.issued_count = counts["issued"]
        spend.issued_amount = counts["issued"] * inventory.policy.face_value()
        spend.used_count = counts["used"]
        spend.used_amount = counts["used_discount"]
        spend.save()
        audit_record(tenant=inventory.tenant, actor=actor, action="risk.budget_recount", obj=spend, before=before,
                     after={"issued_count": spend.issued_count, "issued_amount": spend.issued_amount,
                            "used_count": spend.used_count, "used_amount": spend.used_amount})
    return spend
