"""The coupon error catalogue (API.md): each refusal has a stable code and HTTP status."""
from __future__ import annotations

from typing import Any

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


# Why a coupon is refused at checkout (the ``reason`` of a rejected code, and of 422 not_applicable on lock and
# redeem): the discount engine's Reason values plus the stored coupon's own state (coupons.pricing). docs/API.md lists
# them; tests/docs/test_api_contract.py keeps the two equal.
REFUSAL_MESSAGES: dict[str, Any] = {
    "not_found": _("No such coupon."),
    "not_owner": _("This coupon belongs to another member."),
    "expired": _("This coupon has expired."),
    "already_used": _("This coupon has already been used."),
    "revoked": _("This coupon has been revoked."),
    "locked_by_other_order": _("This coupon is locked to another order."),
    "not_issued": _("This coupon has not been issued to a member."),
    "not_yet_valid": _("This coupon is not valid yet."),
    "audience_not_allowed": _("This coupon is for other members only."),
    "members_only": _("This coupon is for members only; a guest cannot use it."),
    "tier_not_allowed": _("This coupon is for members of other tiers only."),
    "channel_not_allowed": _("This coupon cannot be used on this channel."),
    "payment_method_not_allowed": _("This coupon cannot be used with this payment method."),
    "no_shipping_fee": _("The order has no shipping fee for this coupon to reduce."),
    "sku_not_in_order": _("The product this coupon is for is not in the order."),
    "no_applicable_items": _("No item of the order is covered by this coupon."),
    "below_threshold": _("The order amount this coupon covers is below its minimum spend."),
    "zero_discount": _("This coupon would take nothing off this order."),
    "stacking_conflict": _("Another coupon of the same stacking group is already applied."),
    "exclusive_conflict": _("This coupon cannot be combined with the other coupons."),
    "duplicate_code": _("This code is given more than once."),
    "not_applicable": _("This coupon does not apply to this order."),
    # the code was not evaluated: the member's or device's code-lookup allowance ran out (issue #17)
    "rate_limited": _("Too many code lookups; this code was not checked. Retry after the time in Retry-After."),
}


def refusal_message(reason: str) -> str:
    """The sentence for a refusal reason, in the active language (an unknown reason: the general sentence)."""
    return str(REFUSAL_MESSAGES.get(reason, REFUSAL_MESSAGES["not_applicable"]))


class NotApplicable(BusinessRuleViolation):
    code = "not_applicable"
    default_message = _("This coupon does not apply to this order.")

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or refusal_message(reason), details={"reason": reason})


class OrderIdMismatch(DomainError):
    code = "order_id_mismatch"
    status = 400
    default_message = _("order_id and order.order_id differ; give one order id, or the same in both places.")


class PolicyNotEditable(InvalidState):
    code = "policy_not_editable"
    default_message = _(
        "Only draft or rejected policies can be edited; an approved policy cannot be changed.")


class SelfApproval(PermissionDenied):
    code = "self_approval"
    default_message = _("A policy cannot be approved or rejected by its author.")


class PolicyNotApproved(BusinessRuleViolation):
    code = "policy_not_approved"
    default_message = _("Only an approved policy can back an inventory.")
