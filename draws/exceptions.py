"""The draw error catalogue."""
from __future__ import annotations

from core.exceptions import BusinessRuleViolation, InvalidState, NotFound


class DrawNotFound(NotFound):
    default_message = "No such draw."


class DrawNotReady(InvalidState):
    code = "draw_not_ready"
    default_message = "This draw cannot run in its current state."


class EventNotEnded(BusinessRuleViolation):
    code = "event_not_ended"
    default_message = "A draw runs only after its event has ended."


class ParticipantsChanged(InvalidState):
    code = "participants_changed"
    default_message = "The participant list differs from the one this draw started from."
