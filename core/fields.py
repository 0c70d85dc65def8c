"""Small shared helpers for models: public identifiers and money."""
from __future__ import annotations

import re
import secrets

from django import forms
from django.db import models
from core.money import format_number

# The unambiguous alphabet of SPEC R-CODE-1 (no I, O, 0, 1), reused for public identifiers.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PUBLIC_ID_LENGTH = 16


def new_public_id() -> str:
    """16 characters from a CSPRNG (80 bits): never sequential, safe to put in a public URL (R-CODE-2)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))


class PublicIdField(models.CharField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", PUBLIC_ID_LENGTH)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("default", new_public_id)
        super().__init__(*args, **kwargs)


class MoneyField(models.BigIntegerField):
    """An amount in the tenant currency's minor unit (KRW: won). Integers only — never floats near money."""

    description = "Integer amount in minor units"

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": MoneyFormField, **kwargs})


class MoneyInput(forms.TextInput):
    """An amount as the operator reads it: ``30,000``, not ``30000`` (issue #20). Typed with or without the
    separators (or a ₩ sign); a text box, since a number box can show no grouping."""

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__({"inputmode": "numeric", "autocomplete": "off", "class": "money-input", **(attrs or {})})

    def format_value(self, value):
        if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip())):
            return format_number(int(value))
        return super().format_value(value)


class MoneyFormField(forms.IntegerField):
    widget = MoneyInput

    def to_python(self, value):
        if isinstance(value, str):
            value = re.sub(r"[\s,₩]", "", value)
        return super().to_python(value)

    def widget_attrs(self, widget):
        # IntegerField would add min/max/step, which only a number box understands
        return forms.Field.widget_attrs(self, widget)
