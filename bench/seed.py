"""What the benchmarks that generate codes set up first: a tenant's approved 1,000-off policy, an open event and an
inventory, all through the services (so a benchmark measures the product's own rows)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from core.audit import Actor
from core.models import Tenant, User
from coupons import services
from coupons.models import CouponInventory, CouponPolicy
from events.models import Event
from events.services import event_create


def approvers() -> tuple[User, User]:
    """The policy's author and its approver: two users, since nobody approves their own policy."""
    return (User.objects.create_superuser("bench-author", password=None),
            User.objects.create_superuser("bench-approver", password=None))


def open_inventory(tenant: Tenant, *, users: tuple[User, User], total_quantity: int, label: str,
                   actor: Actor) -> CouponInventory:
    """An inventory of ``total_quantity`` codes on an approved fixed-window policy and an event open for 30 days."""
    author, approver = users
    now = timezone.now()
    policy: Any = services.policy_save_draft(policy=CouponPolicy(
        tenant=tenant, name=f"{label} 1,000 off", kind="amount", amount=1000, validity_type="fixed",
        valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30)), actor_user=author)
    services.policy_submit(policy=policy, actor_user=author)
    policy = services.policy_approve(policy=policy, actor_user=approver)
    event = event_create(tenant=tenant, name=f"{label} event", starts_at=now - timedelta(days=1),
                         ends_at=now + timedelta(days=30), status=Event.Status.OPEN, actor=actor)
    return services.inventory_create(tenant=tenant, event=event, policy=policy, name=f"{label} pool",
                                     total_quantity=total_quantity, actor=actor)
