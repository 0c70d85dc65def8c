"""Field validators shared by models (kept import-light: models import this module)."""
from __future__ import annotations

import zoneinfo

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value: str) -> None:
    """A tenant's time zone is an IANA name (``Asia/Seoul``), so dates shown in the console are unambiguous."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("“%(value)s” is not an IANA time zone name (e.g. Asia/Seoul)."),
                              code="invalid_time_zone", params={"value": value}) from None
