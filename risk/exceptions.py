"""Risk refusals (API.md: 429 rate_limited with Retry-After, 422 budget_exhausted; 403 member_blocked)."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.exceptions import BusinessRuleViolation, DomainError, InvalidInput, PermissionDenied


class FrequencyLimited(DomainError):
    """R-RISK-1. ``details["retry_after"]`` becomes the Retry-After header (core/api/errors.py)."""

    code = "rate_limited"
    status = 429
    default_message = _("Too many requests today; try again tomorrow.")


class MemberBlocked(PermissionDenied):
    code = "member_blocked"
    default_message = _("This member is blocked from claiming and using coupons.")


class BudgetExhausted(BusinessRuleViolation):
    code = "budget_exhausted"
    default_message = _("The budget of this coupon is exhausted.")


class RiskContextRequired(InvalidInput):
    """R-RISK-1: an active daily limit counts a dimension (device id, phone, postcode, IP) the request did not carry;
    leaving the field out must not dodge the limit. ``details["fields"]`` names the missing fields."""

    code = "risk_context_required"
    default_message = _("This request needs its risk context: a daily limit counts a field it did not give.")


class UnsafeWebhookUrl(InvalidInput):
    """A webhook URL that is not http(s) or whose host resolves to a loopback, private, link-local, multicast or
    reserved address (SSRF guard; allowed by COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS)."""

    code = "unsafe_url"
    default_message = _("Webhooks go to public http(s) addresses only.")
