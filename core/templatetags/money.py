"""``{% load money %}{{ amount|money:tenant }}`` — an integer minor-unit amount in a currency's format;
``{{ count|number }}`` — a count with the language's thousands separators (issue #11)."""
from __future__ import annotations

from typing import Any

from django import template

from core.money import currency_of, format_money, format_number

register = template.Library()


@register.filter
def money(amount_minor: Any, currency: Any = "KRW") -> str:
    """``currency`` is an ISO code, or an object with a currency (a tenant, or anything with ``.tenant``)."""
    if amount_minor in (None, ""):
        return ""
    code = currency if isinstance(currency, str) else currency_of(currency)
    return format_money(int(amount_minor), code)


@register.filter
def number(value: Any) -> str:
    """Counts (codes, rows, coupons) grouped for reading: 1000000 → 1,000,000. Not for ids, URLs or attributes."""
    if value in (None, ""):
        return ""
    try:
        return format_number(int(value))
    except (TypeError, ValueError):
        return str(value)
