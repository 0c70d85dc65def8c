"""The rewards error catalogue (API.md): each refusal has a stable code and HTTP status."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.exceptions import BusinessRuleViolation, DomainError, NotFound


class NoActiveRule(BusinessRuleViolation):
    code = "no_active_rule"
    default_message = _("There is no active reward rule for this trigger.")


class InsufficientPoints(BusinessRuleViolation):
    code = "insufficient_points"
    default_message = _("The member does not have enough points.")


class PointsAlreadySpent(DomainError):
    code = "points_already_spent"
    status = 409
    default_message = _("Points were already spent on this order with another amount; an order takes one points "
                        "payment.")


class PointsExceedPayable(BusinessRuleViolation):
    code = "points_exceed_payable"
    default_message = _("The points are more than the amount left to pay.")


class NotExchangeable(BusinessRuleViolation):
    code = "not_exchangeable"
    default_message = _("This inventory cannot be exchanged for points.")


class NoPointsSpent(NotFound):
    default_message = _("No points were spent on this order.")
