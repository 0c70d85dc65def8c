"""The coupon error catalogue (API.md): each refusal has a stable code and HTTP status."""
from __future__ import annotations

from core.exceptions import BusinessRuleViolation, DomainError, InvalidState, NotFound, PermissionDenied


class CouponNotFound(NotFound):
    default_message = "No such coupon."


class InventoryNotFound(NotFound):
    default_message = "No such coupon inventory."


class AlreadyClaimed(InvalidState):
    code = "already_claimed"
    default_message = "This member already has this coupon."


class SoldOut(BusinessRuleViolation):
    code = "sold_out"
    default_message = "All coupons of this inventory have been claimed."


class LimitReached(BusinessRuleViolation):
    code = "limit_reached"
    default_message = "This member has reached the per-member limit of this coupon."


class NotEligible(BusinessRuleViolation):
    code = "not_eligible"
    default_message = "This member cannot claim this coupon."


class EventClosed(BusinessRuleViolation):
    code = "event_closed"
    default_message = "The event of this coupon is not open."


class AlreadyUsed(InvalidState):
    code = "already_used"
    default_message = "This coupon has already been used."


class LockedByOtherOrder(InvalidState):
    code = "locked_by_other_order"
    default_message = "This coupon is locked to another order."


class CouponExpired(BusinessRuleViolation):
    code = "expired"
    default_message = "This coupon has expired."


class NotOwner(PermissionDenied):
    code = "not_owner"
    default_message = "This coupon belongs to another member."


class NotApplicable(BusinessRuleViolation):
    code = "not_applicable"
    default_message = "This coupon does not apply to this order."

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"This coupon does not apply to this order ({reason.replace('_', ' ')}).",
                         details={"reason": reason})


class MemberBusy(DomainError):
    code = "request_in_progress"
    status = 409
    default_message = "Another request for this member is being processed; retry shortly."
