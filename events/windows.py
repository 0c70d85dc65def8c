"""An event's windows, decided in this one place (seed 001: 이벤트 종료 후 유입 → 혜택 제공; R-EVT-1).

Design: docs/design/events-and-draws.md#events-windows.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from events.exceptions import EventClosed, RegistrationClosed
from events.models import Event

PARTICIPATION = "participation"
REGISTRATION = "registration"
GRANT = "grant"


def participation_open(event: Event, now: datetime) -> bool:
    return event.status == Event.Status.OPEN and event.starts_at <= now < event.ends_at


def registration_ends(event: Event) -> datetime:
    return event.registration_ends_at or event.ends_at


def _registration_statuses(event: Event) -> tuple[str, ...]:
    return (Event.Status.OPEN, Event.Status.CLOSED) if event.registration_ends_at else (Event.Status.OPEN,)


def registration_open(event: Event, now: datetime) -> bool:
    return event.status in _registration_statuses(event) and event.starts_at <= now < registration_ends(event)


def entries_closed(event: Event, now: datetime) -> bool:
    """Participation is over for good: the list a draw reads is final."""
    return event.ends_at <= now or event.status in (Event.Status.CLOSED, Event.Status.CANCELLED)


def _reason(event: Event, now: datetime, statuses: tuple[str, ...]) -> str:
    if event.status not in statuses:
        return "status"
    return "not_started" if now < event.starts_at else "ended"


def check_participation(event: Event, now: datetime, message: Any = None) -> None:
    if not participation_open(event, now):
        raise EventClosed(message, details={
            "window": PARTICIPATION, "reason": _reason(event, now, (Event.Status.OPEN,)),
            "status": event.status, "starts_at": event.starts_at.isoformat(), "ends_at": event.ends_at.isoformat()})


def check_registration(event: Event, now: datetime) -> None:
    if not registration_open(event, now):
        ends = registration_ends(event)
        raise RegistrationClosed(details={
            "window": REGISTRATION, "reason": _reason(event, now, _registration_statuses(event)),
            "status": event.status, "starts_at": event.starts_at.isoformat(), "ends_at": ends.isoformat()})


def check_grantable(event: Event, message: Any = None) -> None:
    if event.status in (Event.Status.DRAFT, Event.Status.CANCELLED):
        raise EventClosed(message, details={"window": GRANT, "reason": "status", "status": event.status})
