"""The draw error catalogue."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.exceptions import BusinessRuleViolation, InvalidState, NotFound


class DrawNotFound(NotFound):
    default_message = _("No such draw.")


class DrawNotReady(InvalidState):
    code = "draw_not_ready"
    default_message = _("This draw cannot run in its current state.")


class EventNotEnded(BusinessRuleViolation):
    code = "event_not_ended"
    default_message = _("A draw runs only after its event has ended.")


class ParticipantsChanged(InvalidState):
    code = "participants_changed"
    default_message = _("The participant list differs from the one this draw started from.")
