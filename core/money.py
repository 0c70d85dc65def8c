"""Money for people: integer minor units shown in a currency's own format (issue #11).

KRW has no minor unit, so 12300 is shown as ``₩12,300`` — never ``₩12,300.00``. Formatting follows the active
language's conventions (CLDR data through Babel); amounts stay integers until the very end.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel.numbers import format_currency, format_decimal, get_currency_precision
from django.contrib import admin
from django.utils import translation

# Django language → CLDR locale used for number conventions.
_LOCALES = {"ko": "ko_KR", "en": "en_US"}


def format_money(amount_minor: int | None, currency: str, *, language: str | None = None) -> str:
    """``format_money(12300, "KRW")`` → ``"₩12,300"``; None → ``""``."""
    if amount_minor is None:
        return ""
    value = Decimal(int(amount_minor)).scaleb(-get_currency_precision(currency))
    language = language or translation.get_language() or "en"
    locale = _LOCALES.get(language.split("-")[0], "en_US")
    return format_currency(value, currency, locale=locale, currency_digits=True)


def format_number(value: int | None, *, language: str | None = None) -> str:
    """A count for people, with the active language's grouping: ``format_number(1000000)`` → ``"1,000,000"``."""
    if value is None:
        return ""
    language = language or translation.get_language() or "en"
    return format_decimal(int(value), locale=_LOCALES.get(language.split("-")[0], "en_US"))


def currency_of(obj: Any) -> str:
    """The currency an object's amounts are in: its own ``currency``, else its tenant's."""
    currency = getattr(obj, "currency", None)
    if isinstance(currency, str) and len(currency) == 3:
        return currency
    tenant = getattr(obj, "tenant", None)
    return tenant.currency if tenant is not None else "KRW"


def money_column(field: str, description: Any, *, ordering: str | None = None) -> Any:
    """A ``list_display`` / ``readonly_fields`` entry showing ``field`` in the object's currency.

    Lists using it should ``list_select_related`` the tenant (one query, not one per row)::

        amount_display = money_column("amount", _("amount"))
        list_display = [..., "amount_display"]
    """

    @admin.display(description=description, ordering=ordering or field)
    def column(*args: Any) -> str:
        obj = args[-1]  # (model_admin, obj) as a ModelAdmin attribute, (obj) when listed as a plain callable
        return format_money(getattr(obj, field), currency_of(obj))

    column.__name__ = f"{field}_money"
    return column
