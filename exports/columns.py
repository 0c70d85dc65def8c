"""What each export kind's sheet holds: one list of columns per kind, the only place labels are written.

Design: docs/design/reports-and-exports.md#exports-columns.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from core.spreadsheets import DATETIME_FORMAT, MONEY_FORMAT  # noqa: F401  (the sheets' formats live in core)

TEXT, INT, MONEY, DATETIME = "text", "int", "money", "datetime"


@dataclass(frozen=True)
class Column:
    key: str
    label: object  # str or a lazy translation
    source: str
    type: str = TEXT


USAGES = [
    Column("used_at", _("Used at"), "used_at", DATETIME),
    Column("refunded_at", _("Refunded at"), "refunded_at", DATETIME),
    Column("order_id", _("Order"), "order_id"),
    Column("member_id", _("Member"), "member_id"),
    Column("code", _("Coupon code"), "coupon__code"),
    Column("order_amount", _("Order amount"), "order_amount", MONEY),
    Column("discount", _("Discount"), "discount", MONEY),
    Column("event", _("Event"), "inventory__event__name"),
    Column("policy", _("Policy"), "inventory__policy__name"),
    Column("inventory", _("Inventory"), "inventory__name"),
    Column("batch", _("Batch"), "coupon__batch__batch_code"),
    Column("channel", _("Channel"), "channel"),
    Column("payment_method", _("Payment method"), "payment_method"),
    Column("client", _("API client"), "client__name"),
]

ISSUES = [
    Column("issued_at", _("Issued at"), "issued_at", DATETIME),
    Column("member_id", _("Member"), "member_id"),
    Column("code", _("Coupon code"), "coupon__code"),
    Column("status", _("Coupon status"), "coupon__status"),
    Column("valid_until", _("Valid until"), "coupon__valid_until", DATETIME),
    Column("event", _("Event"), "inventory__event__name"),
    Column("policy", _("Policy"), "inventory__policy__name"),
    Column("inventory", _("Inventory"), "inventory__name"),
    Column("batch", _("Batch"), "coupon__batch__batch_code"),
    Column("via", _("Issued via"), "via"),
    Column("channel", _("Channel"), "channel"),
    Column("client", _("API client"), "client__name"),
    Column("operator", _("Operator"), "operator__username"),
]

CODES = [
    Column("code", _("Coupon code"), "code"),
    Column("status", _("Status"), "status"),
    Column("member_id", _("Member"), "member_id"),
    Column("issued_at", _("Issued at"), "issued_at", DATETIME),
    Column("valid_from", _("Valid from"), "valid_from", DATETIME),
    Column("valid_until", _("Valid until"), "valid_until", DATETIME),
    Column("used_at", _("Used at"), "used_at", DATETIME),
    Column("batch", _("Batch"), "batch__batch_code"),
]

# A partner hand-over (R-PART-4) gives the partner the codes and nothing else about them.
PARTNER_CODES = [Column("code", _("code"), "code")]

WINNERS = [
    Column("event", _("Event"), "draw__event__name"),
    Column("draw", _("Draw"), "draw__public_id"),
    Column("draw_name", _("Draw name"), "draw__name"),
    Column("round", _("Round"), "draw__round", INT),
    Column("drawn_at", _("Drawn at"), "draw__finished_at", DATETIME),
    Column("tier", _("Tier"), "tier__position", INT),
    Column("tier_name", _("Tier name"), "tier__name"),
    Column("rank", _("Rank"), "rank", INT),
    Column("member_id", _("Member"), "member_id"),
    Column("code", _("Coupon code"), "coupon__code"),
    Column("grant_error", _("Grant error"), "grant_error"),
    Column("forfeited_at", _("Forfeited at"), "forfeited_at", DATETIME),
]

COLUMNS: dict[str, list[Column]] = {"usages": USAGES, "issues": ISSUES, "codes": CODES, "winners": WINNERS}

SHEET_TITLES: dict[str, object] = {"usages": _("Usages"), "issues": _("Issues"), "codes": _("Codes"),
                                   "winners": _("Winners")}
