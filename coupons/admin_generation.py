"""Console pieces for batch generation and partner export, mixed into ``CouponBatchAdmin`` (R-CODE-5, R-PART-4).

- "Generate codes" (a list action and a button on the batch page) calls ``batch_start_generation``: the job is queued
  on ``generation``; a batch that was interrupted resumes where it stopped.
- The batch page shows a live progress bar: a small script polls ``<id>/generation/progress/`` (JSON: counts, rate,
  ETA, status, last error) every two seconds while the batch is pending or running.
- "Export codes for a partner" (button, and list actions for CSV / XLSX) asks for the partner's name and records the
  export (``batch_export_codes``); CSV is streamed back at once, XLSX is written by the export job
  (``exports.services.export_request_code_handover``) and downloaded from the Exports page.

Every view goes through ``admin_site.admin_view`` and the admin's tenant-scoped queryset, so a tenant user can reach
only the tenant's batches (R-TEN-3).
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from core.audit import Actor
from core.exceptions import DomainError
from coupons.distribution import batch_export_codes, csv_stream, export_filename
from coupons.generation import batch_generation_progress, batch_generation_running, batch_start_generation
from coupons.models import CouponBatch, CouponCodeExport
from exports.services import export_request_code_handover

GENERATE_PERMISSION = "coupons.change_couponbatch"
EXPORT_PERMISSION = "coupons.add_couponcodeexport"


class PartnerExportForm(forms.Form):
    partner_name = forms.CharField(max_length=200, help_text=_("Who receives the codes. Recorded with the export."))
    format = forms.ChoiceField(choices=CouponCodeExport.Format.choices, initial=CouponCodeExport.Format.CSV,
                               widget=forms.RadioSelect)


class BatchGenerationAdminMixin:
    """Add to ``CouponBatchAdmin``'s bases (before ``TenantScopedAdmin``)."""

    change_form_template = "admin/coupons/couponbatch/change_form.html"
    generation_actions = ["generate_codes", "export_codes_csv", "export_codes_xlsx"]

    # permissions -----------------------------------------------------------------------------------------------------

    def has_generate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(GENERATE_PERMISSION)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EXPORT_PERMISSION)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        allowed = {"generate_codes": self.has_generate_permission(request),
                   "export_codes_csv": self.has_export_permission(request),
                   "export_codes_xlsx": self.has_export_permission(request)}
        for name in self.generation_actions:
            if allowed[name] and name not in actions:
                action = self.get_action(name)  # type: ignore[attr-defined]
                if action is not None:
                    actions[name] = action
        return actions

    # urls ------------------------------------------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("<int:object_id>/generation/start/", view(self.generation_start_view),
                 name="coupons_couponbatch_generate"),
            path("<int:object_id>/generation/progress/", view(self.generation_progress_view),
                 name="coupons_couponbatch_progress"),
            path("<int:object_id>/export/", view(self.partner_export_view), name="coupons_couponbatch_export"),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def _batch(self, request: HttpRequest, object_id: int) -> CouponBatch:
        return get_object_or_404(self.get_queryset(request).select_related("tenant"), pk=object_id)  # type: ignore

    def _actor(self, request: HttpRequest) -> Actor:
        return Actor.user(request.user)

    def _start(self, request: HttpRequest, batch: CouponBatch) -> bool:
        try:
            batch_start_generation(batch=batch, actor=self._actor(request))
        except DomainError as exc:
            self.message_user(request, f"{batch.batch_code}: {exc.message}", messages.ERROR)  # type: ignore
            return False
        values = {"batch": batch.batch_code, "count": f"{batch.quantity - batch.generated_count:,}"}
        text = (_("%(batch)s: resuming %(count)s codes in the background. The batch page shows the progress.")
                if batch.generated_count else
                _("%(batch)s: generating %(count)s codes in the background. The batch page shows the progress."))
        self.message_user(request, text % values, messages.SUCCESS)  # type: ignore[attr-defined]
        return True

    # views -----------------------------------------------------------------------------------------------------------

    def generation_start_view(self, request: HttpRequest, object_id: int) -> Any:
        batch = self._batch(request, object_id)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:coupons_couponbatch_change", args=[batch.pk]))
        if not self.has_generate_permission(request):
            raise DjangoPermissionDenied
        self._start(request, batch)
        return HttpResponseRedirect(reverse("admin:coupons_couponbatch_change", args=[batch.pk]))

    def generation_progress_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        batch = self._batch(request, object_id)
        progress = batch_generation_progress(batch)
        progress["worker_active"] = batch.status != CouponBatch.Status.COMPLETED and \
            batch_generation_running(batch.pk)
        return JsonResponse(progress)

    def partner_export_view(self, request: HttpRequest, object_id: int) -> Any:
        batch = self._batch(request, object_id)
        if not self.has_export_permission(request):
            raise DjangoPermissionDenied
        form = PartnerExportForm(request.POST or None,
                                 initial={"format": request.GET.get("format", CouponCodeExport.Format.CSV)})
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():  # the hand-over record and its file's job: both or neither
                    export = batch_export_codes(batch=batch, partner_name=form.cleaned_data["partner_name"],
                                                fmt=form.cleaned_data["format"], actor=self._actor(request),
                                                user=request.user)
                    job = None
                    if export.format == CouponCodeExport.Format.XLSX:
                        job = export_request_code_handover(code_export=export, actor=self._actor(request),
                                                           user=request.user)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)  # type: ignore[attr-defined]
            else:
                if job is None:
                    return export_response(export)
                # A workbook of millions of codes is written by the export job, not inside this request (R-REP-2).
                self.message_user(request, _(  # type: ignore[attr-defined]
                    "%(count)s codes of %(batch)s for “%(partner)s” are being written to XLSX as export %(job)s; the "
                    "Exports page shows its progress and the download link.") % {
                    "count": f"{export.code_count:,}", "batch": batch.batch_code, "partner": export.partner_name,
                    "job": job.public_id}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:exports_export_changelist"))
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": self.opts,  # type: ignore[attr-defined]
            "original": batch, "batch": batch, "form": form,
            "title": f"Export codes of {batch.batch_code} for a partner",
            "exports": CouponCodeExport.objects.filter(batch=batch).order_by("-created_at")[:20],
        }
        return TemplateResponse(request, "admin/coupons/couponbatch/partner_export.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra: dict[str, Any] = dict(extra_context or {})
        if object_id.isdigit() and self.get_queryset(request).filter(pk=int(object_id)).exists():  # type: ignore
            extra.update({
                "generation_start_url": reverse("admin:coupons_couponbatch_generate", args=[object_id]),
                "generation_progress_url": reverse("admin:coupons_couponbatch_progress", args=[object_id]),
                "partner_export_url": reverse("admin:coupons_couponbatch_export", args=[object_id]),
                "can_generate": self.has_generate_permission(request),
                "can_export": self.has_export_permission(request),
                "batch_exports": CouponCodeExport.objects.filter(batch_id=int(object_id)).order_by("-created_at")[:5],
            })
        return super().change_view(request, object_id, form_url, extra)  # type: ignore[misc]

    # list actions ----------------------------------------------------------------------------------------------------

    @admin.action(description=_("Generate (or resume) the selected batches' codes"))
    def generate_codes(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not self.has_generate_permission(request):
            raise DjangoPermissionDenied
        for batch in queryset.select_related("tenant"):
            self._start(request, batch)

    def _export_action(self, request: HttpRequest, queryset: QuerySet, fmt: str) -> Any:
        if not self.has_export_permission(request):
            raise DjangoPermissionDenied
        batches = list(queryset[:2])
        if len(batches) != 1:
            self.message_user(request, _("Select exactly one batch to export."), messages.ERROR)  # type: ignore
            return None
        url = reverse("admin:coupons_couponbatch_export", args=[batches[0].pk])
        return HttpResponseRedirect(f"{url}?format={fmt}")

    @admin.action(description=_("Export the selected batch's codes for a partner (CSV)"))
    def export_codes_csv(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return self._export_action(request, queryset, CouponCodeExport.Format.CSV)

    @admin.action(description=_("Export the selected batch's codes for a partner (XLSX)"))
    def export_codes_xlsx(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return self._export_action(request, queryset, CouponCodeExport.Format.XLSX)


def export_response(export: CouponCodeExport) -> Any:
    """The CSV of an export, streamed as it is read (XLSX files are written by the export job instead)."""
    response = StreamingHttpResponse(csv_stream(export), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(export)}"'
    return response
