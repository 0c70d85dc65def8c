"""Validation of untrusted checkout input (the Order object and the ``codes`` list of API.md) for the API layer.

Strict on purpose: every amount is a JSON integer in minor units (no floats, no numeric strings, no booleans),
every scope field of a line is required (a missing category must not slip past an ``exclude_categories`` rule), and
``virtual`` is required (the risk rule of seed 002 depends on it). Anything else raises ``OrderInvalid`` /
``CodesInvalid`` — never another exception — with a message naming the first problem and, in
``details["fields"]``, up to ``MAX_REPORTED_ERRORS`` problems keyed by path (``items[3].unit_price``).
Unknown keys are ignored so clients may send more than the contract (API.md: extending is fine).
"""
from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from collections.abc import Mapping
from typing import Any

from core.exceptions import InvalidInput
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
        more = f" (and {self.count - 1} more problem{'s' if self.count > 2 else ''})" if self.count > 1 else ""
        raise cls(f"{what}: {path} {problem}{more}.", {"fields": dict(self.fields)})


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _integer(errors: _Errors, data: Mapping, key: str, path: str, *, minimum: int, maximum: int) -> int | None:
    if key not in data:
        errors.add(path, "is required")
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, f"must be an integer in minor units, not {_describe(value)}")
        return None
    if value < minimum:
        errors.add(path, f"must be at least {minimum}")
        return None
    if value > maximum:
        errors.add(path, f"must be at most {maximum}")
        return None
    return value


def _text(errors: _Errors, data: Mapping, key: str, path: str) -> str | None:
    if key not in data:
        errors.add(path, "is required")
        return None
    value = data[key]
    if not isinstance(value, str):
        errors.add(path, f"must be a string, not {_describe(value)}")
        return None
    if not value.strip():
        errors.add(path, "must not be empty")
        return None
    if len(value) > MAX_TEXT:
        errors.add(path, f"must be at most {MAX_TEXT} characters")
        return None
    if not value.isprintable():
        errors.add(path, "must not contain control characters")
        return None
    return value


def _choice(errors: _Errors, data: Mapping, key: str, choices: tuple[str, ...]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or value not in choices:
        shown = repr(value) if isinstance(value, str) and len(value) <= MAX_TEXT else _describe(value)
        errors.add(key, f"must be one of {', '.join(choices)} (got {shown})")
        return None
    return value


def _line(errors: _Errors, item: Any, index: int) -> OrderLine | None:
    prefix = f"items[{index}]"
    if not isinstance(item, Mapping):
        errors.add(prefix, f"must be an object, not {_describe(item)}")
        return None
    before = errors.count
    texts = {key: _text(errors, item, key, f"{prefix}.{key}") for key in ("sku", "spu", "category", "shop")}
    price = _integer(errors, item, "unit_price", f"{prefix}.unit_price", minimum=1, maximum=MAX_LINE_TOTAL)
    quantity = _integer(errors, item, "quantity", f"{prefix}.quantity", minimum=1, maximum=MAX_QUANTITY)
    virtual = item.get("virtual")
    if "virtual" not in item:
        errors.add(f"{prefix}.virtual", "is required")
    elif not isinstance(virtual, bool):
        errors.add(f"{prefix}.virtual", f"must be true or false, not {_describe(virtual)}")
    if price is not None and quantity is not None and price * quantity > MAX_LINE_TOTAL:
        errors.add(f"{prefix}", f"total unit_price × quantity must be at most {MAX_LINE_TOTAL}")
    if errors.count != before:
        return None
    return OrderLine(sku=texts["sku"], spu=texts["spu"], category=texts["category"],  # type: ignore[arg-type]
                     shop=texts["shop"], unit_price=price, quantity=quantity,  # type: ignore[arg-type]
                     virtual=virtual)  # type: ignore[arg-type]


def validate_order_payload(data: Any) -> Order:
    """The Order object of API.md, checked; raises OrderInvalid (a ValueError) for any bad input."""
    errors = _Errors()
    if not isinstance(data, Mapping):
        raise OrderInvalid(_("The order must be an object, not %(type)s.") % {"type": _describe(data)},
                           {"fields": {"order": "not an object"}})
    order_id = _text(errors, data, "order_id", "order_id")
    items = data.get("items")
    lines: list[OrderLine] = []
    if "items" not in data:
        errors.add("items", "is required")
    elif not isinstance(items, (list, tuple)):
        errors.add("items", f"must be a list, not {_describe(items)}")
    elif not items:
        errors.add("items", "must contain at least one line")
    elif len(items) > MAX_LINES:
        # Refused before looking at any line: the size alone decides, and a huge list costs nothing more.
        errors.add("items", f"has {len(items)} lines; an order may have at most {MAX_LINES}")
    else:
        for index, item in enumerate(items):
            line = _line(errors, item, index)
            if line is not None:
                lines.append(line)
    shipping_fee = _integer(errors, data, "shipping_fee", "shipping_fee", minimum=0, maximum=MAX_SHIPPING_FEE)
    channel = _choice(errors, data, "channel", CHANNELS)
    payment_method = _choice(errors, data, "payment_method", PAYMENT_METHODS)
    errors.raise_if_any(OrderInvalid, "The order is not valid")
    return Order(order_id=order_id, items=tuple(lines), shipping_fee=shipping_fee,  # type: ignore[arg-type]
                 channel=channel, payment_method=payment_method)


def normalise_code(code: str) -> str:
    """Codes are case-insensitive and ignore spaces and '-' (API.md, R-CODE-4)."""
    return code.upper().replace(" ", "").replace("-", "")


def validate_codes_payload(data: Any) -> tuple[str, ...]:
    """The ``codes`` list of /checkout/validate, normalised; raises CodesInvalid for bad input or duplicates."""
    if not isinstance(data, (list, tuple)):
        raise CodesInvalid(_("codes must be a list of strings, not %(type)s.") % {"type": _describe(data)},
                           {"fields": {"codes": "not a list"}})
    if not data:
        raise CodesInvalid(_("codes must contain at least one code."), {"fields": {"codes": "empty"}})
    if len(data) > MAX_CODES:
        raise CodesInvalid(_("codes has %(count)d entries; at most %(max)d codes can be checked at once.")
                           % {"count": len(data), "max": MAX_CODES},
                           {"fields": {"codes": f"more than {MAX_CODES}"}})
    errors = _Errors()
    codes: list[str] = []
    first_at: dict[str, int] = {}
    for index, raw in enumerate(data):
        path = f"codes[{index}]"
        if not isinstance(raw, str):
            errors.add(path, f"must be a string, not {_describe(raw)}")
            continue
        code = normalise_code(raw)
        if not code:
            errors.add(path, "must not be empty")
        elif len(code) > MAX_CODE_LENGTH:
            errors.add(path, f"must be at most {MAX_CODE_LENGTH} characters")
        elif not (code.isascii() and code.isalnum()):
            errors.add(path, "may contain only letters and digits (spaces and '-' are ignored)")
        elif code in first_at:
            errors.add(path, f"repeats codes[{first_at[code]}] ({code})")
        else:
            first_at[code] = index
            codes.append(code)
    errors.raise_if_any(CodesInvalid, "The codes are not valid")
    return tuple(codes)
