from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from core.admin import TenantExportActionMixin, TenantScopedAdmin
from events.models import Event
from events.services import event_save


@admin.register(Event)
class EventAdmin(TenantExportActionMixin, TenantScopedAdmin):
    list_display = ["name", "tenant", "public_id", "status", "starts_at", "ends_at", "recurrence"]
    list_filter = ["status", "recurrence", "tenant"]
    search_fields = ["name", "public_id"]
    date_hierarchy = "starts_at"
    readonly_fields = ["public_id", "created_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "status"]}),
        ("Period", {"fields": ["starts_at", "ends_at", "recurrence"]}),
        ("Identifiers", {"fields": ["public_id", "created_at"]}),
    ]

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        event_save(event=obj, actor=self.actor(request))
