"""Marketing events (R-EVT-1). Participation and draws arrive with issue #7."""
from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from core.fields import PublicIdField
from core.models import Tenant


class Event(models.Model):
    class Status(models.TextChoices):
        DRAFT = "DRAFT", "draft"
        OPEN = "OPEN", "open"
        CLOSED = "CLOSED", "closed"
        CANCELLED = "CANCELLED", "cancelled"

    class Recurrence(models.TextChoices):
        NONE = "none", "does not repeat"
        DAILY = "daily", "daily"
        WEEKLY = "weekly", "weekly"
        MONTHLY = "monthly", "monthly"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="events")
    public_id = PublicIdField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    recurrence = models.CharField(max_length=16, choices=Recurrence.choices, default=Recurrence.NONE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="event_ends_after_start"),
            models.CheckConstraint(condition=Q(status__in=["DRAFT", "OPEN", "CLOSED", "CANCELLED"]),
                                   name="event_status_valid"),
            models.CheckConstraint(condition=Q(recurrence__in=["none", "daily", "weekly", "monthly"]),
                                   name="event_recurrence_valid"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "starts_at"], name="event_tenant_status")]

    def __str__(self) -> str:
        return self.name
