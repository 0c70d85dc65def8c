from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin_confirm import confirm_action
from core.admin import TenantExportActionMixin, TenantScopedAdmin
from events.models import Event, EventAllowedMember, EventParticipant, EventStaffMember
from events.services import allow_list_changed, event_save, staff_member_add, staff_member_remove
from django.utils.module_loading import import_string
from core.exceptions import DomainError

EVENT_CLONE = "draws.templates.event_clone"


class AllowedMemberInline(admin.TabularInline):
    model = EventAllowedMember
    fields = ["member_id"]
    extra = 1
    verbose_name_plural = _("allow-list (used when 'allow list only' is ticked)")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # an allow-list row holds no history; removing one is an ordinary edit of the configuration


@admin.register(Event)
class EventAdmin(TenantExportActionMixin, TenantScopedAdmin):
    list_display = ["name", "tenant", "public_id", "status", "starts_at", "ends_at", "recurrence",
                    "participant_count", "max_participants"]
    list_filter = ["status", "recurrence", "tenant"]
    search_fields = ["name", "public_id"]
    date_hierarchy = "starts_at"
    # Links to the event's campaign report (issue #20); extends import-export's form, which keeps its export button.
    change_form_template = "admin/events/event/change_form.html"
    readonly_fields = ["public_id", "participant_count", "previous", "created_at"]
    inlines = [AllowedMemberInline]
    fieldsets = [
        (None, {"fields": ["name", "description", "status"]}),
        (_("Period"), {"fields": ["starts_at", "ends_at", "registration_ends_at", "recurrence", "previous"],
                       "description": _("Participation (entries, claims from a pool) runs from the start to the end. "
                                        "Codes handed out by partners can be registered until the registration end "
                                        "(empty = the end). Coupon validity is set on the policy.")}),
        (_("Participation"), {"fields": ["max_participants", "entries_per_member", "participant_count",
                                      "require_redeemed_coupon", "allow_list_only"]}),
        (_("Identifiers"), {"fields": ["public_id", "created_at"]}),
    ]

    actions = ["clone_as_template"]

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        event_save(event=obj, actor=self.actor(request))

    @admin.action(description=_("Copy the selected events as templates (with their pools and draws)"),
                  permissions=["add"])
    def clone_as_template(self, request: HttpRequest, queryset: QuerySet) -> None:
        event_clone = import_string(EVENT_CLONE)  # draws sits above events: by dotted path
        for event in queryset.select_related("tenant"):
            try:
                copy = event_clone(event=event, actor=self.actor(request))
            except DomainError as exc:
                self.message_user(request, _("Not copied: “%(name)s”: %(error)s") % {
                    "name": event.name, "error": exc.message}, messages.ERROR)
                continue
            self.message_user(request, _("Copied “%(name)s” as the draft “%(copy)s” with its pools and draws.") % {
                "name": event.name, "copy": copy.name}, messages.SUCCESS)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        with transaction.atomic():
            added = []
            for row in formset.save(commit=False):
                row.tenant_id = form.instance.tenant_id
                row.member_id = row.member_id.strip()
                row.save()
                added.append(row.member_id)
            removed = [row.member_id for row in formset.deleted_objects]
            for row in formset.deleted_objects:
                row.delete()
            allow_list_changed(event=form.instance, added=added, removed=removed, actor=self.actor(request))


@admin.register(EventParticipant)
class EventParticipantAdmin(TenantExportActionMixin, TenantScopedAdmin):
    """Read-only: entries are made and cancelled by members through the API."""

    list_display = ["member_id", "event", "entry_no", "channel", "joined_at", "cancelled_at"]
    list_filter = ["channel", ("cancelled_at", admin.EmptyFieldListFilter), "tenant"]
    search_fields = ["member_id", "event__public_id"]
    list_select_related = ["event"]
    raw_id_fields = ["event"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EventStaffMember)
class EventStaffMemberAdmin(TenantScopedAdmin):
    """The tenant's staff list (R-EVT-4): these members are never drawn."""

    list_display = ["member_id", "tenant", "note", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["member_id", "note"]
    fields = ["member_id", "note"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    actions = ["remove"]

    @admin.action(description=_("Remove the selected members from the staff list"), permissions=["add"])
    @confirm_action()
    def remove(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for staff in queryset.select_related("tenant"):
            staff_member_remove(staff=staff, actor=self.actor(request))
            done += 1
        self.message_user(request, ngettext("Removed %(count)d member from the staff list.",
                                            "Removed %(count)d members from the staff list.", done) % {"count": done},
                          messages.SUCCESS)

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        staff = staff_member_add(tenant=obj.tenant, member_id=obj.member_id, note=obj.note, actor=self.actor(request))
        obj.pk = staff.pk
