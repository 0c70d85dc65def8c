"""Small shared helpers for models: public identifiers and money."""
from __future__ import annotations

import secrets

from django.db import models

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
