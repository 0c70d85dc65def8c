"""Issuing: AVAILABLE → ISSUED (R-ISS). Claims by inventory id, promo code, unique code or partner code.

A claim takes the next free code of the pool with ``FOR UPDATE SKIP LOCKED`` (no hot row), under a per-member lock
(``core.locks``); in one transaction it updates the code, writes the ``CouponIssue`` row (whose
UNIQUE(inventory, member, slot) is the last guard against exceeding the per-member limit), adds to the inventory's
counter shard and writes the audit row.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import partitioning
from core.audit import Actor, actor_params, audit_insert_sql
from core.tenancy import joined_in_tenant
from core.config_cache import ConfigCache
from core.exceptions import DomainError, InvalidInput
from core.locks import advisory_lock, member_lock
from core.metrics import record_issue
from core.models import ApiClient, Tenant
from coupons.services.counters import shard_of, upsert_from
from coupons.codes import normalise_code
from coupons.pool import POOL_CONDITION, POOL_ORDER
from coupons.exceptions import (AlreadyClaimed, CouponNotFound, EventClosed, InventoryNotFound, LimitReached,
                                NotEligible, SoldOut)
from coupons.models import (AudienceEntry, CouponBatch, CouponCode, CouponGrant, CouponInventory,
                            CouponIssue, CouponPolicy)
from coupons.services import webhook_events
from coupons.validity import CALENDAR_TYPES, validity_at_issue
from events import windows
from risk.budgets import consume as budget_consume
from risk.guard import MEMBER_LEVEL_SQL, RiskGuard
from risk.webhooks import endpoints_taking_sql
from coupons import bloom_check

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


_inventories: ConfigCache[tuple[int, str, str], CouponInventory] = ConfigCache()


def _inventory_by(tenant: Tenant, *, public_id: str | None = None, promo_code: str | None = None) -> CouponInventory:
    """The inventory with its policy and event, kept per process for COUPON_CONFIG_CACHE_SECONDS: the claim path
    reads it on every request and the four-table join costs more to plan than to run."""
    key = (tenant.pk, "id", public_id.strip().upper()) if public_id is not None else (
        tenant.pk, "promo", normalise_code(promo_code or ""))
    cached = _inventories.get(key)
    if cached is not None:
        return cached
    qs = CouponInventory.objects.select_related("policy", "event", "tenant").filter(
        tenant=tenant, **joined_in_tenant(tenant, "policy", "event"))
    inventory = qs.filter(public_id=key[2]).first() if key[1] == "id" else qs.filter(promo_code=key[2]).first()
    if inventory is None:
        raise InventoryNotFound()
    _inventories.put(key, inventory)
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


# The member's slot count and risk level in one round trip, inside the claim's transaction under the member's lock.
_MEMBER_STATE = ("SELECT (SELECT count(*) FROM coupons_couponissue WHERE tenant_id = %(tenant)s "
                 "AND inventory_id = %(inventory)s "
                 "AND member_id = %(member)s), " + MEMBER_LEVEL_SQL)


def _next_slot(inventory: CouponInventory, member_id: str, guard: RiskGuard, now: datetime) -> int:
    """The member's next slot (1-based) of the inventory, after the risk guard's check (R-RISK-1/2) on the level read
    in the same statement; the per-member limit refused here (R-ISS-3), the unique slot being the last guard."""
    with connection.cursor() as cursor:
        cursor.execute(partitioning.for_tenant(_MEMBER_STATE, inventory.tenant_id),
                       {"inventory": inventory.pk, "member": member_id, "tenant": inventory.tenant_id, "now": now})
        held, level = cursor.fetchone()
    guard.check(inventory, now, level=level)
    if held >= inventory.per_member_limit:
        if inventory.per_member_limit == 1:
            raise AlreadyClaimed()
        raise LimitReached(details={"limit": inventory.per_member_limit})
    return int(held) + 1


def _limit_error(inventory: CouponInventory) -> DomainError:
    return AlreadyClaimed() if inventory.per_member_limit == 1 else LimitReached(
        details={"limit": inventory.per_member_limit})


# One round trip takes the next free code of the pool and writes everything the issue owes, so a claim is: lock,
# BEGIN, slot count, this, COMMIT. Rows: the code (SKIP LOCKED: concurrent claims never queue on one row), its
# CouponIssue (UNIQUE(inventory, member, slot) is the last guard on the per-member limit; UNIQUE(coupon) on the code
# having one owner), the member's counter shard and the audit row (the same columns core.audit.audit_record fills).
# A given code (registered by the member) is the same statement with the code's id and the state it must still be in.
_ISSUE_WRITES = """
WITH taken AS (
    UPDATE coupons_couponcode
       SET status = 'ISSUED', member_id = %(member)s, issued_at = %(now)s, valid_from = %(valid_from)s,
           valid_until = %(valid_until)s
     WHERE tenant_id = %(tenant)s AND {which}
    RETURNING id, code, batch_id, tenant_id, inventory_id
), issue AS (
    INSERT INTO coupons_couponissue (tenant_id, inventory_id, coupon_id, member_id, slot, via, client_id,
                                     operator_id, grant_id, channel, ip, device_id, issued_at)
    SELECT tenant_id, inventory_id, id, %(member)s, %(slot)s, %(via)s, %(client)s, %(operator)s, %(grant)s,
           %(channel)s, %(ip)s, %(device)s, %(now)s FROM taken
    RETURNING id
), counter AS (
    """ + upsert_from("taken", shard="%(shard)s", issued="1") + """
    RETURNING id
), audit AS (
    """ + audit_insert_sql(
    action="coupon.issue", object_type="coupons.CouponCode", tenant="tenant_id", object_id="id::text",
    object_repr="code", before="NULL",
    after="""jsonb_build_object('member_id', %(member)s::text, 'via', %(via)s::text, 'inventory',
                              %(inventory_public)s::text, 'valid_until', to_jsonb(%(valid_until)s::timestamptz))""",
    created_at="%(now)s", source="taken") + """
    RETURNING id
)
SELECT taken.id, taken.code, taken.batch_id, (SELECT count(*) FROM issue), (SELECT count(*) FROM counter),
       (SELECT count(*) FROM audit), """ + endpoints_taking_sql(tenant="%(tenant)s", event="coupon.issued") + """
  FROM taken
"""
_TAKE_NEXT = _ISSUE_WRITES.replace("{which}", f"""id = (SELECT id FROM coupons_couponcode
                  WHERE {POOL_CONDITION} {POOL_ORDER} LIMIT 1
                  FOR UPDATE SKIP LOCKED)""")
_TAKE_THIS = _ISSUE_WRITES.replace("{which}", "id = %(coupon)s AND status = %(from_status)s")


def _issue_params(*, inventory: CouponInventory, member_id: str, slot: int, via: str, ctx: RequestContext,
                  now: datetime, valid_from: datetime | None, valid_until: datetime | None,
                  grant: CouponGrant | None = None, **extra: Any) -> dict[str, Any]:
    return {"member": member_id, "now": now, "valid_from": valid_from, "valid_until": valid_until,
            "tenant": inventory.tenant_id, "inventory": inventory.pk, "slot": slot, "via": via, "client": ctx.client.pk if ctx.client else None,
            "operator": ctx.operator.pk if ctx.operator else None, "grant": grant.pk if grant else None,
            "channel": ctx.channel, "ip": ctx.ip, "device": ctx.device_id, "shard": shard_of(member_id),
            "inventory_public": inventory.public_id, **actor_params(ctx.actor), **extra}


_batches: dict[int, CouponBatch] = {}


def _zone_of(inventory: CouponInventory) -> str | None:
    """The tenant's time zone, read only for a validity that ends on a calendar day (the claim path stays lean)."""
    if inventory.policy.validity_type not in CALENDAR_TYPES:
        return None
    return Tenant.objects.filter(pk=inventory.tenant_id).values_list("time_zone", flat=True).first()


def _batch(tenant_id: int, batch_id: int) -> CouponBatch:
    """Batches never change their code; keep them per process for the claim answer."""
    batch = _batches.get(batch_id)
    if batch is None:
        batch = _batches[batch_id] = CouponBatch.objects.get(tenant_id=tenant_id, pk=batch_id)
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
    guard = RiskGuard(action="claim", member_id=member_id, ctx=ctx, count_limits=via != CouponIssue.Via.GRANT)
    try:
        with guard, member_lock(lock_key), transaction.atomic():
            advisory_lock(lock_key)
            slot = _next_slot(inventory, member_id, guard, now)  # and R-RISK-1/2: block list, daily frequency limits
            with connection.cursor() as cursor:
                cursor.execute(partitioning.for_tenant(_TAKE_NEXT, inventory.tenant_id),
                               _issue_params(inventory=inventory, member_id=member_id, slot=slot, via=via, ctx=ctx,
                                             now=now, valid_from=valid_from, valid_until=valid_until, grant=grant))
                row = cursor.fetchone()
            if row is None:
                raise SoldOut()
            budget_consume(inventory=inventory, kind="issue", now=now)  # R-RISK-3, last: holds the budget row
            coupon = CouponCode(id=row[0], code=row[1], batch_id=row[2], tenant_id=inventory.tenant_id,
                                inventory=inventory, status=CouponCode.Status.ISSUED, member_id=member_id,
                                issued_at=now, valid_from=valid_from, valid_until=valid_until)
            coupon.batch = _batch(inventory.tenant_id, row[2])
            transaction.on_commit(lambda: record_issue(inventory.tenant_id, via))  # /metrics (R-OPS)
            webhook_events.coupon_issued(coupon=coupon, inventory=inventory, via=via, now=now,
                                         endpoint_ids=row[6])  # #16
            if on_issued is not None:
                on_issued(coupon)
    except IntegrityError as exc:
        # The member's slot was taken concurrently: the database refused the second issue.
        if partitioning.violated_constraint(exc) == "issue_unique_member_slot":
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
            slot = _next_slot(inventory, member_id, guard, now)  # and R-RISK-1/2
            with connection.cursor() as cursor:
                cursor.execute(partitioning.for_tenant(_TAKE_THIS, inventory.tenant_id),
                               _issue_params(inventory=inventory, member_id=member_id, slot=slot, via=via, ctx=ctx,
                                             now=now, valid_from=valid_from, valid_until=valid_until,
                                             coupon=coupon.pk, from_status=from_status))
                taken = cursor.fetchone()
            if taken is None:  # registered by someone else meanwhile
                raise AlreadyClaimed(taken_message)
            budget_consume(inventory=inventory, kind="issue", now=now)  # R-RISK-3
            coupon.status, coupon.member_id, coupon.issued_at = CouponCode.Status.ISSUED, member_id, now
            coupon.valid_from, coupon.valid_until = valid_from, valid_until
            coupon.batch = _batch(coupon.tenant_id, coupon.batch_id)
            transaction.on_commit(lambda: record_issue(inventory.tenant_id, via))  # /metrics (R-OPS)
            webhook_events.coupon_issued(coupon=coupon, inventory=inventory, via=via, now=now,
                                         endpoint_ids=taken[6])  # #16
            return coupon
    except IntegrityError as exc:
        if partitioning.violated_constraint(exc) == "issue_unique_member_slot":
            raise _limit_error(inventory) from exc
        raise


def issue_specific_code(*, tenant: Tenant, raw_code: str, member_id: str, ctx: RequestContext) -> CouponCode:
    """Flow 1: a member registers a unique code received offline (printed, handed out by a partner)."""
    code = normalise_code(raw_code)
    if not code or not bloom_check.might_exist(code, tenant.pk):
        raise CouponNotFound()
    coupon = CouponCode.objects.select_related("inventory__policy", "inventory__event", "inventory__tenant").filter(
        tenant=tenant, code=code,
        **joined_in_tenant(tenant, "inventory", "inventory__policy", "inventory__event")).first()
    if coupon is None:
        raise CouponNotFound()
    # MAPPED codes belong to partner codes (flow 2) and are claimed only through them. A DISTRIBUTED code was handed
    # to a partner for exactly this (flow 1); an AVAILABLE one is a code printed by us.
    registrable = (CouponCode.Status.AVAILABLE, CouponCode.Status.DISTRIBUTED)
    return issue_this_code(coupon=coupon, from_status=coupon.status if coupon.status in registrable
                           else CouponCode.Status.AVAILABLE, member_id=member_id,
                           via=CouponIssue.Via.CODE, ctx=ctx, taken_message="This code has already been registered.")


# A claim by a partner's code (flow 2) is carried out by the partners app, a layer above: it registers its handler
# when the apps load (``PartnersConfig.ready``), so coupons never imports partners.
_partner_code_claim: Callable[..., CouponCode] | None = None


def register_partner_code_claim(handler: Callable[..., CouponCode]) -> None:
    global _partner_code_claim
    _partner_code_claim = handler


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
    if _partner_code_claim is None:
        raise ImproperlyConfigured("partner codes need the partners app (INSTALLED_APPS)")
    return _partner_code_claim(tenant=tenant, partner_code=partner_code or "", member_id=member_id, ctx=ctx)
