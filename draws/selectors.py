"""Reads of draws used by the API and the console."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from core.models import Tenant
from core.tenancy import joined_in_tenant
from draws.models import Draw, DrawWinner, PrizeTier
from events.models import Event


@dataclass
class EventDraws:
    draws: list[Draw]
    tiers: dict[int, list[PrizeTier]] = field(default_factory=dict)  # by draw id, in position order
    winners: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by draw id; DONE draws only


def event_draws(*, tenant: Tenant, event_public_id: str) -> EventDraws | None:
    """An event's draws, oldest round first, with their prize tiers and (once DONE) winners; None if the tenant has
    no such event."""
    event = Event.objects.filter(tenant=tenant, public_id=event_public_id.strip().upper()).first()
    if event is None:
        return None
    result = EventDraws(list(Draw.objects.filter(tenant=tenant, event=event).order_by("draw_at", "round", "pk")))
    # The draws redone are loaded by their own statement in the tenant: a LEFT JOIN of the optional parent could not
    # name the tenant of the parent's row (#23).
    parent_ids = {d.parent_id for d in result.draws if d.parent_id is not None}
    parents = {p.pk: p for p in Draw.objects.filter(tenant=tenant, pk__in=parent_ids)} if parent_ids else {}
    for draw in result.draws:
        if draw.parent_id is not None:
            draw.parent = parents[draw.parent_id]
    for tier in PrizeTier.objects.filter(tenant=tenant, draw__in=result.draws).order_by("position"):
        result.tiers.setdefault(tier.draw_id, []).append(tier)
    rows = (DrawWinner.objects.filter(tenant=tenant, **joined_in_tenant(tenant, "tier"),
                                      draw__in=[d for d in result.draws if d.status == Draw.Status.DONE])
            .order_by("tier__position", "rank").values_list("draw_id", "member_id", "tier__position", "rank",
                                                            "forfeited_at"))
    for draw_id, member_id, position, rank, forfeited_at in rows:
        result.winners.setdefault(draw_id, []).append({"member_id": member_id, "tier": position, "rank": rank,
                                                       "forfeited": forfeited_at is not None})
    return result


def draw_winners(*, draw: Draw) -> QuerySet[DrawWinner]:
    """Every winner of a draw, by prize tier and rank, with the prize's inventory and coupon."""
    return (DrawWinner.objects.filter(draw=draw).select_related("tier__inventory", "coupon")
            .order_by("tier__position", "rank"))


def draw_failed_grants(*, draw: Draw) -> QuerySet[DrawWinner]:
    """Winners whose prize coupon could not be granted (and who did not forfeit): the reason is ``grant_error``."""
    return draw_winners(draw=draw).filter(coupon__isnull=True, forfeited_at__isnull=True).exclude(grant_error="")


def draw_can_redraw(*, draw: Draw) -> bool:
    """A DONE draw with forfeited winners and no redraw yet."""
    return (draw.status == Draw.Status.DONE and not Draw.objects.filter(parent=draw).exists()
            and DrawWinner.objects.filter(draw=draw, forfeited_at__isnull=False).exists())


def draw_has_prizes(*, draw: Draw) -> bool:
    return PrizeTier.objects.filter(tenant_id=draw.tenant_id, draw=draw, inventory__isnull=False).exists()
