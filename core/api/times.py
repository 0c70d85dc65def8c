"""One time convention for every timestamp the API answers (#19, docs/API.md "Times").

ISO 8601 to the second with the UTC offset of the tenant's time zone (``Tenant.time_zone``), always as ``±HH:MM``
(never ``Z``): ``2026-12-06T19:44:04+09:00``. The days an integrator reasons about — daily frequency limits, export
date ranges, birthdays — are the tenant's calendar days, so its timestamps read in the same zone.

Serializers hand datetimes through untouched (``REST_FRAMEWORK["DATETIME_FORMAT"] = None``) and
``TenantAPIView`` formats every datetime of a response here, once, before the response is stored for an
Idempotency-Key replay — so no endpoint can answer in another format.
"""
from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, tzinfo
from typing import Any

from django.conf import settings

# What every timestamp of a response matches (the contract test and the timestamp test use it).
TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


def tenant_zone(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # a bad value saved before validation existed
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def api_datetime(value: datetime, zone: tzinfo) -> str:
    if value.tzinfo is None:  # never stored so (USE_TZ); read as UTC rather than fail
        value = value.replace(tzinfo=zoneinfo.ZoneInfo("UTC"))
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def localise(data: Any, zone: tzinfo, depth: int = 0) -> Any:
    """``data`` with every datetime in it formatted (dicts and lists are changed in place and returned)."""
    if isinstance(data, datetime):
        return api_datetime(data, zone)
    if depth > 32:
        return data
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, (datetime, dict, list)):
                data[key] = localise(value, zone, depth + 1)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if isinstance(value, (datetime, dict, list)):
                data[index] = localise(value, zone, depth + 1)
    return data
