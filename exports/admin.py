"""Console "Exports" page (R-REP-1, R-REP-2): request an export with filters, watch its progress, download it.

The list is the tenant's exports with status, a progress bar and the download link; it reloads itself while any
export is being written. "Request an export" (the add page) is a form whose choices are the tenant's own events,
policies, inventories, batches, API clients and draws; a refused filter is shown on its field. Downloads go through
the tenant-scoped queryset, so another tenant's export is "not found" (R-TEN-3), and are audited.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import TenantScopedAdmin, user_tenant_id
from core.exceptions import DomainError
from core.models import ApiClient, Tenant
from core.spreadsheets import XLSX_CONTENT_TYPE as XLSX
from exports import services
from exports.models import Export
from exports.selectors import ALL_FILTERS, KIND_FILTERS
from partners.distribution import DistributionNotDistributed
from partners.models import Distribution
from coupons.models import CouponBatch, CouponInventory, CouponPolicy
from draws.models import Draw
from events.models import Event
import json


# Filters the API takes that this form has no field for (a distribution's codes are downloaded from its own page).
_OTHER_FILTERS = {"distribution": _("Distribution (API only)")}


class ExportRequestForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.all(), label=_("Tenant"),
                                    help_text=_("Superusers only: whose rows."))
    kind = forms.ChoiceField(choices=Export.Kind.choices, label=_("Kind"))
    event = forms.ModelChoiceField(queryset=None, required=False, label=_("Event"))
    policy = forms.ModelChoiceField(queryset=None, required=False, label=_("Policy"))
    inventory = forms.ModelChoiceField(queryset=None, required=False, label=_("Inventory"))
    batch = forms.ModelChoiceField(queryset=None, required=False, label=_("Batch"),
                                   help_text=_("Required for a batch's codes."))
    client = forms.ModelChoiceField(queryset=None, required=False, label=_("API client"))
    draw = forms.ModelChoiceField(queryset=None, required=False, label=_("Draw"), help_text=_("Draw winners only."))
    date_from = forms.DateField(required=False, label=_("From"),
                                help_text=_("YYYY-MM-DD, inclusive, in the tenant's time zone."),
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=_("To"), help_text=_("YYYY-MM-DD, inclusive."),
                              widget=forms.DateInput(attrs={"type": "date"}))
    header = forms.ChoiceField(choices=Export.Header.choices, initial=Export.Header.LABELS, label=_("Header row"),
                               help_text=_("Machine keys suit files that programs read."))

    def __init__(self, *args: Any, tenant_id: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        scoped = {"event": Event.objects.order_by("-id"), "policy": CouponPolicy.objects.order_by("-id"),
                  "inventory": CouponInventory.objects.order_by("-id"), "batch": CouponBatch.objects.order_by("-id"),
                  "client": ApiClient.objects.order_by("name"), "draw": Draw.objects.order_by("-id")}
        for name, qs in scoped.items():
            self.fields[name].queryset = qs if tenant_id is None else qs.filter(tenant_id=tenant_id)
        if tenant_id is not None:
            del self.fields["tenant"]
        # In the reader's words: each kind's label and its filters' field labels, not the stored keys (issue #20).
        kinds = "; ".join(
            f"{Export.Kind(kind).label}: "
            + ", ".join(str(self.fields[n].label) if n in self.fields else str(_OTHER_FILTERS.get(n, n)) for n in names)
            for kind, names in KIND_FILTERS.items())
        self.fields["kind"].help_text = gettext("Filters each kind takes — %(kinds)s.") % {"kinds": kinds}

    def filter_values(self) -> dict[str, str]:
        """The chosen filters as the service takes them (public ids, batch code, client name, ISO dates)."""
        out: dict[str, str] = {}
        for name in ALL_FILTERS:
            value = self.cleaned_data.get(name)
            if value in (None, ""):
                continue
            if name.startswith("date_"):
                out[name] = value.isoformat()
            elif name == "batch":
                out[name] = value.batch_code
            elif name == "client":
                out[name] = value.name
            else:
                out[name] = value.public_id
        return out


@admin.register(Export)
class ExportAdmin(TenantScopedAdmin):
    list_display = ["public_id", "kind", "description", "status", "progress_bar", "rows_display", "requested",
                    "created_at", "download_link", "tenant"]
    list_filter = ["kind", "status", "tenant"]
    search_fields = ["=public_id"]
    list_select_related = ["tenant", "requested_by", "client"]
    readonly_fields = ["public_id", "kind", "description", "filters_code", "header", "status", "progress_bar",
                       "rows_display", "file_size", "requested", "error", "created_at", "started_at",
                       "finished_at", "download_link"]
    fields = readonly_fields

    @admin.display(description=_("filters"))
    def filters_code(self, obj: Export) -> Any:
        """The filters as the API takes them (keys and public ids): code; the description says them in words."""
        return format_html("<code>{}</code>", json.dumps(obj.filters, ensure_ascii=False, sort_keys=True))
    change_list_template = "admin/exports/export/change_list.html"

    @admin.display(description=_("progress"))
    def progress_bar(self, obj: Export) -> str:
        percent = round(obj.progress * 100)
        return format_html('<progress max="100" value="{}" data-export="{}">{}%</progress> {}%', percent,
                           obj.public_id, percent, percent)

    @admin.display(description=_("rows"))
    def rows_display(self, obj: Export) -> str:
        total = "?" if obj.rows_total is None else f"{obj.rows_total:,}"
        return f"{obj.rows_done:,} / {total}"

    @admin.display(description=_("requested by"))
    def requested(self, obj: Export) -> str:
        if obj.requested_by_id:
            return obj.requested_by.get_username()
        if obj.client_id:
            return gettext("API: %(client)s") % {"client": obj.client.name}
        return gettext("system")

    @admin.display(description=_("file"))
    def download_link(self, obj: Export) -> str:
        if obj.status != Export.Status.DONE:
            return obj.error[:120] if obj.status == Export.Status.FAILED else "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:exports_export_download", args=[obj.pk]),
                           gettext("Download XLSX"))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # exports are written by their job only

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [path("<int:object_id>/download/", view(self.download_view), name="exports_export_download"),
                path("distribution/<int:object_id>/", view(self.distribution_view), name="exports_export_distribution"),
                path("<int:object_id>/progress/", view(self.progress_view), name="exports_export_progress"),
                *super().get_urls()]

    def distribution_view(self, request: HttpRequest, object_id: int) -> Any:
        """POST from a distribution's page (partners): its codes as an XLSX export. A workbook of millions of codes is
        written by the export job, not in this request (R-REP-2). It lives here because exports builds on partners."""
        tenant_id = user_tenant_id(request)
        dist = Distribution.objects.filter(pk=object_id).filter(
            **({} if tenant_id is None else {"tenant_id": tenant_id})).select_related("tenant").first()
        if dist is None:  # another tenant's distribution is a 404, like an unknown one
            raise Http404(gettext("No such distribution."))
        back = reverse("admin:partners_distribution_change", args=[dist.pk])
        if request.method != "POST":
            return HttpResponseRedirect(back)
        if dist.status != Distribution.Status.DISTRIBUTED:  # still awaiting approval, or rejected (#20)
            self.message_user(request, DistributionNotDistributed().message, messages.ERROR)
            return HttpResponseRedirect(back)
        try:
            job = services.export_request(tenant=dist.tenant, kind="codes", filters={"distribution": dist.public_id},
                                          actor=self.actor(request), user=request.user)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(back)
        self.message_user(request, gettext(
            "The codes of %(distribution)s are being written to XLSX as export %(job)s; the Exports page shows its "
            "progress and the download link.") % {"distribution": dist.public_id, "job": job.public_id},
            messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:exports_export_changelist"))

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        running = self.get_queryset(request).filter(status__in=[Export.Status.PENDING, Export.Status.RUNNING])
        extra = {**(extra_context or {}), "exports_running": running.exists(), "title": gettext("Exports")}
        return super().changelist_view(request, extra)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> Any:
        """"Request an export": the filter form; the export is written by a job and listed with its progress."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        tenant_id = user_tenant_id(request)
        form = ExportRequestForm(request.POST or None, tenant_id=tenant_id)
        if request.method == "POST" and form.is_valid():
            tenant = form.cleaned_data["tenant"] if tenant_id is None else Tenant.objects.get(pk=tenant_id)
            try:
                export = services.export_request(tenant=tenant, kind=form.cleaned_data["kind"],
                                                 filters=form.filter_values(), actor=self.actor(request),
                                                 user=request.user, header=form.cleaned_data["header"])
            except DomainError as exc:
                field = exc.details.get("field")
                form.add_error(field if field in form.fields else None, exc.message)
            else:
                what = export.get_kind_display() + (", " + export.description if export.description else "")
                self.message_user(request, gettext("Export %(id)s (%(what)s) is queued; this list shows its progress "
                                                   "and the download link once ready.")
                                  % {"id": export.public_id, "what": what}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:exports_export_changelist"))
        return TemplateResponse(request, "admin/exports/export/request.html", {
            **self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
            "title": gettext("Request an export")})

    def _export(self, request: HttpRequest, object_id: int) -> Export:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request).select_related("tenant"), pk=object_id)

    def download_view(self, request: HttpRequest, object_id: int) -> Any:
        export = self._export(request, object_id)
        try:
            handle = services.export_open(export=export, actor=self.actor(request))
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:exports_export_changelist"))
        return FileResponse(handle, as_attachment=True, filename=export.download_filename, content_type=XLSX)

    def progress_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        export = self._export(request, object_id)
        return JsonResponse({"id": export.public_id, "status": export.status, "rows_done": export.rows_done,
                             "rows_total": export.rows_total, "percent": round(export.progress * 100, 1)})
