"""Reads of the risk app used by the console."""
from __future__ import annotations

from django.db.models import QuerySet

from risk.models import Alarm


def unacknowledged_alarms(*, tenant_id: int | None) -> QuerySet[Alarm]:
    """Alarms nobody has acknowledged yet: the tenant's, or every tenant's for ``None`` (superusers)."""
    alarms = Alarm.objects.filter(acknowledged_at__isnull=True)
    return alarms if tenant_id is None else alarms.filter(tenant_id=tenant_id)
