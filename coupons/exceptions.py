"""The coupon error catalogue (API.md): each refusal has a stable code and HTTP status."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.exceptions import BusinessRuleViolation, DomainError, InvalidState, NotFound, PermissionDenied


class CouponNotFound(NotFound):
    default_message = _("No such coupon.")


class InventoryNotFound(NotFound):
    default_message = _("No such coupon inventory.")


class AlreadyClaimed(InvalidState):
    code = "already_claimed"
    default_message = _("This member already has this coupon.")


class SoldOut(BusinessRuleViolation):
    code = "sold_out"
    default_message = _("All coupons of this inventory have been claimed.")


class LimitReached(BusinessRuleViolation):
    code = "limit_reached"
    default_message = _("This member has reached the per-member limit of this coupon.")


class NotEligible(BusinessRuleViolation):
    code = "not_eligible"
    default_message = _("This member cannot claim this coupon.")


class EventClosed(BusinessRuleViolation):
    code = "event_closed"
    default_message = _("The event of this coupon is not open.")


class AlreadyUsed(InvalidState):
    code = "already_used"
    default_message = _("This coupon has already been used.")


class LockedByOtherOrder(InvalidState):
    code = "locked_by_other_order"
    default_message = _("This coupon is locked to another order.")


class CouponExpired(BusinessRuleViolation):
    code = "expired"
    default_message = _("This coupon has expired.")


class NotOwner(PermissionDenied):
    code = "not_owner"
    default_message = _("This coupon belongs to another member.")


class NotApplicable(BusinessRuleViolation):
    code = "not_applicable"
    default_message = _("This coupon does not apply to this order.")

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"This coupon does not apply to this order ({reason.replace('_', ' ')}).",
                         details={"reason": reason})


class MemberBusy(DomainError):
    code = "request_in_progress"
    status = 409
    default_message = _("Another request for this member is being processed; retry shortly.")
