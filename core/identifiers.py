"""One rule for the identifiers integrators send (issue #17, R-NFR-4): ``member_id``, ``order_id``, ``device_id``
and references, on every path that takes them; a bad value is ``400 invalid``, never a 500.

Design: docs/design/api.md#core-identifiers.
"""
from __future__ import annotations

import unicodedata
from typing import Any

from django.utils.translation import gettext, gettext_lazy as _
from rest_framework import serializers

from core.exceptions import InvalidInput

_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _is_space(char: str) -> bool:
    return char in " \t\r\n" or unicodedata.category(char) == "Zs"


def _trim(value: str) -> str:
    start, end = 0, len(value)
    while start < end and _is_space(value[start]):
        start += 1
    while end > start and _is_space(value[end - 1]):
        end -= 1
    return value[start:end]


def normalise_identifier(value: str, *, max_length: int = 64, path_segment: bool = False) -> str:
    """The identifier's normal form, or ValueError with a sentence saying what is wrong (in the active language)."""
    text = unicodedata.normalize("NFC", _trim(value))
    if not text:
        raise ValueError(gettext("This field may not be blank."))
    if len(text) > max_length:
        raise ValueError(gettext("Ensure this field has no more than %(max)d characters.") % {"max": max_length})
    for char in text:
        if unicodedata.category(char) in _BAD_CATEGORIES:
            raise ValueError(gettext("Control and invisible formatting characters (here U+%(code)04X) are not "
                                     "allowed.") % {"code": ord(char)})
    if path_segment and ("/" in text or "\\" in text or text in (".", "..")):
        raise ValueError(gettext("“/”, “\\” and the names “.” and “..” are not allowed: this id is part of URLs."))
    return text


class IdentifierField(serializers.CharField):
    """A serializer field applying ``normalise_identifier``; the error names the field like any DRF error."""

    default_error_messages = {"identifier": _("Not a valid identifier.")}

    def __init__(self, *, path_segment: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs["trim_whitespace"] = False  # normalise_identifier trims, by the one rule
        self.path_segment = path_segment
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        if self.allow_blank and not _trim(text):
            return ""  # an optional id sent as spaces is an id not sent (risk context: "leaving it out")
        try:
            return normalise_identifier(text, max_length=self.max_length or 64, path_segment=self.path_segment)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="identifier") from exc


def member_id_field(**kwargs: Any) -> IdentifierField:
    return IdentifierField(path_segment=True, min_length=1, max_length=64, **kwargs)


def identifier_from_path(value: str, *, name: str, max_length: int = 64) -> str:
    """An identifier taken from the URL (``members/{member_id}/…``): the same rule, as ``400 invalid`` naming it."""
    try:
        return normalise_identifier(value, max_length=max_length, path_segment=True)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc}", details={"fields": {name: [str(exc)]}}) from exc
