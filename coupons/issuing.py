"""Issuing: AVAILABLE → ISSUED (R-ISS). Claims by inventory id, promo code or unique code, and targeted grants.

A claim takes the next free code of the pool with ``FOR UPDATE SKIP LOCKED`` (no hot row), under a per-member lock
(``coupons.locks``); in one transaction it updates the code, writes the ``CouponIssue`` row (whose
UNIQUE(inventory, member, slot) is the last guard against exceeding the per-member limit), adds to the inventory's
counter shard and writes the audit row.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.approvals import AlreadyDecided, check_decider, needs_approval, reason_of
from core.audit import Actor, audit_record
from core.exceptions import DomainError, InvalidInput
from core.models import ApiClient, Tenant
from dashboard.metrics import record_issue
from coupons.counters import counter_add, shard_of
from coupons.exceptions import (AlreadyClaimed, CouponNotFound, EventClosed, InventoryNotFound, LimitReached,
                                NotEligible, SoldOut)
from coupons.locks import advisory_lock, member_lock
from coupons.models import (AudienceEntry, CouponBatch, CouponCode, CouponGrant, CouponGrantMember, CouponInventory,
                            CouponIssue, CouponPolicy)
from coupons import webhook_events
from coupons.validity import CALENDAR_TYPES, validity_at_issue
from events import windows
from risk.budgets import consume as budget_consume
from risk.guard import RiskGuard

SYNC_GRANT_LIMIT = 1000
GRANT_CHUNK = 500


@dataclass(frozen=True)
class RequestContext:
    """Who asks and from where: logged with every issue and redemption (R-TEN-2, R-USE-4); risk input (R-RISK)."""

    client: ApiClient | None = None
    operator: Any = None
    channel: str = ""
    ip: str | None = None
    device_id: str = ""
    phone: str = ""
    postcode: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        if self.client is not None:
            return Actor.api_client(self.client)
        if self.operator is not None:
            return Actor.user(self.operator)
        return Actor.system("issuing")


def normalise_code(raw: str) -> str:
    """R-CODE-4: trim, upper-case, drop separators such as '-' and spaces."""
    return "".join(ch for ch in raw.strip().upper() if ch not in "- \t")


_inventories: dict[tuple[int, str, str], tuple[CouponInventory, float]] = {}


def _inventory_by(tenant: Tenant, *, public_id: str | None = None, promo_code: str | None = None) -> CouponInventory:
    """The inventory with its policy and event, kept per process for COUPON_CONFIG_CACHE_SECONDS: the claim path
    reads it on every request and the four-table join costs more to plan than to run."""
    import time

    from django.conf import settings

    key = (tenant.pk, "id", public_id.strip().upper()) if public_id is not None else (
        tenant.pk, "promo", normalise_code(promo_code or ""))
    now = time.monotonic()
    cached = _inventories.get(key)
    if cached is not None and cached[1] > now:
        return cached[0]
    qs = CouponInventory.objects.select_related("policy", "event", "tenant").filter(tenant=tenant)
    inventory = qs.filter(public_id=key[2]).first() if key[1] == "id" else qs.filter(promo_code=key[2]).first()
    if inventory is None:
        raise InventoryNotFound()
    ttl = settings.COUPON_CONFIG_CACHE_SECONDS
    if ttl > 0:
        if len(_inventories) > 10_000:
            _inventories.clear()
        _inventories[key] = (inventory, now + ttl)
    return inventory


def _check_claimable(inventory: CouponInventory, member_id: str, now: datetime, window: str) -> None:
    """``window``: which of the event's windows the issue falls in (events.windows): ``participation`` for claims
    from the pool, ``registration`` for a code the member brings (distributed or partner code), ``grant`` for
    operator grants and draw prizes, which are not claims."""
    if not inventory.is_active:
        raise NotEligible(_("This coupon is no longer being issued."), details={"reason": "inventory_inactive"})
    event = inventory.event
    if window == windows.PARTICIPATION:
        windows.check_participation(event, now, EventClosed.default_message)
    elif window == windows.REGISTRATION:
        windows.check_registration(event, now)
    else:
        windows.check_grantable(event, EventClosed.default_message)
    policy = inventory.policy
    if policy.valid_until is not None and policy.valid_until <= now:
        raise NotEligible(_("The validity period of this coupon has ended."), details={"reason": "validity_ended"})
    if policy.audience == CouponPolicy.Audience.WHITELIST and not AudienceEntry.objects.filter(
            inventory=inventory, member_id=member_id).exists():
        raise NotEligible(_("This coupon is only for selected members."), details={"reason": "audience"})


def _next_slot(inventory: CouponInventory, member_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM coupons_couponissue WHERE inventory_id = %s AND member_id = %s",
                       [inventory.pk, member_id])
        held = cursor.fetchone()[0]
    if held >= inventory.per_member_limit:
        if inventory.per_member_limit == 1:
            raise AlreadyClaimed()
        raise LimitReached(details={"limit": inventory.per_member_limit})
    return held + 1


def _limit_error(inventory: CouponInventory) -> DomainError:
    return AlreadyClaimed() if inventory.per_member_limit == 1 else LimitReached(
        details={"limit": inventory.per_member_limit})


# One round trip takes the next free code of the pool and writes everything the issue owes, so a claim is: lock,
# BEGIN, slot count, this, COMMIT. Rows: the code (SKIP LOCKED: concurrent claims never queue on one row), its
# CouponIssue (UNIQUE(inventory, member, slot) is the last guard on the per-member limit; UNIQUE(coupon) on the code
# having one owner), the member's counter shard and the audit row (the same columns core.audit.audit_record fills).
_TAKE_NEXT = """
WITH taken AS (
    UPDATE coupons_couponcode
       SET status = 'ISSUED', member_id = %(member)s, issued_at = %(now)s, valid_from = %(valid_from)s,
           valid_until = %(valid_until)s
     WHERE id = (SELECT id FROM coupons_couponcode
                  WHERE inventory_id = %(inventory)s AND status = 'AVAILABLE'
                  ORDER BY id LIMIT 1
                  FOR UPDATE SKIP LOCKED)
    RETURNING id, code, batch_id, tenant_id, inventory_id
), issue AS (
    INSERT INTO coupons_couponissue (tenant_id, inventory_id, coupon_id, member_id, slot, via, client_id,
                                     operator_id, grant_id, channel, ip, device_id, issued_at)
    SELECT tenant_id, inventory_id, id, %(member)s, %(slot)s, %(via)s, %(client)s, %(operator)s, %(grant)s,
           %(channel)s, %(ip)s, %(device)s, %(now)s FROM taken
    RETURNING id
), counter AS (
    INSERT INTO coupons_inventorycounter (inventory_id, shard, issued, used, used_discount)
    SELECT inventory_id, %(shard)s, 1, 0, 0 FROM taken
    ON CONFLICT (inventory_id, shard) DO UPDATE SET issued = coupons_inventorycounter.issued + 1
    RETURNING id
), audit AS (
    INSERT INTO core_auditlog (tenant_id, actor_type, actor_id, actor_label, action, object_type, object_id,
                               object_repr, before, after, created_at)
    SELECT tenant_id, %(actor_type)s, %(actor_id)s, %(actor_label)s, 'coupon.issue', 'coupons.CouponCode',
           id::text, code, NULL,
           jsonb_build_object('member_id', %(member)s::text, 'via', %(via)s::text, 'inventory',
                              %(inventory_public)s::text, 'valid_until', to_jsonb(%(valid_until)s::timestamptz)),
           %(now)s
      FROM taken
    RETURNING id
)
SELECT taken.id, taken.code, taken.batch_id, (SELECT count(*) FROM issue), (SELECT count(*) FROM counter),
       (SELECT count(*) FROM audit)
  FROM taken
"""


def _record_issue(*, inventory: CouponInventory, coupon_id: int, member_id: str, slot: int, via: str,
                  ctx: RequestContext, now: datetime, grant: CouponGrant | None = None) -> CouponCode:
    CouponIssue.objects.create(tenant_id=inventory.tenant_id, inventory=inventory, coupon_id=coupon_id,
                               member_id=member_id, slot=slot, via=via, client=ctx.client, operator=ctx.operator,
                               grant=grant, channel=ctx.channel, ip=ctx.ip, device_id=ctx.device_id, issued_at=now)
    counter_add(inventory_id=inventory.pk, member_id=member_id, issued=1)
    transaction.on_commit(lambda: record_issue(inventory.tenant_id, via))  # /metrics (R-OPS)
    coupon = CouponCode.objects.select_related("inventory__policy", "batch").get(pk=coupon_id)
    audit_record(tenant=inventory.tenant, actor=ctx.actor, action="coupon.issue", obj=coupon,
                 after={"member_id": member_id, "via": via, "inventory": inventory.public_id,
                        "valid_until": coupon.valid_until.isoformat() if coupon.valid_until else None})
    return coupon


_batches: dict[int, CouponBatch] = {}


def _zone_of(inventory: CouponInventory) -> str | None:
    """The tenant's time zone, read only for a validity that ends on a calendar day (the claim path stays lean)."""
    if inventory.policy.validity_type not in CALENDAR_TYPES:
        return None
    return Tenant.objects.filter(pk=inventory.tenant_id).values_list("time_zone", flat=True).first()


def _batch(batch_id: int) -> CouponBatch:
    """Batches never change their code; keep them per process for the claim answer."""
    batch = _batches.get(batch_id)
    if batch is None:
        batch = _batches[batch_id] = CouponBatch.objects.get(pk=batch_id)
    return batch


def issue_from_pool(*, inventory: CouponInventory, member_id: str, via: str, ctx: RequestContext,
                    grant: CouponGrant | None = None,
                    on_issued: Callable[[CouponCode], None] | None = None) -> CouponCode:
    """Give the member the next AVAILABLE code of the inventory."""
    now = timezone.now()
    _check_claimable(inventory, member_id, now,
                     windows.GRANT if via == CouponIssue.Via.GRANT else windows.PARTICIPATION)
    valid_from, valid_until = validity_at_issue(inventory.policy, now, _zone_of(inventory))
    lock_key = f"{inventory.tenant_id}:{inventory.pk}:{member_id}"
    actor = ctx.actor
    guard = RiskGuard(action="claim", member_id=member_id, ctx=ctx, count_limits=via != CouponIssue.Via.GRANT)
    try:
        with guard, member_lock(lock_key), transaction.atomic():
            advisory_lock(lock_key)
            guard.check(inventory, now)  # R-RISK-1/2: block list, daily frequency limits
            slot = _next_slot(inventory, member_id)
            with connection.cursor() as cursor:
                cursor.execute(_TAKE_NEXT, {
                    "member": member_id, "now": now, "valid_from": valid_from, "valid_until": valid_until,
                    "inventory": inventory.pk, "slot": slot, "via": via,
                    "client": ctx.client.pk if ctx.client else None,
                    "operator": ctx.operator.pk if ctx.operator else None, "grant": grant.pk if grant else None,
                    "channel": ctx.channel, "ip": ctx.ip, "device": ctx.device_id, "shard": shard_of(member_id),
                    "actor_type": actor.type, "actor_id": actor.id, "actor_label": actor.label[:200],
                    "inventory_public": inventory.public_id})
                row = cursor.fetchone()
            if row is None:
                raise SoldOut()
            budget_consume(inventory=inventory, kind="issue", now=now)  # R-RISK-3, last: holds the budget row
            coupon = CouponCode(id=row[0], code=row[1], batch_id=row[2], tenant_id=inventory.tenant_id,
                                inventory=inventory, status=CouponCode.Status.ISSUED, member_id=member_id,
                                issued_at=now, valid_from=valid_from, valid_until=valid_until)
            coupon.batch = _batch(row[2])
            transaction.on_commit(lambda: record_issue(inventory.tenant_id, via))  # /metrics (R-OPS)
            webhook_events.coupon_issued(coupon=coupon, inventory=inventory, via=via, now=now)  # #16
            if on_issued is not None:
                on_issued(coupon)
    except IntegrityError as exc:
        # The member's slot was taken concurrently: the database refused the second issue.
        if "issue_unique_member_slot" in str(exc):
            raise _limit_error(inventory) from exc
        raise
    return coupon


def issue_this_code(*, coupon: CouponCode, from_status: str, member_id: str, via: str, ctx: RequestContext,
                    taken_message: str) -> CouponCode:
    """Issue one given code (registered by the member, in the event's registration window) to them: ``from_status``
    → ISSUED, under the member's lock,
    with the same slot guard as a pool claim. A code already handed out is ``already_claimed``; one in any other
    state answers like an unknown code."""
    if coupon.status != from_status:
        if coupon.status in (CouponCode.Status.ISSUED, CouponCode.Status.LOCKED, CouponCode.Status.USED):
            raise AlreadyClaimed(taken_message)
        raise CouponNotFound()  # not registrable here (another flow's, expired, revoked): say nothing more
    inventory = coupon.inventory
    now = timezone.now()
    _check_claimable(inventory, member_id, now, windows.REGISTRATION)
    valid_from, valid_until = validity_at_issue(inventory.policy, now, _zone_of(inventory))
    lock_key = f"{inventory.tenant_id}:{inventory.pk}:{member_id}"
    guard = RiskGuard(action="claim", member_id=member_id, ctx=ctx)
    try:
        with guard, member_lock(lock_key), transaction.atomic():
            advisory_lock(lock_key)
            guard.check(inventory, now)  # R-RISK-1/2
            slot = _next_slot(inventory, member_id)
            taken = CouponCode.objects.filter(pk=coupon.pk, status=from_status).update(
                status=CouponCode.Status.ISSUED, member_id=member_id, issued_at=now, valid_from=valid_from,
                valid_until=valid_until)
            if not taken:
                raise AlreadyClaimed(taken_message)
            issued = _record_issue(inventory=inventory, coupon_id=coupon.pk, member_id=member_id, slot=slot, via=via,
                                   ctx=ctx, now=now)
            budget_consume(inventory=inventory, kind="issue", now=now)  # R-RISK-3
            webhook_events.coupon_issued(coupon=issued, inventory=inventory, via=via, now=now)  # #16
            return issued
    except IntegrityError as exc:
        if "issue_unique_member_slot" in str(exc):
            raise _limit_error(inventory) from exc
        raise


def issue_specific_code(*, tenant: Tenant, raw_code: str, member_id: str, ctx: RequestContext) -> CouponCode:
    """Flow 1: a member registers a unique code received offline (printed, handed out by a partner)."""
    from coupons.bloom_check import might_exist

    code = normalise_code(raw_code)
    if not code or not might_exist(code, tenant.pk):
        raise CouponNotFound()
    coupon = CouponCode.objects.select_related("inventory__policy", "inventory__event", "inventory__tenant").filter(
        tenant=tenant, code=code).first()
    if coupon is None:
        raise CouponNotFound()
    # MAPPED codes belong to partner codes (flow 2) and are claimed only through them. A DISTRIBUTED code was handed
    # to a partner for exactly this (flow 1); an AVAILABLE one is a code printed by us.
    registrable = (CouponCode.Status.AVAILABLE, CouponCode.Status.DISTRIBUTED)
    return issue_this_code(coupon=coupon, from_status=coupon.status if coupon.status in registrable
                           else CouponCode.Status.AVAILABLE, member_id=member_id,
                           via=CouponIssue.Via.CODE, ctx=ctx, taken_message="This code has already been registered.")


def coupon_claim(*, tenant: Tenant, member_id: str, ctx: RequestContext, inventory: str | None = None,
                 promo_code: str | None = None, code: str | None = None,
                 partner_code: str | None = None) -> CouponCode:
    """POST /claims: exactly one of inventory / promo_code / code / partner_code (API.md)."""
    given = [name for name, value in (("inventory", inventory), ("promo_code", promo_code), ("code", code),
                                      ("partner_code", partner_code)) if value]
    if len(given) != 1:
        raise InvalidInput(_("Give exactly one of inventory, promo_code, code or partner_code."),
                           details={"given": given})
    if inventory:
        inv = _inventory_by(tenant, public_id=inventory)
        return issue_from_pool(inventory=inv, member_id=member_id, via=CouponIssue.Via.INVENTORY, ctx=ctx)
    if promo_code:
        inv = _inventory_by(tenant, promo_code=promo_code)
        return issue_from_pool(inventory=inv, member_id=member_id, via=CouponIssue.Via.PROMO_CODE, ctx=ctx)
    if code:
        return issue_specific_code(tenant=tenant, raw_code=code, member_id=member_id, ctx=ctx)
    from coupons.partner_claims import claim_partner_code

    return claim_partner_code(tenant=tenant, partner_code=partner_code or "", member_id=member_id, ctx=ctx)


# --- grants ----------------------------------------------------------------------------------------------------

@dataclass
class GrantResult:
    grant: CouponGrant
    issued: list[CouponCode]
    failed: list[dict[str, str]]


def _unique_members(member_ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for raw in member_ids:
        member = raw.strip()
        if not member or len(member) > 64:
            raise InvalidInput(_("Member ids must be 1 to 64 characters; got %(value)r.") % {"value": raw})
        seen.setdefault(member, None)
    return list(seen)


def grant_create(*, tenant: Tenant, inventory_public_id: str, member_ids: list[str], ctx: RequestContext,
                 force_async: bool = False) -> GrantResult:
    """Grant an inventory to members, each at most once. Up to 1,000 at once; above that (or forced) as a job.

    To at least the tenant's ``grant_approval_threshold`` members (issue #20) nothing is issued: the grant and its
    member list are recorded ``AWAITING_APPROVAL`` and an approver other than the requester queues it
    (``grant_approve``) or rejects it (``grant_reject``)."""
    members = _unique_members(member_ids)
    if not members:
        raise InvalidInput(_("Give at least one member id."))
    inventory = _inventory_by(tenant, public_id=inventory_public_id)
    awaiting = needs_approval(tenant.grant_approval_threshold, len(members))
    run_as_job = len(members) > SYNC_GRANT_LIMIT or force_async
    with transaction.atomic():  # the grant, its member list and the job's start commit together
        grant = CouponGrant.objects.create(
            tenant=tenant, inventory=inventory, client=ctx.client, operator=ctx.operator, total=len(members),
            status=CouponGrant.Status.AWAITING_APPROVAL if awaiting else CouponGrant.Status.PENDING)
        if awaiting:
            audit_record(tenant=tenant, actor=ctx.actor, action="grant.request", obj=grant,
                         after={"inventory": inventory.public_id, "members": len(members), "status": grant.status,
                                "threshold": tenant.grant_approval_threshold})
        else:
            audit_record(tenant=tenant, actor=ctx.actor, action="grant.create", obj=grant,
                         after={"inventory": inventory.public_id, "members": len(members), "job": run_as_job})
        if run_as_job or awaiting:
            for start in range(0, len(members), 5000):
                CouponGrantMember.objects.bulk_create(
                    [CouponGrantMember(grant=grant, member_id=m) for m in members[start:start + 5000]])
        if awaiting:
            return GrantResult(grant=grant, issued=[], failed=[])
        if run_as_job:
            _queue_grant(grant)
    if run_as_job:
        return GrantResult(grant=grant, issued=[], failed=[])
    issued, failed = [], []
    CouponGrant.objects.filter(pk=grant.pk).update(status=CouponGrant.Status.RUNNING)
    for member in members:
        try:
            issued.append(issue_from_pool(inventory=inventory, member_id=member, via=CouponIssue.Via.GRANT, ctx=ctx,
                                          grant=grant))
        except DomainError as exc:
            failed.append({"member_id": member, "code": exc.code})
    CouponGrant.objects.filter(pk=grant.pk).update(status=CouponGrant.Status.COMPLETED, processed=len(members),
                                                   issued=len(issued), failed=len(failed),
                                                   finished_at=timezone.now())
    grant.refresh_from_db()
    return GrantResult(grant=grant, issued=issued, failed=failed)


def _queue_grant(grant: CouponGrant) -> None:
    from core.jobs import enqueue
    from coupons.grant_jobs import run_grant

    transaction.on_commit(lambda: enqueue("grants", run_grant, grant.pk, tenant_id=grant.tenant_id))


GRANT_APPROVE_PERMISSION = "coupons.approve_coupongrant"


def _grant_decide(*, grant: CouponGrant, user: Any, to: str, **changes: Any) -> None:
    """Compare-and-set AWAITING_APPROVAL → ``to``: of two concurrent decisions one wins, the other (blocked on the row
    until the first commits) finds the grant decided → ``already_decided``."""
    check_decider(user=user, permission=GRANT_APPROVE_PERMISSION, requested_by_id=grant.operator_id)
    changed = CouponGrant.objects.filter(pk=grant.pk, tenant_id=grant.tenant_id,
                                         status=CouponGrant.Status.AWAITING_APPROVAL).update(
        status=to, decided_by=user, decided_at=timezone.now(), **changes)
    if not changed:
        raise AlreadyDecided()


def grant_approve(*, grant: CouponGrant, user: Any) -> CouponGrant:
    """An approver (not the requester) lets a waiting grant run: PENDING, audited, and its job queued once the
    decision commits; the job issues the coupons as for any large grant (resumable, each member once)."""
    with transaction.atomic():
        _grant_decide(grant=grant, user=user, to=CouponGrant.Status.PENDING)
        audit_record(tenant=grant.tenant, actor=Actor.user(user), action="grant.approve", obj=grant,
                     before={"status": CouponGrant.Status.AWAITING_APPROVAL},
                     after={"status": CouponGrant.Status.PENDING, "public_id": grant.public_id,
                            "members": grant.total})
        _queue_grant(grant)
    grant.refresh_from_db()
    return grant


def grant_reject(*, grant: CouponGrant, user: Any, reason: Any) -> CouponGrant:
    """An approver (not the requester) refuses a waiting grant with a reason: nothing is issued."""
    text = reason_of(reason)
    with transaction.atomic():
        _grant_decide(grant=grant, user=user, to=CouponGrant.Status.REJECTED, rejection_reason=text,
                      finished_at=timezone.now())
        audit_record(tenant=grant.tenant, actor=Actor.user(user), action="grant.reject", obj=grant,
                     before={"status": CouponGrant.Status.AWAITING_APPROVAL},
                     after={"status": CouponGrant.Status.REJECTED, "public_id": grant.public_id, "reason": text})
    grant.refresh_from_db()
    return grant


def grants_waiting(tenant_id: int | None) -> Any:
    qs = CouponGrant.objects.filter(status=CouponGrant.Status.AWAITING_APPROVAL)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return qs.order_by("created_at", "id")


def grant_process(*, grant_id: int) -> CouponGrant:
    """Work through a grant's PENDING members in chunks. Each member's issue and its grant row commit together, so a
    killed job resumes where it stopped and never issues a member twice."""
    claimed = CouponGrant.objects.filter(pk=grant_id, status__in=[CouponGrant.Status.PENDING,
                                                                  CouponGrant.Status.RUNNING])
    if not claimed.update(status=CouponGrant.Status.RUNNING):
        return CouponGrant.objects.get(pk=grant_id)
    grant = CouponGrant.objects.select_related("inventory__policy", "inventory__event", "inventory__tenant",
                                               "client", "operator").get(pk=grant_id)
    ctx = RequestContext(client=grant.client, operator=grant.operator)
    while True:
        batch = list(CouponGrantMember.objects.filter(grant=grant, status=CouponGrantMember.Status.PENDING)
                     .order_by("id")[:GRANT_CHUNK])
        if not batch:
            break
        issued = failed = 0
        for row in batch:
            def mark(coupon: CouponCode, row: CouponGrantMember = row) -> None:
                CouponGrantMember.objects.filter(pk=row.pk, status=CouponGrantMember.Status.PENDING).update(
                    status=CouponGrantMember.Status.ISSUED, coupon=coupon)
            try:
                issue_from_pool(inventory=grant.inventory, member_id=row.member_id, via=CouponIssue.Via.GRANT,
                                ctx=ctx, grant=grant, on_issued=mark)
                issued += 1
            except DomainError as exc:
                if exc.transient:  # Redis not answering: the job fails as transient and resumes with this member
                    raise
                CouponGrantMember.objects.filter(pk=row.pk, status=CouponGrantMember.Status.PENDING).update(
                    status=CouponGrantMember.Status.FAILED, error_code=exc.code)
                failed += 1
        CouponGrant.objects.filter(pk=grant.pk).update(processed=F("processed") + issued + failed,
                                                       issued=F("issued") + issued, failed=F("failed") + failed)
    CouponGrant.objects.filter(pk=grant.pk).update(status=CouponGrant.Status.COMPLETED, finished_at=timezone.now())
    grant.refresh_from_db()
    return grant
