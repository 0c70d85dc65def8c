"""A model's own validation (``full_clean``) as the domain's ``InvalidInput``: the message names each field."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from core.exceptions import InvalidInput


def validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


def full_clean(obj: Any, exclude: list[str] | None = None) -> None:
    """``obj.full_clean`` raising ``InvalidInput`` (details: the message per field) instead of ValidationError."""
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc), details=getattr(exc, "message_dict", {})) from exc
