"""Reads used by the API and the console."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet, Sum

from core.models import Tenant
from rewards.models import PointsEntry


def points_balance(*, tenant: Tenant, member_id: str, now: datetime) -> int:
    """Spendable points: the unspent part of every credit not yet past its expiry. Equal to the sum of the ledger
    once the expiry job has run; before that, credits past ``expires_at`` already no longer count."""
    total = PointsEntry.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now), tenant=tenant, member_id=member_id, amount__gt=0,
        remaining__gt=0).aggregate(total=Sum("remaining"))["total"]
    return int(total or 0)


def points_entries(*, tenant: Tenant, member_id: str) -> QuerySet[PointsEntry]:
    """The member's ledger, newest first."""
    return PointsEntry.objects.filter(tenant=tenant, member_id=member_id).order_by("-created_at", "-id")
