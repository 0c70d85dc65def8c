"""Console for partners (R-PART): partner import/export, the upload page with a CSV template, uploads with counts and
progress and a reprocess action, failures filterable by reason with an XLSX download, mappings."""
from __future__ import annotations

import io
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from import_export import resources
from import_export.admin import ImportMixin

from core.admin import TenantExportActionMixin, TenantScopedAdmin, user_tenant_id
from core.exceptions import DomainError
from coupons.models import CouponInventory
from partners import services
from partners.models import CouponMapping, Partner, PartnerUpload, PartnerUploadFailure


class PartnerResource(resources.ModelResource):
    """Plain partner list; an import matches rows by code within the importing user's tenant only."""

    def __init__(self, tenant_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id

    def get_queryset(self) -> QuerySet:
        return Partner.objects.filter(tenant_id=self.tenant_id)

    def before_save_instance(self, instance: Partner, row: Any, **kwargs: Any) -> None:
        if self.tenant_id is None:
            raise ValueError("Import partners as a user attached to a tenant.")
        instance.tenant_id = self.tenant_id
        instance.code = (instance.code or "").strip().upper()

    class Meta:
        model = Partner
        fields = ["name", "code"]
        import_id_fields = ["code"]


@admin.register(Partner)
class PartnerAdmin(TenantExportActionMixin, ImportMixin, TenantScopedAdmin):
    resource_classes = [PartnerResource]
    list_display = ["name", "code", "tenant", "created_at"]
    search_fields = ["name", "code"]
    list_filter = ["tenant"]

    def get_import_resource_kwargs(self, request: HttpRequest, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_import_resource_kwargs(request, **kwargs), "tenant_id": user_tenant_id(request)}


class UploadForm(forms.Form):
    partner = forms.ModelChoiceField(queryset=Partner.objects.none())
    inventory = forms.ModelChoiceField(queryset=CouponInventory.objects.none())
    file = forms.FileField(help_text="CSV (UTF-8) or XLSX; first column = partner code, optional header "
                                     "partner_code.")

    def __init__(self, *args: Any, tenant_id: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        partners, inventories = Partner.objects.all(), CouponInventory.objects.all()
        if tenant_id is not None:
            partners, inventories = partners.filter(tenant_id=tenant_id), inventories.filter(tenant_id=tenant_id)
        self.fields["partner"].queryset = partners
        self.fields["inventory"].queryset = inventories


@admin.register(PartnerUpload)
class PartnerUploadAdmin(TenantScopedAdmin):
    list_display = ["__str__", "tenant", "partner", "inventory", "status", "rows", "mapped", "failed",
                    "progress_display", "created_at"]
    list_filter = ["status", "partner", "tenant"]
    list_select_related = ["partner", "inventory", "tenant"]
    search_fields = ["original_name", "public_id"]
    readonly_fields = [f.name for f in PartnerUpload._meta.fields if f.name != "tenant"] + ["progress_display"]
    actions = ["reprocess_failed_rows"]
    change_list_template = "admin/partners/partnerupload/change_list.html"

    @admin.display(description="progress")
    def progress_display(self, obj: PartnerUpload) -> str:
        return f"{obj.progress:.0%} ({obj.processed_rows:,}/{obj.rows:,})"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # through the upload page

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def get_urls(self) -> list[Any]:
        return [path("upload/", self.admin_site.admin_view(self.upload_view), name="partners_partnerupload_upload"),
                path("template.csv", self.admin_site.admin_view(self.template_view),
                     name="partners_partnerupload_template"),
                *super().get_urls()]

    def upload_view(self, request: HttpRequest) -> Any:
        if not request.user.has_perm("partners.add_partnerupload"):
            raise PermissionDenied
        tenant_id = user_tenant_id(request)
        form = UploadForm(request.POST or None, request.FILES or None, tenant_id=tenant_id)
        if request.method == "POST" and form.is_valid():
            partner = form.cleaned_data["partner"]
            try:
                upload, created = services.partner_upload_create(
                    tenant=partner.tenant, partner_code=partner.code,
                    inventory_public_id=form.cleaned_data["inventory"].public_id, uploaded=form.cleaned_data["file"],
                    actor=self.actor(request), user=request.user)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, "Upload started." if created else
                                  "This file was already uploaded for this inventory: showing the earlier upload.",
                                  messages.SUCCESS if created else messages.WARNING)
                return HttpResponseRedirect(reverse("admin:partners_partnerupload_change", args=[upload.pk]))
        return TemplateResponse(request, "admin/partners/partnerupload/upload.html", {
            **self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
            "title": "Upload partner codes"})

    def template_view(self, request: HttpRequest) -> HttpResponse:
        response = HttpResponse(services.csv_template(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="partner_codes_template.csv"'
        return response

    @admin.action(description="Reprocess failed rows", permissions=["change"])
    def reprocess_failed_rows(self, request: HttpRequest, queryset: QuerySet) -> None:
        for upload in queryset:
            try:
                services.partner_upload_reprocess(upload=upload, actor=self.actor(request))
            except DomainError as exc:
                self.message_user(request, f"{upload}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{upload}: reprocessing {upload.failed:,} failed row(s).",
                                  messages.SUCCESS)


@admin.register(PartnerUploadFailure)
class PartnerUploadFailureAdmin(TenantScopedAdmin):
    list_display = ["upload", "line", "value", "reason", "message", "tenant"]
    list_filter = ["reason", "tenant"]
    list_select_related = ["upload__partner"]
    search_fields = ["value", "upload__public_id"]
    actions = ["download_xlsx"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Download the selected failures as XLSX", permissions=["view"])
    def download_xlsx(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("failures")
        sheet.append(["upload", "line", "value", "reason", "message"])
        for failure in queryset.select_related("upload").order_by("upload_id", "line").iterator(chunk_size=2000):
            sheet.append([failure.upload.public_id, failure.line, services.spreadsheet_safe(failure.value),
                          failure.reason, services.spreadsheet_safe(failure.message)])
        out = io.BytesIO()
        workbook.save(out)
        response = HttpResponse(out.getvalue(), content_type="application/vnd.openxmlformats-officedocument."
                                                              "spreadsheetml.sheet")
        response["Content-Disposition"] = 'attachment; filename="partner_upload_failures.xlsx"'
        return response


@admin.register(CouponMapping)
class CouponMappingAdmin(TenantScopedAdmin):
    list_display = ["partner_code", "partner", "upload", "line", "coupon", "created_at", "tenant"]
    list_filter = ["partner", "tenant"]
    list_select_related = ["partner", "upload__partner", "coupon"]
    search_fields = ["partner_code"]
    raw_id_fields = ["coupon", "upload"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
