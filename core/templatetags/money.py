"""``{% load money %}{{ amount|money:tenant }}`` — an integer minor-unit amount in a currency's format."""
from __future__ import annotations

from typing import Any

from django import template

from core.money import currency_of, format_money

register = template.Library()


@register.filter
def money(amount_minor: Any, currency: Any = "KRW") -> str:
    """``currency`` is an ISO code, or an object with a currency (a tenant, or anything with ``.tenant``)."""
    if amount_minor in (None, ""):
        return ""
    code = currency if isinstance(currency, str) else currency_of(currency)
    return format_money(int(amount_minor), code)
