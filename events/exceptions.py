"""The event error catalogue (API.md "Events and draws")."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.exceptions import BusinessRuleViolation, InvalidState, NotFound


class EventNotFound(NotFound):
    default_message = _("No such event.")


class NotJoined(NotFound):
    default_message = _("This member has no active entry in this event.")


class AlreadyJoined(InvalidState):
    code = "already_joined"
    default_message = _("This member has already joined this event.")


class EventClosed(BusinessRuleViolation):
    code = "event_closed"
    default_message = _("This event is not open.")


class LimitReached(BusinessRuleViolation):
    code = "limit_reached"
    default_message = _("This event has reached its maximum number of participants.")


class NotEligible(BusinessRuleViolation):
    code = "not_eligible"
    default_message = _("This member may not take part in this event.")


class RegistrationClosed(BusinessRuleViolation):
    code = "registration_closed"
    default_message = _("Codes of this event can no longer be registered.")
