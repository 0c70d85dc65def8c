"""Inventories (pools of an event backed by an approved policy, R-INV)."""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from core.validation import full_clean
from core.audit import Actor, audit_record
from core.exceptions import InvalidInput
from core.models import Tenant
from coupons.exceptions import PolicyNotApproved
from coupons.models import CouponInventory, CouponPolicy
from events.models import Event


def inventory_save(*, inventory: CouponInventory, actor: Actor) -> CouponInventory:
    """Create or change an inventory. Its policy must be approved and everything must share one tenant."""
    policy = inventory.policy
    if policy.status != CouponPolicy.Status.APPROVED:
        raise PolicyNotApproved(_("Policy '%(name)s' is %(status)s; only an approved policy can back an inventory.")
                                % {"name": policy.name, "status": policy.get_status_display()})
    if policy.tenant_id != inventory.tenant_id or inventory.event.tenant_id != inventory.tenant_id:
        raise InvalidInput(_("The event, the policy and the inventory must belong to the same tenant."))
    if inventory.promo_code is not None:
        inventory.promo_code = inventory.promo_code.strip().upper().replace("-", "").replace(" ", "") or None
    full_clean(inventory, exclude=["tenant", "event", "policy"])
    creating = inventory.pk is None
    try:
        with transaction.atomic():
            if not creating:
                current = CouponInventory.objects.select_for_update().get(pk=inventory.pk)
                planned = current.batches.aggregate(total=Sum("quantity"))["total"] or 0
                if inventory.total_quantity < planned:
                    raise InvalidInput(_("The total cannot go below the %(planned)s codes its batches hold.")
                                       % {"planned": planned})
            inventory.save()
            audit_record(tenant=inventory.tenant, actor=actor,
                         action="inventory.create" if creating else "inventory.update", obj=inventory,
                         after={"name": inventory.name, "policy": policy.pk, "event": inventory.event_id,
                                "total_quantity": inventory.total_quantity,
                                "per_member_limit": inventory.per_member_limit, "promo_code": inventory.promo_code})
    except IntegrityError as exc:
        raise InvalidInput(_("The promo code %(code)r is already used by another inventory.")
                           % {"code": inventory.promo_code},
                           code="promo_code_taken") from exc
    return inventory


def inventory_create(*, tenant: Tenant, event: Event, policy: CouponPolicy, name: str, total_quantity: int,
                     actor: Actor, per_member_limit: int = 1, promo_code: str | None = None,
                     **budgets: Any) -> CouponInventory:
    inventory = CouponInventory(tenant=tenant, event=event, policy=policy, name=name, total_quantity=total_quantity,
                                per_member_limit=per_member_limit, promo_code=promo_code, **budgets)
    return inventory_save(inventory=inventory, actor=actor)
