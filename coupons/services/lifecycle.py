"""Coupon lifecycle after issue (SPEC §4, R-LIFE, R-USE-3/4): lock, release, redeem, refund, revoke, expire.

Every transition is one transaction: it locks the code row (``SELECT … FOR UPDATE``), checks the state, changes it,
writes its history row (``CouponUsage``) and its audit row; any refusal raises before anything is written.
Database constraints (one un-refunded usage per code; status ↔ member/order consistency) are the last guard.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import partitioning
from core.audit import Actor, actor_params, audit_insert_sql, audit_record
from core.exceptions import InvalidInput, InvalidState
from core.locks import session_lock
from core.models import Tenant
from coupons.services.counters import counter_add, shard_of, upsert_from
from coupons.exceptions import (AlreadyUsed, CouponExpired, CouponNotFound, LockedByOtherOrder, NotOwner)
from coupons.services import webhook_events
from coupons.codes import normalise_code
from coupons.services.issue import RequestContext
from coupons.models import CouponBatch, CouponCode, CouponInventory, CouponPolicy, CouponUsage
from core.rows import JoinedRows
from core.tenancy import save_in_tenant
from coupons.discounts import Order
from coupons.pricing import MEMBER, Buyer, Quote, quote
from coupons.validity import effective_status
from risk.budgets import consume as budget_consume
from risk.budgets import release_use as budget_release_use
from risk.guard import RiskGuard
from risk.webhooks import endpoints_taking_sql
from core.metrics import record_redemption
from coupons import bloom_check

S = CouponCode.Status


# The code row locked for this transaction, with its inventory, policy, tenant and batch: one statement written once
# (core.rows), not an ORM query compiled on every redemption (#21).
_LOCKED_ROWS = JoinedRows([(CouponCode, "c"), (CouponInventory, "i"), (CouponPolicy, "p"), (Tenant, "t"),
                           (CouponBatch, "b")])
_LOCKED_SQL: str | None = None


def _locked_sql() -> str:
    global _LOCKED_SQL
    if _LOCKED_SQL is None:
        _LOCKED_SQL = (f"SELECT {_LOCKED_ROWS.columns()} FROM coupons_couponcode c "
                       "JOIN coupons_couponinventory i ON i.tenant_id = c.tenant_id AND i.id = c.inventory_id "
                       "JOIN coupons_couponpolicy p ON p.tenant_id = c.tenant_id AND p.id = i.policy_id "
                       "JOIN core_tenant t ON t.id = i.tenant_id "
                       "JOIN coupons_couponbatch b ON b.tenant_id = c.tenant_id AND b.id = c.batch_id "
                       "WHERE c.tenant_id = %(tenant)s AND c.code = %(code)s FOR UPDATE OF c")
    return _LOCKED_SQL


def _locked_coupon(tenant: Tenant, raw_code: str) -> CouponCode:
    """The code row, locked for this transaction. Another tenant's code is 'not found', exactly like a missing one."""
    code = normalise_code(raw_code)
    if code and not bloom_check.might_exist(code, tenant.pk):  # certainly not this tenant's: no database query (R-RISK-4)
        raise CouponNotFound()
    row = None
    if code:
        with connection.cursor() as cursor:
            cursor.execute(partitioning.for_tenant(_locked_sql(), tenant.pk), {"tenant": tenant.pk, "code": code})
            row = cursor.fetchone()
    if row is None:
        raise CouponNotFound()
    coupon, inventory, policy, owner, batch = _LOCKED_ROWS.load(row)
    assert isinstance(coupon, CouponCode) and isinstance(inventory, CouponInventory)
    assert isinstance(policy, CouponPolicy) and isinstance(owner, Tenant) and isinstance(batch, CouponBatch)
    inventory.policy, inventory.tenant = policy, owner
    coupon.inventory, coupon.batch = inventory, batch
    return coupon


def _refuse_unusable(coupon: CouponCode, now: datetime, *, order_id: str | None = None) -> None:
    status = effective_status(coupon, coupon.inventory.policy, now)
    if status == S.EXPIRED:
        raise CouponExpired()
    if status == S.USED:
        raise AlreadyUsed()
    if status == S.LOCKED and coupon.locked_order_id != order_id:
        raise LockedByOtherOrder()
    if status not in (S.ISSUED, S.LOCKED):
        raise InvalidState(_("A %(status)s coupon cannot be used.") % {"status": status.lower()},
                           details={"status": status})
    if coupon.valid_from is not None and coupon.valid_from > now:
        raise InvalidState(_("This coupon is not valid yet."), code="not_yet_valid",
                           details={"valid_from": coupon.valid_from.isoformat()})


def _check_owner(coupon: CouponCode, member_id: str) -> None:
    if coupon.member_id != member_id:
        raise NotOwner()


def _audit(coupon: CouponCode, ctx: RequestContext, action: str, before: str, **after: Any) -> None:
    audit_record(tenant=coupon.inventory.tenant, actor=ctx.actor, action=action, obj=coupon,
                 before={"status": before}, after={"status": coupon.status, **after})


def coupon_lock(*, tenant: Tenant, code: str, member_id: str, order_id: str, order: Order,
                ctx: RequestContext, buyer: Buyer = MEMBER) -> tuple[CouponCode, Quote]:
    """ISSUED → LOCKED to an order, after checking the coupon applies to it. Locking again for the same order is a
    no-op that answers the same way."""
    now = timezone.now()
    guard = RiskGuard(action="use", member_id=member_id, ctx=ctx, count_limits=False)
    with guard, transaction.atomic():
        coupon = _locked_coupon(tenant, code)
        _refuse_unusable(coupon, now, order_id=order_id)
        _check_owner(coupon, member_id)
        guard.check(coupon.inventory, now)  # R-RISK-2: a blocked member cannot start using a coupon either
        priced = quote(coupon=coupon, order=order, tenant=tenant, now=now, buyer=buyer)
        if coupon.status == S.LOCKED:  # same order (else refused above)
            return coupon, priced
        before = coupon.status
        coupon.status, coupon.locked_order_id, coupon.locked_at = S.LOCKED, order_id, now
        save_in_tenant(coupon, "status", "locked_order_id", "locked_at")
        _audit(coupon, ctx, "coupon.lock", before, order_id=order_id)
    return coupon, priced


def coupon_release(*, tenant: Tenant, code: str, order_id: str, ctx: RequestContext) -> CouponCode:
    """LOCKED → ISSUED: the order was cancelled before payment."""
    with transaction.atomic():
        coupon = _locked_coupon(tenant, code)
        if coupon.status != S.LOCKED:
            raise InvalidState(_("This coupon is not locked to an order."), details={"status": coupon.status})
        if coupon.locked_order_id != order_id:
            raise LockedByOtherOrder()
        coupon.status, coupon.locked_order_id, coupon.locked_at = S.ISSUED, None, None
        save_in_tenant(coupon, "status", "locked_order_id", "locked_at")
        _audit(coupon, ctx, "coupon.release", S.LOCKED, order_id=order_id)
    return coupon


def coupon_redeem(*, tenant: Tenant, code: str, member_id: str, order_id: str, order: Order,
                  ctx: RequestContext, buyer: Buyer = MEMBER) -> tuple[CouponCode, CouponUsage]:
    """ISSUED, or LOCKED by the same order → USED, writing the accounting row (R-LIFE-4, R-USE-4)."""
    now = timezone.now()
    guard = RiskGuard(action="use", member_id=member_id, ctx=ctx)
    with guard, transaction.atomic():
        coupon = _locked_coupon(tenant, code)
        _refuse_unusable(coupon, now, order_id=order_id)
        _check_owner(coupon, member_id)
        priced = quote(coupon=coupon, order=order, tenant=tenant, now=now, buyer=buyer)
        guard.check(coupon.inventory, now)  # R-RISK-1/2: block list, daily use limits
        before = coupon.status
        usage = CouponUsage(tenant=tenant, inventory_id=coupon.inventory_id, coupon=coupon, member_id=member_id,
                            order_id=order_id, order_amount=priced.order_amount, discount=priced.discount,
                            channel=order.channel or ctx.channel, payment_method=order.payment_method or "",
                            client=ctx.client, ip=ctx.ip, device_id=ctx.device_id, used_at=now)
        with connection.cursor() as cursor:
            cursor.execute(partitioning.for_tenant(_REDEEM_WRITES, tenant.pk), {
                "coupon": coupon.pk, "tenant": tenant.pk, "inventory": coupon.inventory_id, "member": member_id,
                "order": order_id, "order_amount": priced.order_amount, "discount": priced.discount,
                "channel": usage.channel, "payment_method": usage.payment_method,
                "client": ctx.client.pk if ctx.client else None, "ip": ctx.ip, "device": ctx.device_id, "now": now,
                "shard": shard_of(member_id), **actor_params(ctx.actor), "code": coupon.code, "before": before})
            written = cursor.fetchone()
            usage.pk, endpoint_ids = written[0], written[3]
        budget_consume(inventory=coupon.inventory, kind="use", amount=priced.discount, now=now)  # R-RISK-3, last
        transaction.on_commit(lambda: record_redemption(tenant.pk))  # /metrics (R-OPS)
        coupon.status, coupon.used_at, coupon.locked_order_id, coupon.locked_at = S.USED, now, None, None
        webhook_events.coupon_redeemed(coupon=coupon, order_id=order_id, order_amount=priced.order_amount,
                                       discount=priced.discount, now=now, endpoint_ids=endpoint_ids)  # #16
    return coupon, usage


# The writes of a redemption in one round trip, after the row lock and every check above: the code → USED, its
# accounting row (UNIQUE(coupon) WHERE refunded_at IS NULL is the last guard against a double redemption), the
# member's counter shard and the audit row (the columns core.audit.audit_record fills).
_REDEEM_WRITES = """
WITH used AS (
    UPDATE coupons_couponcode SET status = 'USED', used_at = %(now)s, locked_order_id = NULL, locked_at = NULL
     WHERE tenant_id = %(tenant)s AND id = %(coupon)s
    RETURNING id, tenant_id, inventory_id
), usage AS (
    INSERT INTO coupons_couponusage (tenant_id, inventory_id, coupon_id, member_id, order_id, order_amount, discount,
                                     channel, payment_method, client_id, ip, device_id, used_at)
    SELECT %(tenant)s, %(inventory)s, id, %(member)s, %(order)s, %(order_amount)s, %(discount)s, %(channel)s,
           %(payment_method)s, %(client)s, %(ip)s, %(device)s, %(now)s FROM used
    RETURNING id
), counter AS (
    """ + upsert_from("used", shard="%(shard)s", used="1", used_discount="%(discount)s") + """
    RETURNING id
), audit AS (
    """ + audit_insert_sql(
    action="coupon.redeem", object_type="coupons.CouponCode", tenant="%(tenant)s", object_id="id::text",
    object_repr="%(code)s", before="jsonb_build_object('status', %(before)s::text)",
    after="""jsonb_build_object('status', 'USED', 'order_id', %(order)s::text, 'discount', %(discount)s::bigint,
                              'order_amount', %(order_amount)s::bigint)""",
    created_at="%(now)s", source="used") + """
    RETURNING id
)
SELECT (SELECT id FROM usage), (SELECT count(*) FROM counter), (SELECT count(*) FROM audit),
       """ + endpoints_taking_sql(tenant="%(tenant)s", event="coupon.redeemed") + """
"""


def coupon_refund(*, tenant: Tenant, code: str, order_id: str, ctx: RequestContext,
                  full: bool = True) -> tuple[CouponCode, bool]:
    """A full refund returns a USED coupon: ISSUED, or EXPIRED when past its validity. A partial refund changes
    nothing (R-LIFE-5). Returns (coupon, returned)."""
    now = timezone.now()
    with transaction.atomic():
        coupon = _locked_coupon(tenant, code)
        if coupon.status != S.USED:
            raise InvalidState(_("Only a used coupon can be refunded."), details={"status": coupon.status})
        usage = CouponUsage.objects.select_for_update().filter(tenant_id=coupon.tenant_id, coupon=coupon,
                                                                refunded_at__isnull=True).first()
        if usage is None or usage.order_id != order_id:
            raise InvalidState(_("This coupon was not used on that order."), code="order_mismatch")
        if not full:
            return coupon, False
        usage.refunded_at = now
        save_in_tenant(usage, "refunded_at")
        end = coupon.valid_until
        coupon.status = S.EXPIRED if end is not None and end <= now else S.ISSUED
        coupon.used_at = None
        save_in_tenant(coupon, "status", "used_at")
        counter_add(tenant_id=coupon.tenant_id, inventory_id=coupon.inventory_id, member_id=usage.member_id, used=-1,
                    used_discount=-usage.discount)
        budget_release_use(tenant_id=coupon.tenant_id, inventory_id=coupon.inventory_id, discount=usage.discount, now=now)  # R-RISK-3
        _audit(coupon, ctx, "coupon.refund", S.USED, order_id=order_id, discount=usage.discount)
        webhook_events.coupon_refunded(coupon=coupon, order_id=order_id, discount=usage.discount, now=now)  # #16
    return coupon, True


def coupon_revoke(*, tenant: Tenant, code: str, reason: str, ctx: RequestContext,
                  member_id: str | None = None) -> CouponCode:
    """ISSUED (or AVAILABLE/MAPPED/DISTRIBUTED, never registered) → REVOKED with a reason (R-ISS-5). A coupon locked to an order
    must be released first; a used one cannot be revoked. With ``member_id`` (issue #16) the coupon must be that
    member's (NotOwner otherwise), so a mistyped code never takes back someone else's coupon."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Say why the coupon is revoked."), code="reason_required")
    with transaction.atomic():
        coupon = _locked_coupon(tenant, code)
        if member_id is not None:
            _check_owner(coupon, member_id)
        if coupon.status == S.LOCKED:
            raise LockedByOtherOrder(_("This coupon is locked to an order; release it first."))
        if coupon.status == S.USED:
            raise AlreadyUsed()
        if coupon.status not in (S.ISSUED, S.AVAILABLE, S.MAPPED, S.DISTRIBUTED):
            raise InvalidState(_("A %(status)s coupon cannot be revoked.") % {"status": coupon.status.lower()},
                               details={"status": coupon.status})
        before = coupon.status
        coupon.status = S.REVOKED
        save_in_tenant(coupon, "status")
        _audit(coupon, ctx, "coupon.revoke", before, reason=reason[:500])
    return coupon


# --- cron / jobs ------------------------------------------------------------------------------------------------

EXPIRY_LOCK = 7_301_001  # pg advisory lock id: one expiry run at a time, across machines
STALE_LOCK_LOCK = 7_301_002
CHUNK = 5000

# Each picked row is found again by its key (tenant_id, id): one probe of one partition of the code table (#23),
# not one of the id index of every partition.
_EXPIRE_ISSUED = """
WITH picked AS (
    SELECT tenant_id, id FROM coupons_couponcode
     WHERE status IN ('AVAILABLE', 'MAPPED', 'DISTRIBUTED', 'ISSUED') AND valid_until <= %(now)s
     LIMIT %(chunk)s FOR UPDATE SKIP LOCKED)
UPDATE coupons_couponcode c SET status = 'EXPIRED' FROM picked WHERE c.tenant_id = picked.tenant_id AND c.id = picked.id
RETURNING c.tenant_id
"""

# Codes not yet issued carry no validity of their own; they expire with their policy's end.
_EXPIRE_UNISSUED = """
WITH picked AS (
    SELECT c.tenant_id, c.id FROM coupons_couponcode c
      JOIN coupons_couponinventory i ON i.tenant_id = c.tenant_id AND i.id = c.inventory_id
      JOIN coupons_couponpolicy p ON p.tenant_id = i.tenant_id AND p.id = i.policy_id
     WHERE c.status IN ('AVAILABLE', 'MAPPED', 'DISTRIBUTED') AND c.valid_until IS NULL AND p.valid_until <= %(now)s
     LIMIT %(chunk)s FOR UPDATE OF c SKIP LOCKED)
UPDATE coupons_couponcode c SET status = 'EXPIRED' FROM picked WHERE c.tenant_id = picked.tenant_id AND c.id = picked.id
RETURNING c.tenant_id
"""


def _run_chunks(sql: str, params: dict[str, Any], action: str, dry_run: bool,
                progress: Any = None, count_sql: str | None = None) -> int:
    if dry_run and count_sql is not None:
        # Count, don't rehearse: a rolled-back UPDATE would pick the same first chunk forever.
        with connection.cursor() as cursor:
            cursor.execute(count_sql, params)
            return int(cursor.fetchone()[0])
    total = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
            if dry_run:
                transaction.set_rollback(True)
            if rows and not dry_run:
                by_tenant: dict[int, int] = {}
                for (tenant_id,) in rows:
                    by_tenant[tenant_id] = by_tenant.get(tenant_id, 0) + 1
                for tenant_id, count in by_tenant.items():
                    # One audit row per chunk and tenant: per-code rows would double the cost of a 10M-code expiry.
                    tenant = Tenant.objects.get(pk=tenant_id)
                    audit_record(tenant=tenant, actor=Actor.job(action), action=action, obj=tenant,
                                 after={"codes": count})
        total += len(rows)
        if progress is not None and rows:
            progress(len(rows))
        if len(rows) < params["chunk"] or dry_run:
            return total


_COUNT_EXPIRE_ISSUED = """
SELECT count(*) FROM coupons_couponcode WHERE status IN ('AVAILABLE', 'MAPPED', 'DISTRIBUTED', 'ISSUED') AND valid_until <= %(now)s
"""
_COUNT_EXPIRE_UNISSUED = """
SELECT count(*) FROM coupons_couponcode c
  JOIN coupons_couponinventory i ON i.id = c.inventory_id
  JOIN coupons_couponpolicy p ON p.id = i.policy_id
 WHERE c.status IN ('AVAILABLE', 'MAPPED', 'DISTRIBUTED') AND c.valid_until IS NULL AND p.valid_until <= %(now)s
"""


def coupons_expire(*, now: datetime | None = None, dry_run: bool = False, chunk: int = CHUNK,
                   progress: Any = None) -> int | None:
    """Mark every coupon past its validity EXPIRED, in chunks. Returns the count, or None if another run holds the
    lock (cron-safe: two runs never overlap, and a rerun finds nothing left to do)."""
    with session_lock(EXPIRY_LOCK) as got:
        if not got:
            return None
        params = {"now": now or timezone.now(), "chunk": chunk}
        return (_run_chunks(_EXPIRE_ISSUED, params, "coupon.expire", dry_run, progress, _COUNT_EXPIRE_ISSUED)
                + _run_chunks(_EXPIRE_UNISSUED, params, "coupon.expire", dry_run, progress, _COUNT_EXPIRE_UNISSUED))


_RELEASE_STALE = """
WITH picked AS (
    SELECT tenant_id, id FROM coupons_couponcode
     WHERE status = 'LOCKED' AND locked_at <= %(cutoff)s
     LIMIT %(chunk)s FOR UPDATE SKIP LOCKED)
UPDATE coupons_couponcode c SET status = 'ISSUED', locked_order_id = NULL, locked_at = NULL
  FROM picked WHERE c.tenant_id = picked.tenant_id AND c.id = picked.id
RETURNING c.tenant_id
"""


_COUNT_RELEASE_STALE = "SELECT count(*) FROM coupons_couponcode WHERE status = 'LOCKED' AND locked_at <= %(cutoff)s"


def locks_release_stale(*, now: datetime | None = None, ttl_seconds: int | None = None,
                        dry_run: bool = False, progress: Any = None) -> int | None:
    """LOCKED longer than the TTL → ISSUED, like a checkout session that was never paid."""
    with session_lock(STALE_LOCK_LOCK) as got:
        if not got:
            return None
        ttl = ttl_seconds if ttl_seconds is not None else settings.COUPON_LOCK_TTL_SECONDS
        params = {"cutoff": (now or timezone.now()) - timedelta(seconds=ttl), "chunk": CHUNK}
        return _run_chunks(_RELEASE_STALE, params, "coupon.release_stale", dry_run, progress, _COUNT_RELEASE_STALE)
