"""Validation of untrusted checkout input (the Order object and the ``codes`` list of API.md) for the API layer.

Strict on purpose: raises only ``OrderInvalid`` / ``CodesInvalid``, never another exception.
Design: docs/design/discounts.md#coupons-discounts-payload.
"""
from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from collections.abc import Mapping
from typing import Any

from core.exceptions import InvalidInput
from coupons.codes import normalise_code
from coupons.discounts.inputs import CHANNELS, PAYMENT_METHODS, Order, OrderLine

MAX_LINES = 1_000
MAX_LINE_TOTAL = 10**12  # per line, unit_price × quantity, minor units
MAX_SHIPPING_FEE = 10**12
MAX_QUANTITY = 1_000_000
MAX_TEXT = 64  # sku, spu, category, shop and order_id, like the model's 64-character references
MAX_CODES = 20
MAX_CODE_LENGTH = 48  # CouponCode.code
MAX_REPORTED_ERRORS = 20


class CheckoutInputInvalid(InvalidInput, ValueError):
    """Bad checkout input: HTTP 400 through the API error handler, and a ValueError for plain callers."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details or {})


class OrderInvalid(CheckoutInputInvalid):
    code = "invalid_order"
    default_message = gettext_lazy("The order is not valid.")


class CodesInvalid(CheckoutInputInvalid):
    code = "invalid_codes"
    default_message = gettext_lazy("The list of codes is not valid.")


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.count = 0

    def add(self, path: str, problem: str) -> None:
        self.count += 1
        if len(self.fields) < MAX_REPORTED_ERRORS and path not in self.fields:
            self.fields[path] = problem

    def raise_if_any(self, cls: type[CheckoutInputInvalid], what: str) -> None:
        if not self.count:
            return
        path, problem = next(iter(self.fields.items()))
        more = ""
        if self.count > 1:
            more = ngettext(" (and %(count)d more problem)", " (and %(count)d more problems)",
                            self.count - 1) % {"count": self.count - 1}
        raise cls(_("%(what)s: %(path)s %(problem)s%(more)s.") % {"what": what, "path": path, "problem": problem,
                                                                   "more": more},
                  {"fields": dict(self.fields)})


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return _("a boolean")
    if isinstance(value, float):
        return _("a decimal number")
    if isinstance(value, str):
        return _("a string")
    if value is None:
        return _("null")
    if isinstance(value, (list, tuple)):
        return _("a list")
    if isinstance(value, Mapping):
        return _("an object")
    return type(value).__name__


def _integer(errors: _Errors, data: Mapping, key: str, path: str, *, minimum: int, maximum: int,
             default: int | None = None) -> int | None:
    if key not in data:
        if default is not None:
            return default
        errors.add(path, _("is required"))
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, _("must be an integer in minor units, not %(type)s") % {"type": _describe(value)})
        return None
    if value < minimum:
        errors.add(path, _("must be at least %(min)d") % {"min": minimum})
        return None
    if value > maximum:
        errors.add(path, _("must be at most %(max)d") % {"max": maximum})
        return None
    return value


def _text(errors: _Errors, data: Mapping, key: str, path: str, *, optional: bool = False) -> str | None:
    """A required text is non-blank; an optional one may be absent, null or empty (→ "")."""
    if key not in data or (optional and data[key] is None):
        if optional:
            return ""
        errors.add(path, _("is required"))
        return None
    value = data[key]
    if not isinstance(value, str):
        errors.add(path, _("must be a string, not %(type)s") % {"type": _describe(value)})
        return None
    if optional and value == "":
        return ""
    if not value.strip():
        errors.add(path, _("must not be empty"))
        return None
    if len(value) > MAX_TEXT:
        errors.add(path, _("must be at most %(max)d characters") % {"max": MAX_TEXT})
        return None
    if not value.isprintable():
        errors.add(path, _("must not contain control characters"))
        return None
    return value


def _choice(errors: _Errors, data: Mapping, key: str, choices: tuple[str, ...]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or value not in choices:
        shown = repr(value) if isinstance(value, str) and len(value) <= MAX_TEXT else _describe(value)
        errors.add(key, _("must be one of %(choices)s (got %(value)s)") % {"choices": ", ".join(choices),
                                                                           "value": shown})
        return None
    return value


OPTIONAL_LINE_TEXTS = ("spu", "category", "shop")


def _line(errors: _Errors, item: Any, index: int) -> OrderLine | None:
    prefix = f"items[{index}]"
    if not isinstance(item, Mapping):
        errors.add(prefix, _("must be an object, not %(type)s") % {"type": _describe(item)})
        return None
    before = errors.count
    texts = {"sku": _text(errors, item, "sku", f"{prefix}.sku")}
    texts.update({key: _text(errors, item, key, f"{prefix}.{key}", optional=True) for key in OPTIONAL_LINE_TEXTS})
    price = _integer(errors, item, "unit_price", f"{prefix}.unit_price", minimum=1, maximum=MAX_LINE_TOTAL)
    quantity = _integer(errors, item, "quantity", f"{prefix}.quantity", minimum=1, maximum=MAX_QUANTITY)
    virtual = item.get("virtual")
    if virtual is None:  # absent or null: a physical line (docs/API.md)
        virtual = False
    elif not isinstance(virtual, bool):
        errors.add(f"{prefix}.virtual", _("must be true or false, not %(type)s") % {"type": _describe(virtual)})
    if price is not None and quantity is not None and price * quantity > MAX_LINE_TOTAL:
        errors.add(f"{prefix}", _("total unit_price × quantity must be at most %(max)d") % {"max": MAX_LINE_TOTAL})
    if errors.count != before:
        return None
    return OrderLine(sku=texts["sku"], spu=texts["spu"], category=texts["category"],  # type: ignore[arg-type]
                     shop=texts["shop"], unit_price=price, quantity=quantity,  # type: ignore[arg-type]
                     virtual=virtual)


def validate_order_payload(data: Any) -> Order:
    """The Order object of docs/API.md, checked; raises OrderInvalid (a ValueError) for any bad input.

    ``order_id`` is optional here ("" when absent): the request may carry it at its top level instead, and the API
    layer (``coupons.api.serializers.resolve_order_id``) decides which one holds and that both agree."""
    errors = _Errors()
    if not isinstance(data, Mapping):
        raise OrderInvalid(_("The order must be an object, not %(type)s.") % {"type": _describe(data)},
                           {"fields": {"order": _("not an object")}})
    order_id = _text(errors, data, "order_id", "order_id", optional=True)
    items = data.get("items")
    lines: list[OrderLine] = []
    if "items" not in data:
        errors.add("items", _("is required"))
    elif not isinstance(items, (list, tuple)):
        errors.add("items", _("must be a list, not %(type)s") % {"type": _describe(items)})
    elif not items:
        errors.add("items", _("must contain at least one line"))
    elif len(items) > MAX_LINES:
        # Refused before looking at any line: the size alone decides, and a huge list costs nothing more.
        errors.add("items", _("has %(count)d lines; an order may have at most %(max)d")
                   % {"count": len(items), "max": MAX_LINES})
    else:
        for index, item in enumerate(items):
            line = _line(errors, item, index)
            if line is not None:
                lines.append(line)
    shipping_fee = _integer(errors, data, "shipping_fee", "shipping_fee", minimum=0, maximum=MAX_SHIPPING_FEE,
                            default=0)
    channel = _choice(errors, data, "channel", CHANNELS)
    payment_method = _choice(errors, data, "payment_method", PAYMENT_METHODS)
    errors.raise_if_any(OrderInvalid, _("The order is not valid"))
    return Order(order_id=order_id, items=tuple(lines), shipping_fee=shipping_fee,  # type: ignore[arg-type]
                 channel=channel, payment_method=payment_method)


def validate_codes_payload(data: Any) -> tuple[str, ...]:
    """The ``codes`` list of /checkout/validate, normalised; raises CodesInvalid for bad input or duplicates."""
    if not isinstance(data, (list, tuple)):
        raise CodesInvalid(_("codes must be a list of strings, not %(type)s.") % {"type": _describe(data)},
                           {"fields": {"codes": _("not a list")}})
    if not data:
        raise CodesInvalid(_("codes must contain at least one code."), {"fields": {"codes": _("empty")}})
    if len(data) > MAX_CODES:
        raise CodesInvalid(_("codes has %(count)d entries; at most %(max)d codes can be checked at once.")
                           % {"count": len(data), "max": MAX_CODES},
                           {"fields": {"codes": _("more than %(max)d") % {"max": MAX_CODES}}})
    errors = _Errors()
    codes: list[str] = []
    first_at: dict[str, int] = {}
    for index, raw in enumerate(data):
        path = f"codes[{index}]"
        if not isinstance(raw, str):
            errors.add(path, _("must be a string, not %(type)s") % {"type": _describe(raw)})
            continue
        code = normalise_code(raw)
        if not code:
            errors.add(path, _("must not be empty"))
        elif len(code) > MAX_CODE_LENGTH:
            errors.add(path, _("must be at most %(max)d characters") % {"max": MAX_CODE_LENGTH})
        elif not (code.isascii() and code.isalnum()):
            errors.add(path, _("may contain only letters and digits (spaces and '-' are ignored)"))
        elif code in first_at:
            errors.add(path, _("repeats codes[%(index)d] (%(code)s)") % {"index": first_at[code], "code": code})
        else:
            first_at[code] = index
            codes.append(code)
    errors.raise_if_any(CodesInvalid, _("The codes are not valid"))
    return tuple(codes)
