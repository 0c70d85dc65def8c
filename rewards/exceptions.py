"""The rewards error catalogue (API.md): each refusal has a stable code and HTTP status."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.exceptions import BusinessRuleViolation


class NoActiveRule(BusinessRuleViolation):
    code = "no_active_rule"
    default_message = _("There is no active reward rule for this trigger.")


class InsufficientPoints(BusinessRuleViolation):
    code = "insufficient_points"
    default_message = _("The member does not have enough points.")
