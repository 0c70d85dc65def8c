"""Rewards state changes (R-REW-1…3): rule saves, trigger grants, points spend and expiry, birthdays.

Lock order, everywhere: the grant's unique key (by inserting it), then the member's ``MemberPoints`` row
(``select_for_update``), then that member's credit rows. Every change writes its audit row in its transaction.
"""
from __future__ import annotations

import calendar
import csv
import io
import logging
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.audit import Actor, audit_record
from core.exceptions import DomainError, InvalidInput, MemberBusy
from core.locks import session_lock
from core.models import ApiClient, Tenant
from core.tenancy import joined_in_tenant
from coupons.exceptions import InventoryNotFound
from coupons.services.issue import RequestContext, issue_from_pool
from coupons.models import CouponCode, CouponInventory, CouponIssue
from rewards.exceptions import (InsufficientPoints, NoActiveRule, NoPointsSpent, NotExchangeable, PointsAlreadySpent,
                                PointsExceedPayable)
from rewards.models import (BASIS_POINTS, ExchangeOffer, MemberBirthday, MemberPoints, PointsAllocation, PointsEntry,
                            RewardGrant, RewardRule, Trigger)
from rewards.selectors import points_balance

logger = logging.getLogger("rewards")

EXPIRY_LOCK = 7_302_001  # pg advisory lock id: one points-expiry run at a time, across machines
BIRTHDAY_LOCK = 7_302_002
MAX_POINTS_BASIS = 10**12  # payment amounts above this are refused (API money limit)


# --- rules --------------------------------------------------------------------------------------------------------

def rule_errors(rule: RewardRule) -> dict[str, str]:
    """What is wrong with a rule, by field ('__all__' for the rule as a whole). Empty when it can be saved."""
    errors: dict[str, str] = {}
    trigger = rule.trigger
    if trigger not in Trigger.values:
        errors["trigger"] = f"Choose one of {', '.join(Trigger.values)}."
        return errors
    if rule.purchase_rate_bp > BASIS_POINTS:
        errors["purchase_rate_bp"] = "At most 10000 basis points (100 %)."
    if rule.inventory is not None and rule.tenant_id is not None and rule.inventory.tenant_id != rule.tenant_id:
        errors["inventory"] = "The inventory belongs to another tenant."
    points = {
        Trigger.SIGNUP: rule.points, Trigger.BIRTHDAY: rule.points,
        Trigger.REVIEW: rule.review_text_points + rule.review_image_points,
        Trigger.PURCHASE_CONFIRMED: rule.purchase_rate_bp,
    }[Trigger(trigger)]
    if not points and rule.inventory_id is None:
        errors["__all__"] = "A rule must grant points or a coupon: set the amounts for its trigger or an inventory."
    unused = {
        Trigger.SIGNUP: ["review_text_points", "review_image_points", "purchase_rate_bp"],
        Trigger.BIRTHDAY: ["review_text_points", "review_image_points", "purchase_rate_bp"],
        Trigger.REVIEW: ["points", "purchase_rate_bp"],
        Trigger.PURCHASE_CONFIRMED: ["points", "review_text_points", "review_image_points"],
    }[Trigger(trigger)]
    for name in unused:
        if getattr(rule, name):
            errors[name] = f"Not used by a {trigger} rule; leave it 0."
    if rule.is_active and rule.tenant_id is not None and RewardRule.objects.filter(
            tenant_id=rule.tenant_id, trigger=trigger, is_active=True).exclude(pk=rule.pk).exists():
        errors["is_active"] = f"Another active rule exists for {trigger}; deactivate it first."
    return errors


def _rule_values(rule: RewardRule) -> dict[str, Any]:
    return {"rule_id": rule.pk, "name": rule.name, "trigger": rule.trigger,
            "inventory": rule.inventory.public_id if rule.inventory is not None else None, "points": rule.points,
            "review_text_points": rule.review_text_points, "review_image_points": rule.review_image_points,
            "purchase_rate_bp": rule.purchase_rate_bp, "points_valid_days": rule.points_valid_days,
            "is_active": rule.is_active}


def reward_rule_save(*, rule: RewardRule, actor: Actor) -> RewardRule:
    """Create or change a rule. Past grants keep the amounts they copied (``RewardGrant.rule_snapshot``)."""
    errors = rule_errors(rule)
    if errors:
        raise InvalidInput(" ".join(errors.values()), details=errors)
    before = None
    if rule.pk is not None:
        old = RewardRule.objects.select_related("inventory").filter(pk=rule.pk).first()
        before = _rule_values(old) if old is not None else None
    try:
        with transaction.atomic():
            rule.save()
            audit_record(tenant=rule.tenant, actor=actor, action="reward_rule.save", obj=rule, before=before,
                         after=_rule_values(rule))
    except IntegrityError as exc:
        if "rewardrule_one_active_per_trigger" in str(exc):
            raise InvalidInput(_("Another active rule exists for %(trigger)s; deactivate it first.")
                               % {"trigger": rule.trigger},
                               details={"is_active": "duplicate"}) from exc
        raise
    return rule


def points_for(*, rule: RewardRule, amount: int | None, has_image: bool, rounding_unit: int) -> int:
    """The points a trigger earns under a rule (seed 003). Purchase: amount × rate, rounded DOWN to the tenant's
    unit (1001 → 1000 for a unit of 10) — integer arithmetic only."""
    trigger = Trigger(rule.trigger)
    if trigger is Trigger.REVIEW:
        return rule.review_image_points if has_image else rule.review_text_points
    if trigger is Trigger.PURCHASE_CONFIRMED:
        raw = (amount or 0) * rule.purchase_rate_bp // BASIS_POINTS
        return raw // rounding_unit * rounding_unit
    return rule.points


# --- trigger → grant -----------------------------------------------------------------------------------------------

def _validate_trigger(*, member_id: str, trigger: str, reference: str, amount: int | None,
                      has_image: bool) -> None:
    if trigger not in Trigger.values:
        raise InvalidInput(_("Unknown trigger %(trigger)r; use one of %(choices)s.")
                           % {"trigger": trigger, "choices": ", ".join(Trigger.values)},
                           code="unknown_trigger", details={"trigger": trigger})
    if not 1 <= len(member_id) <= 64:
        raise InvalidInput(_("member_id must be 1 to 64 characters."))
    if not 1 <= len(reference) <= 128:
        raise InvalidInput(_("reference must be 1 to 128 characters."))
    if trigger == Trigger.PURCHASE_CONFIRMED:
        if amount is None:
            raise InvalidInput(_("amount (the payment amount) is required for purchase_confirmed."),
                               details={"amount": "required"})
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_POINTS_BASIS:
            raise InvalidInput(_("amount must be an integer from 0 to %(max)d.") % {"max": MAX_POINTS_BASIS},
                               details={"amount": "invalid"})
    elif amount is not None:
        raise InvalidInput(_("amount is only for purchase_confirmed."), details={"amount": "not_allowed"})
    if has_image and trigger != Trigger.REVIEW:
        raise InvalidInput(_("has_image is only for review."), details={"has_image": "not_allowed"})


def _existing_grant(tenant: Tenant, member_id: str, trigger: str, reference: str) -> RewardGrant | None:
    """The earlier grant with what its answer shows: its coupon and its points credit. Each loaded by a statement in
    the tenant (#23): LEFT JOINs of the optional coupon and credit could not carry it."""
    grant = RewardGrant.objects.filter(tenant=tenant, member_id=member_id, trigger=trigger, reference=reference
                                       ).first()
    if grant is None:
        return None
    if grant.coupon_id is not None:
        grant.coupon = CouponCode.objects.select_related("inventory__policy", "batch").get(
            tenant=tenant, pk=grant.coupon_id, **joined_in_tenant(tenant, "inventory", "inventory__policy", "batch"))
    if grant.points:
        entry = PointsEntry.objects.filter(tenant=tenant, grant=grant).first()
        if entry is not None:
            entry.grant = grant  # a one-to-one: this also fills grant.points_entry
    return grant


def _lock_member(tenant_id: int, member_id: str) -> MemberPoints:
    """The member's points row, created if missing, locked until the transaction ends."""
    MemberPoints.objects.bulk_create([MemberPoints(tenant_id=tenant_id, member_id=member_id)], ignore_conflicts=True)
    return MemberPoints.objects.select_for_update().get(tenant_id=tenant_id, member_id=member_id)


def reward_trigger(*, tenant: Tenant, member_id: str, trigger: str, reference: str, amount: int | None = None,
                   has_image: bool = False, client: ApiClient | None = None,
                   actor: Actor | None = None) -> tuple[RewardGrant, bool]:
    """Grant what the tenant's active rule for ``trigger`` gives, once per (member, trigger, reference).

    Returns (grant, created). A repeat returns the earlier grant and grants nothing, also under parallel repeats:
    the grant row is inserted first, so a concurrent twin waits on the unique index and then finds it.
    The coupon, the ledger credit, the grant and the audit row commit together. When the coupon cannot be issued
    (sold out, limit reached, …) the points are still granted and ``coupon_error`` says why; a rule that would then
    grant nothing at all raises instead, so nothing is recorded and the trigger can be sent again later.
    """
    _validate_trigger(member_id=member_id, trigger=trigger, reference=reference, amount=amount, has_image=has_image)
    existing = _existing_grant(tenant, member_id, trigger, reference)
    if existing is not None:
        return existing, False
    rule = RewardRule.objects.filter(tenant=tenant, trigger=trigger, is_active=True).first()
    if rule is None:
        raise NoActiveRule(details={"trigger": trigger})
    if rule.inventory_id is not None:  # optional: its own statement in the tenant, not a LEFT JOIN (#23)
        rule.inventory = CouponInventory.objects.select_related("policy", "event", "tenant").get(
            tenant=tenant, pk=rule.inventory_id, **joined_in_tenant(tenant, "policy", "event"))
    actor = actor or (Actor.api_client(client) if client is not None else Actor.system("rewards"))
    points = points_for(rule=rule, amount=amount, has_image=has_image, rounding_unit=tenant.rounding_unit)
    now = timezone.now()
    snapshot = {**_rule_values(rule), "rounding_unit": tenant.rounding_unit, "amount": amount,
                "has_image": has_image}
    try:
        with transaction.atomic():
            grant = RewardGrant.objects.create(tenant=tenant, member_id=member_id, trigger=trigger,
                                               reference=reference, rule=rule, rule_snapshot=snapshot, points=points,
                                               client=client)
            if rule.inventory is not None:
                try:
                    grant.coupon = issue_from_pool(inventory=rule.inventory, member_id=member_id,
                                                   via=CouponIssue.Via.GRANT, ctx=RequestContext(client=client))
                except DomainError as exc:
                    if points == 0 or isinstance(exc, MemberBusy) or exc.transient:
                        raise  # nothing else to grant, or a transient refusal: record nothing, let them retry
                    grant.coupon_error = exc.code
                RewardGrant.objects.filter(tenant=tenant, pk=grant.pk).update(coupon=grant.coupon,
                                                                              coupon_error=grant.coupon_error)
            if points > 0:
                member = _lock_member(tenant.pk, member_id)
                PointsEntry.objects.create(
                    tenant=tenant, member_id=member_id, amount=points, remaining=points,
                    reason=PointsEntry.Reason.GRANT, reference=f"{trigger}:{reference}"[:128], grant=grant,
                    expires_at=now + timedelta(days=rule.points_valid_days) if rule.points_valid_days else None)
                MemberPoints.objects.filter(tenant=tenant, pk=member.pk).update(balance=F("balance") + points)
            audit_record(tenant=tenant, actor=actor, action="reward.grant", obj=grant, after={
                "member_id": member_id, "trigger": trigger, "reference": reference, "points": points,
                "coupon": grant.coupon.code if grant.coupon else None, "coupon_error": grant.coupon_error or None,
                "rule": rule.pk})
    except IntegrityError as exc:
        if "rewardgrant_once_per_reference" not in str(exc):
            raise
        existing = _existing_grant(tenant, member_id, trigger, reference)
        if existing is None:  # the twin rolled back after we saw its row; a fresh call will grant
            raise MemberBusy() from exc
        return existing, False
    return grant, True


# --- points ledger -------------------------------------------------------------------------------------------------

def _unexpired(now: datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


MAX_POINTS = 10**12  # the API's money limit: no single points movement is larger


def _open_credits(tenant: Tenant, member_id: str, now: datetime) -> list[PointsEntry]:
    """The member's spendable credits, the one that expires first first (never-expiring ones last), row-locked.
    Called after ``_lock_member``, which is what serialises one member's debits."""
    return list(PointsEntry.objects.select_for_update().filter(
        _unexpired(now), tenant=tenant, member_id=member_id, amount__gt=0, remaining__gt=0)
        .order_by(F("expires_at").asc(nulls_last=True), "id"))


def _debit(*, tenant: Tenant, member: MemberPoints, amount: int, reason: str, reference: str, now: datetime,
           **fields: Any) -> PointsEntry:
    """Take ``amount`` from the member's credits, soonest expiry first, recording what came from which credit
    (``PointsAllocation``). Inside the caller's transaction, after ``_lock_member``. All or nothing."""
    credits = _open_credits(tenant, member.member_id, now)
    available = sum(c.remaining for c in credits)
    if amount > available:
        raise InsufficientPoints(details={"balance": available, "requested": amount})
    debit = PointsEntry.objects.create(tenant=tenant, member_id=member.member_id, amount=-amount, reason=reason,
                                       reference=reference[:128], **fields)
    allocations, left = [], amount
    for credit in credits:
        take = min(left, credit.remaining)
        PointsEntry.objects.filter(tenant=tenant, pk=credit.pk).update(remaining=F("remaining") - take)
        allocations.append(PointsAllocation(tenant=tenant, debit=debit, credit=credit, amount=take))
        left -= take
        if not left:
            break
    PointsAllocation.objects.bulk_create(allocations)
    MemberPoints.objects.filter(tenant=tenant, pk=member.pk).update(balance=F("balance") - amount)
    return debit


# The database's last guards against spending points that are not there (a credit's remainder, the balance).
_OVERSPEND_GUARDS = ("pointsentry_remaining_within_credit", "memberpoints_balance_not_negative")


def _overspent(exc: IntegrityError) -> bool:
    return any(name in str(exc) for name in _OVERSPEND_GUARDS)


def _check_points(value: Any, name: str, *, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_POINTS:
        raise InvalidInput(_("%(name)s must be an integer from %(min)d to %(max)d.")
                           % {"name": name, "min": minimum, "max": MAX_POINTS}, details={name: "invalid"})
    return value


def _check_identifier(value: Any, name: str, max_length: int = 64) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidInput(_("%(name)s must be 1 to %(max)d characters.") % {"name": name, "max": max_length},
                           details={name: "invalid"})
    return value


def points_spend(*, tenant: Tenant, member_id: str, amount: int, reference: str, actor: Actor,
                 now: datetime | None = None) -> PointsEntry:
    """Debit points, at most the member's balance; the credits that expire first are used first."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(_("amount must be a positive integer."))
    now = now or timezone.now()
    try:
        with transaction.atomic():
            member = _lock_member(tenant.pk, member_id)
            debit = _debit(tenant=tenant, member=member, amount=amount, reason=PointsEntry.Reason.SPEND,
                           reference=reference, now=now)
            audit_record(tenant=tenant, actor=actor, action="points.spend", obj=debit,
                         after={"member_id": member_id, "amount": amount, "reference": reference})
    except IntegrityError as exc:
        if _overspent(exc):
            raise InsufficientPoints() from exc
        raise
    return debit


def _order_spend(tenant: Tenant, order_id: str) -> PointsEntry | None:
    return PointsEntry.objects.filter(tenant=tenant, reason=PointsEntry.Reason.SPEND, order_id=order_id).first()


def _same_spend(existing: PointsEntry, member_id: str, points: int) -> PointsEntry:
    if existing.member_id != member_id or -existing.amount != points:
        raise PointsAlreadySpent(details={"order_id": existing.order_id})
    return existing


def points_spend_order(*, tenant: Tenant, member_id: str, order_id: str, points: int, payable: int | None = None,
                       client: ApiClient | None = None, actor: Actor | None = None,
                       now: datetime | None = None) -> tuple[PointsEntry, bool]:
    """Points as a payment line of an order (issue #16): all of ``points`` or nothing, one spend per order.

    The same order with the same points again answers the first spend and debits nothing (False); other points →
    PointsAlreadySpent. ``payable`` (what is left to pay after coupons), when given, caps the points. The member's
    row lock serialises their debits; the CHECKs on credits and balance refuse an overspend even if code is wrong.
    """
    _check_identifier(member_id, "member_id")
    _check_identifier(order_id, "order_id")
    _check_points(points, "points")
    if payable is not None:
        _check_points(payable, "payable", minimum=0)
        if points > payable:
            raise PointsExceedPayable(details={"points": points, "payable": payable})
    now = now or timezone.now()
    actor = actor or (Actor.api_client(client) if client is not None else Actor.system("rewards"))
    try:
        with transaction.atomic():
            member = _lock_member(tenant.pk, member_id)
            existing = _order_spend(tenant, order_id)
            if existing is not None:
                return _same_spend(existing, member_id, points), False
            debit = _debit(tenant=tenant, member=member, amount=points, reason=PointsEntry.Reason.SPEND,
                           reference=f"order:{order_id}", now=now, order_id=order_id, client=client)
            audit_record(tenant=tenant, actor=actor, action="points.spend", obj=debit,
                         after={"member_id": member_id, "order_id": order_id, "points": points, "payable": payable})
    except IntegrityError as exc:
        if _overspent(exc):
            raise InsufficientPoints() from exc
        if "pointsentry_one_spend_per_order" not in str(exc):
            raise
        existing = _order_spend(tenant, order_id)  # another member's request for the same order won
        if existing is None:
            raise MemberBusy() from exc
        return _same_spend(existing, member_id, points), False
    return debit, True


def spend_refund(debit: PointsEntry) -> PointsEntry | None:
    """The first refund credit of a spend, None while it is not refunded."""
    return PointsEntry.objects.filter(tenant_id=debit.tenant_id, refund_of__debit=debit,
                                      **joined_in_tenant(debit.tenant_id, "refund_of")).order_by("id").first()


def points_refund_order(*, tenant: Tenant, member_id: str, order_id: str, client: ApiClient | None = None,
                        actor: Actor | None = None) -> tuple[PointsEntry, bool]:
    """The order was refunded: give back the points spent on it, each part with the expiry of the credit it came
    from (a part whose credit has expired meanwhile comes back expired). Once: a repeat credits nothing (False).
    UNIQUE(refund_of) holds that even if code is wrong. No spend of this member on the order → NoPointsSpent."""
    _check_identifier(member_id, "member_id")
    _check_identifier(order_id, "order_id")
    actor = actor or (Actor.api_client(client) if client is not None else Actor.system("rewards"))
    spend = PointsEntry.objects.filter(tenant=tenant, member_id=member_id, reason=PointsEntry.Reason.SPEND,
                                       order_id=order_id)
    try:
        with transaction.atomic():
            member = _lock_member(tenant.pk, member_id)
            debit = spend.first()
            if debit is None:
                raise NoPointsSpent(details={"order_id": order_id})
            if spend_refund(debit) is not None:
                return debit, False
            allocations = list(PointsAllocation.objects.select_related("credit").filter(
                tenant=tenant, debit=debit, **joined_in_tenant(tenant, "credit")).order_by("id"))
            PointsEntry.objects.bulk_create([
                PointsEntry(tenant=tenant, member_id=member_id, amount=a.amount, remaining=a.amount,
                            reason=PointsEntry.Reason.REFUND, reference=f"refund:{order_id}"[:128],
                            order_id=order_id, expires_at=a.credit.expires_at, refund_of=a, client=client)
                for a in allocations])
            points = sum(a.amount for a in allocations)
            MemberPoints.objects.filter(tenant=tenant, pk=member.pk).update(balance=F("balance") + points)
            audit_record(tenant=tenant, actor=actor, action="points.refund", obj=debit,
                         after={"member_id": member_id, "order_id": order_id, "points": points})
    except IntegrityError as exc:
        if "refund_of_id" not in str(exc):
            raise
        return spend.get(), False  # a concurrent refund of this order won: UNIQUE(refund_of) credited it once
    return debit, True


def exchange_offer(*, tenant: Tenant, inventory_public_id: str) -> ExchangeOffer:
    """The active offer of an inventory of the tenant; another tenant's inventory is 'not found' like a missing one."""
    offer = ExchangeOffer.objects.select_related("inventory__policy", "inventory__event", "inventory__tenant").filter(
        tenant=tenant, inventory__public_id=inventory_public_id, inventory__tenant=tenant,
        **joined_in_tenant(tenant, "inventory__policy", "inventory__event")).first()
    if offer is None:
        if not CouponInventory.objects.filter(tenant=tenant, public_id=inventory_public_id).exists():
            raise InventoryNotFound()
        raise NotExchangeable(details={"inventory": inventory_public_id})
    if not offer.is_active:
        raise NotExchangeable(details={"inventory": inventory_public_id})
    return offer


def exchange_offer_save(*, offer: ExchangeOffer, actor: Actor) -> ExchangeOffer:
    """Offer an inventory for points, or change the offer (price, on/off). Audited."""
    if offer.tenant_id is None or offer.inventory_id is None:
        raise InvalidInput(_("Choose the inventory to offer."), details={"inventory": "required"})
    if offer.inventory.tenant_id != offer.tenant_id:
        raise InvalidInput(_("The inventory belongs to another tenant."), details={"inventory": "invalid"})
    if isinstance(offer.points, bool) or not isinstance(offer.points, int) or not 1 <= offer.points <= MAX_POINTS:
        raise InvalidInput(_("The price must be 1 to %(max)d points.") % {"max": MAX_POINTS},
                           details={"points": "invalid"})
    before = None
    if offer.pk is not None:
        old = ExchangeOffer.objects.filter(pk=offer.pk).values("points", "is_active").first()
        before = dict(old) if old else None
    try:
        with transaction.atomic():
            offer.save()
            audit_record(tenant=offer.tenant, actor=actor, action="exchange_offer.save", obj=offer, before=before,
                         after={"inventory": offer.inventory.public_id, "points": offer.points,
                                "is_active": offer.is_active})
    except IntegrityError as exc:
        if "inventory_id" in str(exc) or "exchangeoffer_inventory" in str(exc):
            raise InvalidInput(_("This inventory is already offered for points; change that offer."),
                               code="already_exists") from exc
        raise
    return offer


def points_exchange(*, tenant: Tenant, member_id: str, inventory_public_id: str, client: ApiClient | None = None,
                    ctx: RequestContext | None = None, now: datetime | None = None) -> tuple[CouponCode, PointsEntry]:
    """Exchange points for the next coupon of an inventory an operator offers for points: the coupon, the debit of
    its price and the audit row commit together, or nothing does (a sold-out pool debits nothing; too few points
    issue nothing). Lock order as everywhere here: the coupon's issue first, then the member's points row."""
    _check_identifier(member_id, "member_id")
    offer = exchange_offer(tenant=tenant, inventory_public_id=inventory_public_id)
    now = now or timezone.now()
    ctx = ctx or RequestContext(client=client)
    # Cheap early refusal without touching the pool; the debit below re-checks under the member's lock.

    balance = points_balance(tenant=tenant, member_id=member_id, now=now)
    if balance < offer.points:
        raise InsufficientPoints(details={"balance": balance, "requested": offer.points})
    try:
        with transaction.atomic():
            coupon = issue_from_pool(inventory=offer.inventory, member_id=member_id, via=CouponIssue.Via.GRANT,
                                     ctx=ctx)
            member = _lock_member(tenant.pk, member_id)
            debit = _debit(tenant=tenant, member=member, amount=offer.points, reason=PointsEntry.Reason.EXCHANGE,
                           reference=f"exchange:{offer.inventory.public_id}", now=now, coupon=coupon, client=client)
            audit_record(tenant=tenant, actor=ctx.actor, action="points.exchange", obj=debit,
                         after={"member_id": member_id, "inventory": offer.inventory.public_id,
                                "coupon": coupon.code, "points": offer.points})
    except IntegrityError as exc:
        if _overspent(exc):
            raise InsufficientPoints() from exc
        raise
    return coupon, debit


def points_adjust(*, tenant: Tenant, member_id: str, amount: int, note: str, actor: Actor,
                  valid_days: int | None = None, now: datetime | None = None) -> PointsEntry:
    """A manual correction by staff (issue #16), with the reason in ``note``: a credit (expiring after
    ``valid_days``, or never) or a debit taken like a spend (never below zero). Audited."""
    _check_identifier(member_id, "member_id")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0 or abs(amount) > MAX_POINTS:
        raise InvalidInput(_("The adjustment must be a whole number of points other than 0, at most %(max)d either "
                             "way.") % {"max": MAX_POINTS}, details={"amount": "invalid"})
    note = (note or "").strip()
    if not note:
        raise InvalidInput(_("Say why the points are adjusted."), code="reason_required")
    if len(note) > 500:
        raise InvalidInput(_("The reason is at most 500 characters."), details={"note": "too_long"})
    if valid_days is not None and (amount < 0 or not 1 <= valid_days <= 36_500):
        raise InvalidInput(_("A validity (1 to 36500 days) is only for added points."),
                           details={"valid_days": "invalid"})
    now = now or timezone.now()
    try:
        with transaction.atomic():
            member = _lock_member(tenant.pk, member_id)
            if amount > 0:
                entry = PointsEntry.objects.create(
                    tenant=tenant, member_id=member_id, amount=amount, remaining=amount,
                    reason=PointsEntry.Reason.ADJUSTMENT, reference="adjustment", note=note,
                    expires_at=now + timedelta(days=valid_days) if valid_days else None)
                MemberPoints.objects.filter(pk=member.pk).update(balance=F("balance") + amount)
            else:
                entry = _debit(tenant=tenant, member=member, amount=-amount, reason=PointsEntry.Reason.ADJUSTMENT,
                               reference="adjustment", now=now, note=note)
            audit_record(tenant=tenant, actor=actor, action="points.adjust", obj=entry,
                         after={"member_id": member_id, "amount": amount, "note": note, "valid_days": valid_days})
    except IntegrityError as exc:
        if _overspent(exc):
            raise InsufficientPoints() from exc
        raise
    return entry


@dataclass
class ExpiryResult:
    credits: int = 0
    points: int = 0


def _expire_one(entry_id: int, tenant: Tenant, member_id: str, now: datetime, actor: Actor) -> int:
    with transaction.atomic():
        member = _lock_member(tenant.pk, member_id)
        credit = PointsEntry.objects.select_for_update().get(pk=entry_id)
        if credit.remaining <= 0 or credit.expires_at is None or credit.expires_at > now:
            return 0  # spent or expired meanwhile
        left = credit.remaining
        debit = PointsEntry.objects.create(tenant=tenant, member_id=member_id, amount=-left, expired_entry=credit,
                                           reason=PointsEntry.Reason.EXPIRY, reference=credit.reference)
        PointsEntry.objects.filter(pk=credit.pk).update(remaining=0)
        MemberPoints.objects.filter(pk=member.pk).update(balance=F("balance") - left)
        audit_record(tenant=tenant, actor=actor, action="points.expire", obj=debit,
                     after={"member_id": member_id, "amount": left, "credit": credit.pk})
    return left


def points_expire(*, now: datetime | None = None, dry_run: bool = False, chunk: int = 500) -> ExpiryResult | None:
    """Write one expiry debit for the unspent part of every credit past ``expires_at``. None if another run holds
    the lock. A rerun finds nothing left (remaining is 0), and UNIQUE(expired_entry) holds even if code is wrong."""
    now = now or timezone.now()
    due = PointsEntry.objects.filter(amount__gt=0, remaining__gt=0, expires_at__lte=now)
    if dry_run:
        agg = due.aggregate(points=Sum("remaining"))
        return ExpiryResult(credits=due.count(), points=agg["points"] or 0)
    result, tenants = ExpiryResult(), dict[int, Tenant]()
    actor = Actor.job("expire_points")
    with session_lock(EXPIRY_LOCK) as got:
        if not got:
            return None
        last_id = 0
        while True:
            rows = list(due.filter(id__gt=last_id).order_by("id").values_list("id", "tenant_id", "member_id")[:chunk])
            if not rows:
                break
            for entry_id, tenant_id, member_id in rows:
                last_id = entry_id
                tenant = tenants.get(tenant_id) or tenants.setdefault(tenant_id, Tenant.objects.get(pk=tenant_id))
                left = _expire_one(entry_id, tenant, member_id, now, actor)
                if left:
                    result.credits += 1
                    result.points += left
    return result


# --- birthdays -----------------------------------------------------------------------------------------------------

def _parse_birthday(fields: list[str]) -> tuple[str, int, int]:
    """member_id,month,day  or  member_id,YYYY-MM-DD  or  member_id,MM-DD."""
    fields = [f.strip() for f in fields]
    if len(fields) == 3:
        member_id, month_s, day_s = fields
    elif len(fields) == 2:
        member_id, when = fields
        parts = when.split("-")
        if len(parts) == 3:
            parts = parts[1:]
        if len(parts) != 2:
            raise ValueError(_("birthday %(value)r is not YYYY-MM-DD or MM-DD") % {"value": when})
        month_s, day_s = parts
    else:
        raise ValueError(_("expected member_id,month,day or member_id,YYYY-MM-DD"))
    if not 1 <= len(member_id) <= 64:
        raise ValueError(_("member_id must be 1 to 64 characters"))
    if not (month_s.isdigit() and day_s.isdigit()):
        raise ValueError(_("month and day must be numbers"))
    month, day = int(month_s), int(day_s)
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2000, month)[1]:  # 2000: Feb 29 exists
        raise ValueError(_("%(month)02d-%(day)02d is not a date") % {"month": month, "day": day})
    return member_id, month, day


def birthdays_import(*, tenant: Tenant, text: str, actor: Actor) -> int:
    """Set members' birthdays from CSV text (a header line is optional). All or nothing: any bad line → InvalidInput
    listing the lines, and nothing changes. A member listed twice keeps the last line. Returns the members set."""
    rows: dict[str, tuple[int, int]] = {}
    errors: list[str] = []
    for line_no, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or not "".join(fields).strip():
            continue
        if line_no == 1 and fields[0].strip().lower() in ("member_id", "member"):
            continue
        try:
            member_id, month, day = _parse_birthday(fields)
        except ValueError as exc:
            errors.append(_("line %(line)d: %(error)s") % {"line": line_no, "error": exc})
            continue
        rows[member_id] = (month, day)
    if errors:
        raise InvalidInput(ngettext("%(count)d bad line; nothing was imported. %(errors)s",
                                    "%(count)d bad lines; nothing was imported. %(errors)s", len(errors))
                           % {"count": len(errors), "errors": "; ".join(errors[:10])},
                           code="invalid_file", details={"errors": errors[:100]})
    if not rows:
        raise InvalidInput(_("The file has no birthdays."), code="invalid_file")
    return _birthdays_upsert(tenant=tenant, rows=rows, actor=actor)


def _birthdays_upsert(*, tenant: Tenant, rows: dict[str, tuple[int, int]], actor: Actor) -> int:
    items = list(rows.items())
    with transaction.atomic():
        for start in range(0, len(items), 5000):
            MemberBirthday.objects.bulk_create(
                [MemberBirthday(tenant=tenant, member_id=m, month=md[0], day=md[1]) for m, md in
                 items[start:start + 5000]],
                update_conflicts=True, unique_fields=["tenant", "member_id"], update_fields=["month", "day",
                                                                                            "updated_at"])
        audit_record(tenant=tenant, actor=actor, action="birthdays.import", obj=tenant, after={"members": len(items)})
    return len(items)


def member_birthday_save(*, birthday: MemberBirthday, actor: Actor) -> MemberBirthday:
    try:
        _parse_birthday([birthday.member_id, str(birthday.month), str(birthday.day)])
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    try:
        with transaction.atomic():
            birthday.save()
            audit_record(tenant=birthday.tenant, actor=actor, action="birthday.save", obj=birthday,
                         after={"member_id": birthday.member_id, "month": birthday.month, "day": birthday.day})
    except IntegrityError as exc:
        if "memberbirthday_one_per_member" in str(exc):
            raise InvalidInput(_("Member %(member)s already has a birthday; change that one.")
                               % {"member": birthday.member_id}) from exc
        raise
    return birthday


@dataclass
class BirthdayRun:
    tenants: int = 0
    due: int = 0
    granted: int = 0
    already: int = 0
    failed: int = 0


def birthday_members(*, tenant: Tenant, today: date) -> Iterable[str]:
    """Members whose birthday is ``today``; Feb 29 birthdays are celebrated on Feb 28 in other years."""
    match = Q(month=today.month, day=today.day)
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        match |= Q(month=2, day=29)
    return MemberBirthday.objects.filter(match, tenant=tenant).order_by("id").values_list(
        "member_id", flat=True).iterator(chunk_size=2000)


def birthday_rewards_grant(*, now: datetime | None = None, on_date: date | None = None,
                           dry_run: bool = False) -> BirthdayRun | None:
    """Daily: the birthday reward for every member whose birthday is today in the tenant's time zone, with the year
    as the reference — so once a year, however often this runs. None if another run holds the lock."""
    now = now or timezone.now()
    run = BirthdayRun()
    actor = Actor.job("grant_birthday_rewards")
    with (nullcontext(True) if dry_run else session_lock(BIRTHDAY_LOCK)) as got:  # a dry run changes nothing
        if not got:
            return None
        rules = RewardRule.objects.select_related("tenant").filter(trigger=Trigger.BIRTHDAY, is_active=True,
                                                                    tenant__is_active=True).order_by("tenant_id")
        for rule in rules:
            tenant = rule.tenant
            run.tenants += 1
            today = on_date or now.astimezone(ZoneInfo(tenant.time_zone)).date()
            reference = str(today.year)
            for member_id in birthday_members(tenant=tenant, today=today):
                run.due += 1
                if dry_run:
                    if RewardGrant.objects.filter(tenant=tenant, member_id=member_id, trigger=Trigger.BIRTHDAY,
                                                  reference=reference).exists():
                        run.already += 1
                    else:
                        run.granted += 1
                    continue
                try:
                    _grant, created = reward_trigger(tenant=tenant, member_id=member_id, trigger=Trigger.BIRTHDAY,
                                                reference=reference, actor=actor)
                except DomainError as exc:
                    run.failed += 1
                    logger.warning("birthday reward for %s/%s failed: %s", tenant.slug, member_id, exc.code)
                    continue
                if created:
                    run.granted += 1
                else:
                    run.already += 1
    return run
