"""An event's setup carried to another event (issue #16, R-EVT-1, seed 001 §8): the next occurrence of a repeatable
event, or a copy made as a template.

Design: docs/design/events-and-draws.md#draws-templates.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import Actor, audit_record
from coupons import services as coupon_services
from coupons.models import AudienceEntry, CouponBatch, CouponInventory
from draws.models import Draw
from draws.services import TierSpec, draw_create
from events.models import Event, EventAllowedMember
from events.services import event_save
from risk.models import FrequencyLimit, InventoryBudget
from coupons.services.generation import batch_start_generation

CHUNK = 5000
_BUDGETS = ("issue_budget_count", "issue_budget_amount", "use_budget_count", "use_budget_amount")


def _copy_rows(rows: Any, make: Any, model: Any) -> None:
    batch = []
    for row in rows.iterator(chunk_size=CHUNK):
        batch.append(make(row))
        if len(batch) >= CHUNK:
            model.objects.bulk_create(batch)
            batch = []
    model.objects.bulk_create(batch)


def _batch_code(code: str, target: Event) -> str:
    return f"{code[:47]}-{target.public_id}"


def _copy_inventory(source: CouponInventory, target: Event, actor: Actor, *, move_promo_code: bool) -> CouponInventory:
    promo_code = source.promo_code if move_promo_code else None
    if promo_code:  # the promo code members know follows the pool to the next occurrence
        source.promo_code = None
        coupon_services.inventory_save(inventory=source, actor=actor)
    copy = coupon_services.inventory_create(
        tenant=source.tenant, event=target, policy=source.policy, name=source.name,
        total_quantity=source.total_quantity, per_member_limit=source.per_member_limit, promo_code=promo_code,
        actor=actor, **{name: getattr(source, name) for name in _BUDGETS})
    if not source.is_active:
        CouponInventory.objects.filter(pk=copy.pk).update(is_active=False)
    thresholds = InventoryBudget.objects.filter(inventory=source).values_list("alarm_thresholds", flat=True).first()
    if thresholds is not None:
        InventoryBudget.objects.create(tenant_id=copy.tenant_id, inventory=copy, alarm_thresholds=list(thresholds))
    _copy_rows(AudienceEntry.objects.filter(inventory=source).only("member_id"),
               lambda e: AudienceEntry(tenant_id=copy.tenant_id, inventory=copy, member_id=e.member_id), AudienceEntry)
    for limit in FrequencyLimit.objects.filter(inventory=source):
        FrequencyLimit.objects.create(tenant_id=copy.tenant_id, inventory=copy, action=limit.action,
                                      dimension=limit.dimension, max_per_day=limit.max_per_day,
                                      is_active=limit.is_active)
    for batch in CouponBatch.objects.filter(inventory=source).order_by("pk"):
        new = coupon_services.batch_create(inventory=copy, batch_code=_batch_code(batch.batch_code, target),
                                           quantity=batch.quantity, code_length=batch.code_length,
                                           alphabet=batch.alphabet, prefix=batch.prefix, actor=actor)
        _generate_on_commit(new, actor)
    return copy


def _generate_on_commit(batch: CouponBatch, actor: Actor) -> None:
    def start() -> None:
        batch_start_generation(batch=batch, actor=actor)

    transaction.on_commit(start, robust=True)


def event_copy_setup(*, source: Event, target: Event, actor: Actor, shift: timedelta,
                     move_promo_codes: bool) -> dict[str, int]:
    """Copy ``source``'s pools and draws to ``target`` (inside the caller's transaction); draws are scheduled
    ``shift`` later. Returns what was copied."""
    pools: dict[int, CouponInventory] = {}
    for inventory in (CouponInventory.objects.select_related("policy", "tenant").filter(event=source)
                      .order_by("pk")):
        pools[inventory.pk] = _copy_inventory(inventory, target, actor, move_promo_code=move_promo_codes)
    draws = 0
    for draw in Draw.objects.filter(event=source, parent__isnull=True).prefetch_related("tiers").order_by("pk"):
        tiers = [TierSpec(name=t.name, winners=t.winners,
                          inventory=pools.get(t.inventory_id, t.inventory) if t.inventory_id else None)
                 for t in sorted(draw.tiers.all(), key=lambda t: t.position)]
        draw_create(event=target, name=draw.name, draw_at=draw.draw_at + shift, tiers=tiers, actor=actor,
                    commit=draw.status != Draw.Status.SCHEDULED)
        draws += 1
    audit_record(tenant=target.tenant, actor=actor, action="event.copy_setup", obj=target,
                 after={"source": source.public_id, "inventories": len(pools), "draws": draws})
    return {"inventories": len(pools), "draws": draws}


def occurrence_copy_setup(*, previous: Event, occurrence: Event, actor: Actor) -> None:
    """The next occurrence of a repeatable event gets the previous one's pools and draws (its promo codes move)."""
    event_copy_setup(source=previous, target=occurrence, actor=actor, shift=occurrence.ends_at - previous.ends_at,
                     move_promo_codes=True)


def event_clone(*, event: Event, actor: Actor) -> Event:
    """A copy of ``event`` as a template: a DRAFT event with the same configuration, period and allow-list, and
    copies of its pools and draws (without promo codes: the original keeps them). One transaction."""
    with transaction.atomic():
        copy = event_save(event=Event(
            tenant=event.tenant, name=(_("%(name)s (copy)") % {"name": event.name})[:200],
            description=event.description, starts_at=event.starts_at, ends_at=event.ends_at,
            registration_ends_at=event.registration_ends_at, status=Event.Status.DRAFT, recurrence=event.recurrence,
            max_participants=event.max_participants, entries_per_member=event.entries_per_member,
            require_redeemed_coupon=event.require_redeemed_coupon, allow_list_only=event.allow_list_only),
            actor=actor)
        _copy_rows(EventAllowedMember.objects.filter(event=event).only("member_id"),
                   lambda m: EventAllowedMember(tenant_id=copy.tenant_id, event=copy, member_id=m.member_id),
                   EventAllowedMember)
        event_copy_setup(source=event, target=copy, actor=actor, shift=timedelta(0), move_promo_codes=False)
        audit_record(tenant=copy.tenant, actor=actor, action="event.clone", obj=copy,
                     after={"source": event.public_id})
    return copy
