"""State changes of events."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction

from core.audit import Actor, audit_record
from core.exceptions import InvalidInput
from core.models import Tenant
from events.models import Event


def event_save(*, event: Event, actor: Actor) -> Event:
    if not event.name.strip():
        raise InvalidInput("An event needs a name.")
    if event.ends_at <= event.starts_at:
        raise InvalidInput("An event must end after it starts.")
    creating = event.pk is None
    with transaction.atomic():
        event.save()
        audit_record(tenant=event.tenant, actor=actor, action="event.create" if creating else "event.update",
                     obj=event, after={"name": event.name, "starts_at": event.starts_at.isoformat(),
                                       "ends_at": event.ends_at.isoformat(), "status": event.status})
    return event


def event_create(*, tenant: Tenant, name: str, starts_at: datetime, ends_at: datetime, actor: Actor,
                 description: str = "", status: str = Event.Status.DRAFT) -> Event:
    return event_save(event=Event(tenant=tenant, name=name, description=description, starts_at=starts_at,
                                  ends_at=ends_at, status=status), actor=actor)
