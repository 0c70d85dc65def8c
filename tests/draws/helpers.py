"""Setting up draws for tests: an event with participants, ended, and a committed draw."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from draws import services
from draws.models import Draw
from events.models import Event, EventParticipant
from tests import factories

ACTOR = factories.TEST_ACTOR


def add_participants(event: Event, member_ids: list[str], **fields: Any) -> None:
    fields.setdefault("joined_at", timezone.now() - timedelta(minutes=1))
    EventParticipant.objects.bulk_create(
        [EventParticipant(tenant_id=event.tenant_id, event=event, member_id=m, **fields)
         for m in member_ids], batch_size=5000)


def end(event: Event) -> None:
    Event.objects.filter(pk=event.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    event.refresh_from_db()


def ended_event_with(tenant: Any, member_ids: list[str]) -> Event:
    event = factories.make_event(tenant)
    add_participants(event, member_ids)
    end(event)
    return event


def committed_draw(event: Event, tiers: list[tuple[str, int]] | None = None, inventories: dict | None = None,
                   **kwargs: Any) -> Draw:
    specs = [services.TierSpec(name=name, winners=count, inventory=(inventories or {}).get(name))
             for name, count in (tiers or [("first", 1), ("second", 3)])]
    return services.draw_create(event=event, name=kwargs.pop("name", "Draw"), draw_at=kwargs.pop(
        "draw_at", timezone.now() - timedelta(seconds=1)), tiers=specs, actor=ACTOR, **kwargs)


def winners_of(draw: Draw) -> list[tuple[int, int, str]]:
    return list(draw.winners.order_by("tier__position", "rank").values_list("tier__position", "rank", "member_id"))
