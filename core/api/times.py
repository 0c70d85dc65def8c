"""One time convention for every timestamp the API answers (#19, docs/API.md "Times"): ISO 8601 to the second,
in the tenant's UTC offset.

Design: docs/design/api.md#core-api-times.
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
