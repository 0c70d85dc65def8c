"""Console for partners (R-PART): partner import/export, the upload page with a CSV template, uploads with counts and
progress and a reprocess action, failures filterable by reason with an XLSX download, mappings; distributions of our
own codes to a partner (flow 1) with their file and counts."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from import_export import resources
from import_export.admin import ImportMixin

from core.admin import TenantExportActionMixin, TenantScopedAdmin, user_tenant_id
from core.admin_approvals import decide_page
from core.exceptions import DomainError
from core.spreadsheets import XLSX_CONTENT_TYPE, add_sheet, append_row, local_stamp, new_workbook, workbook_bytes
from coupons.models import CouponBatch, CouponInventory
from partners import distribution, selectors, services
from partners.models import CouponMapping, Distribution, Partner, PartnerUpload, PartnerUploadFailure
from django.conf import settings
from django.utils import translation
from django.utils import formats


class PartnerResource(resources.ModelResource):
    """Plain partner list; an import matches rows by code within the importing user's tenant only."""

    def __init__(self, tenant_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id

    def get_queryset(self) -> QuerySet:
        return Partner.objects.filter(tenant_id=self.tenant_id)

    def before_save_instance(self, instance: Partner, row: Any, **kwargs: Any) -> None:
        if self.tenant_id is None:
            raise ValueError(gettext("Import partners as a user attached to a tenant."))
        instance.tenant_id = self.tenant_id
        instance.code = (instance.code or "").strip().upper()

    class Meta:
        model = Partner
        fields = ["name", "code"]
        import_id_fields = ["code"]


@admin.register(Partner)
class PartnerAdmin(TenantExportActionMixin, ImportMixin, TenantScopedAdmin):
    """The partner list is also the per-partner summary: uploads, rows, mapped, failed, and how many of the mapped
    codes members have claimed (R-PART)."""

    resource_classes = [PartnerResource]
    list_display = ["name", "code", "uploads_count", "rows_total", "mapped_total", "failed_total", "claimed_total",
                    "tenant", "created_at"]
    search_fields = ["name", "code"]
    list_filter = ["tenant"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.partners_with_totals(super().get_queryset(request))

    @admin.display(description=_("uploads"), ordering="uploads_n")
    def uploads_count(self, obj: Partner) -> int:
        return obj.uploads_n

    @admin.display(description=_("rows"), ordering="rows_n")
    def rows_total(self, obj: Partner) -> int:
        return obj.rows_n

    @admin.display(description=_("mapped"), ordering="mapped_n")
    def mapped_total(self, obj: Partner) -> int:
        return obj.mapped_n

    @admin.display(description=_("failed"), ordering="failed_n")
    def failed_total(self, obj: Partner) -> int:
        return obj.failed_n

    @admin.display(description=_("claimed by members"), ordering="claimed_n")
    def claimed_total(self, obj: Partner) -> int:
        return obj.claimed_n

    def get_import_resource_kwargs(self, request: HttpRequest, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_import_resource_kwargs(request, **kwargs), "tenant_id": user_tenant_id(request)}


class CorrectionsForm(forms.Form):
    corrections = forms.CharField(
        required=False, label=_("Corrections"), widget=forms.Textarea(attrs={"rows": 8, "cols": 60}),
        help_text=_("Optional: one corrected row per line as LINE,VALUE (e.g. 14,AB12CD). Without corrections every "
                    "failed row is retried as it is."))

    def clean_corrections(self) -> list[dict[str, Any]]:
        rows = []
        for number, text in enumerate(self.cleaned_data["corrections"].splitlines(), start=1):
            if not text.strip():
                continue
            line, sep, value = text.partition(",")
            if not sep or not line.strip().isdigit() or int(line) < 1:
                raise forms.ValidationError(gettext("Line %(number)s of the corrections is not LINE,VALUE: %(text)r.")
                                            % {"number": number, "text": text[:60]})
            rows.append({"line": int(line), "value": value.strip()})
        return rows


class UploadForm(forms.Form):
    partner = forms.ModelChoiceField(queryset=Partner.objects.none(), label=_("Partner"))
    inventory = forms.ModelChoiceField(queryset=CouponInventory.objects.none(), label=_("Inventory"))
    file = forms.FileField(label=_("File"), help_text=_("CSV (UTF-8) or XLSX; first column = partner code, optional "
                                                        "header partner_code."))

    def __init__(self, *args: Any, tenant_id: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        partners, inventories = Partner.objects.all(), CouponInventory.objects.all()
        if tenant_id is not None:
            partners, inventories = partners.filter(tenant_id=tenant_id), inventories.filter(tenant_id=tenant_id)
        self.fields["partner"].queryset = partners
        self.fields["inventory"].queryset = inventories


@admin.register(PartnerUpload)
class PartnerUploadAdmin(TenantScopedAdmin):
    list_display = ["upload_display", "tenant", "partner", "inventory", "status", "rows", "mapped", "failed",
                    "progress_display", "created_at"]
    list_filter = ["status", "partner", "tenant"]
    list_select_related = ["partner", "inventory", "tenant"]
    search_fields = ["original_name", "public_id"]
    readonly_fields = [f.name for f in PartnerUpload._meta.fields if f.name != "tenant"] + ["progress_display"]
    actions = ["reprocess_failed_rows"]
    change_list_template = "admin/partners/partnerupload/change_list.html"
    change_form_template = "admin/partners/partnerupload/change_form.html"

    @admin.display(description=_("partner upload"))
    def upload_display(self, obj: PartnerUpload) -> str:
        return str(obj)

    @admin.display(description=_("progress"))
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
                path("<path:object_id>/reprocess/", self.admin_site.admin_view(self.reprocess_view),
                     name="partners_partnerupload_reprocess"),
                *super().get_urls()]

    def reprocess_view(self, request: HttpRequest, object_id: str) -> Any:
        """Retry the failed rows of one upload, optionally with corrected values (R-PART-3)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        upload = self.get_object(request, object_id)  # tenant-scoped: another tenant's upload is a 404
        if upload is None:
            raise Http404(gettext("No such partner upload."))
        form = CorrectionsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                upload = services.partner_upload_reprocess(upload=upload, actor=self.actor(request),
                                                           corrections=form.cleaned_data["corrections"])
            except DomainError as exc:
                lines = exc.details.get("lines")
                lines_text = ""
                if lines:
                    lines_text = " " + gettext("Lines: %(lines)s.") % {"lines": ", ".join(map(str, lines))}
                form.add_error("corrections", exc.message + lines_text)
            else:
                self.message_user(request, gettext("Reprocessing the failed rows of %(upload)s.") % {"upload": upload},
                                  messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:partners_partnerupload_change", args=[upload.pk]))
        return TemplateResponse(request, "admin/partners/partnerupload/reprocess.html", {
            **self.admin_site.each_context(request), "form": form, "opts": self.model._meta, "upload": upload,
            "failures": upload.failures.order_by("line")[:50],
            "title": gettext("Reprocess %(upload)s") % {"upload": upload}})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> Any:
        return super().change_view(request, object_id, form_url, {
            **(extra_context or {}), "can_reprocess": self.has_change_permission(request)})

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
                self.message_user(request, gettext("Upload started.") if created else
                                  gettext("This file was already uploaded for this inventory: showing the earlier "
                                          "upload."),
                                  messages.SUCCESS if created else messages.WARNING)
                return HttpResponseRedirect(reverse("admin:partners_partnerupload_change", args=[upload.pk]))
        # An empty list says why and where to fix it, instead of a bare empty dropdown (issue #20).
        return TemplateResponse(request, "admin/partners/partnerupload/upload.html", {
            **self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
            "title": gettext("Upload partner codes"),
            "no_partners": not form.fields["partner"].queryset.exists(),
            "no_inventories": not form.fields["inventory"].queryset.exists(),
            "can_add_partner": request.user.has_perm("partners.add_partner"),
            "can_add_inventory": request.user.has_perm("coupons.add_couponinventory")})

    def template_view(self, request: HttpRequest) -> HttpResponse:
        response = HttpResponse(services.csv_template(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="partner_codes_template.csv"'
        return response

    @admin.action(description=_("Reprocess failed rows"), permissions=["change"])
    def reprocess_failed_rows(self, request: HttpRequest, queryset: QuerySet) -> None:
        for upload in queryset:
            try:
                services.partner_upload_reprocess(upload=upload, actor=self.actor(request))
            except DomainError as exc:
                self.message_user(request, f"{upload}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, ngettext("%(upload)s: reprocessing %(count)s failed row.",
                                                    "%(upload)s: reprocessing %(count)s failed rows.", upload.failed)
                                  % {"upload": upload, "count": f"{upload.failed:,}"}, messages.SUCCESS)


# The failures sheet's columns: model field names, which are also the machine-key header.
FAILURE_COLUMNS = ("upload", "line", "value", "reason", "message")


@admin.register(PartnerUploadFailure)
class PartnerUploadFailureAdmin(TenantScopedAdmin):
    list_display = ["upload", "line", "value", "reason", "message", "tenant"]
    list_filter = ["reason", "tenant"]

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup == "upload__id__exact" or super().lookup_allowed(lookup, value, request)
    list_select_related = ["upload__partner"]
    search_fields = ["value", "upload__public_id"]
    actions = ["download_xlsx", "download_xlsx_keys"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Download the selected failures as XLSX"), permissions=["view"])
    def download_xlsx(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        """Sheet name, headers and reasons in the tenant's language (issue #11), for the people fixing the file."""
        return self._failures_xlsx(request, queryset, machine_keys=False)

    @admin.action(description=_("Download the selected failures as XLSX (machine keys)"), permissions=["view"])
    def download_xlsx_keys(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        """Stable English keys for header and reason, whatever the language: for scripts and accounting imports."""
        return self._failures_xlsx(request, queryset, machine_keys=True)

    def _failures_xlsx(self, request: HttpRequest, queryset: QuerySet, *, machine_keys: bool) -> HttpResponse:
        # a tenant user's own company; a superuser's selection is of one tenant in practice: the first row's
        first = queryset.select_related("tenant").first()
        tenant = first.tenant if first is not None else None
        reasons = dict(PartnerUploadFailure.Reason.choices)
        workbook = new_workbook(streaming=True)
        with translation.override(getattr(tenant, "language", "") or settings.LANGUAGE_CODE):
            if machine_keys:
                title, header = "failures", list(FAILURE_COLUMNS)
            else:
                title = gettext("Failures")
                header = [capfirst(str(PartnerUploadFailure._meta.get_field(key).verbose_name))
                          for key in FAILURE_COLUMNS]
                reasons = {key: str(label) for key, label in reasons.items()}
        sheet = add_sheet(workbook, title, header, ["id", "number", "code", "text", "text"])
        for failure in queryset.select_related("upload").order_by("upload_id", "line").iterator(chunk_size=2000):
            reason = failure.reason if machine_keys else reasons.get(failure.reason, failure.reason)
            append_row(sheet, [failure.upload.public_id, failure.line, failure.value, reason, failure.message])
        response = HttpResponse(workbook_bytes(workbook), content_type=XLSX_CONTENT_TYPE)
        stamp = local_stamp(timezone.now(), getattr(tenant, "time_zone", None))
        response["Content-Disposition"] = f'attachment; filename="partner_upload_failures-{stamp}.xlsx"'
        return response


@admin.register(CouponMapping)
class CouponMappingAdmin(TenantScopedAdmin):
    list_display = ["partner_code", "partner", "upload", "line", "coupon", "created_at", "tenant"]
    list_filter = ["partner", "tenant"]

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup == "upload__id__exact" or super().lookup_allowed(lookup, value, request)
    list_select_related = ["partner", "upload__partner", "coupon"]
    search_fields = ["partner_code"]
    raw_id_fields = ["coupon", "upload"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Distributions: our codes handed to a partner (flow 1, R-PART-4) ------------------------------------------------

def distribution_terms(dist: Distribution) -> list[tuple[Any, str]]:
    """What an approver decides on (issue #20): who gets which codes, how many, and what is free now."""
    available = dist.inventory.codes.filter(status="AVAILABLE")
    if dist.batch_id is not None:
        available = available.filter(batch_id=dist.batch_id)
    when = formats.date_format(timezone.localtime(dist.created_at), "Y-m-d H:i")
    return [
        (_("partner"), str(dist.partner)),
        (_("inventory"), f"{dist.inventory.name} ({dist.inventory.public_id})"),
        (_("batch"), dist.batch.batch_code if dist.batch_id else gettext("any batch of the inventory")),
        (_("number of codes"), f"{dist.quantity:,}"),
        (_("codes available now"), f"{available.count():,}"),
        (_("asked by"), dist.actor_label),
        (_("asked at"), when),
    ]


class DistributeForm(forms.Form):
    inventory = forms.ModelChoiceField(queryset=CouponInventory.objects.none(), label=_("Inventory"))
    batch = forms.ModelChoiceField(queryset=CouponBatch.objects.none(), label=_("Batch"), required=False,
                                   help_text=_("Optional: take the codes from this batch only."))
    partner = forms.ModelChoiceField(queryset=Partner.objects.none(), label=_("Partner"),
                                     error_messages={"required": _("Choose the partner who receives the codes.")})
    quantity = forms.IntegerField(label=_("Number of codes"), required=False, min_value=1,
                                  max_value=distribution.MAX_QUANTITY,
                                  help_text=_("How many available codes to reserve for the partner. Empty with a "
                                              "batch chosen = every available code of the batch."))

    def __init__(self, *args: Any, tenant_id: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        querysets = {"inventory": CouponInventory.objects.select_related("event").order_by("-created_at"),
                     "batch": CouponBatch.objects.filter(status=CouponBatch.Status.COMPLETED).order_by("-created_at"),
                     "partner": Partner.objects.order_by("name")}
        for name, qs in querysets.items():
            self.fields[name].queryset = qs if tenant_id is None else qs.filter(tenant_id=tenant_id)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        batch, inventory = data.get("batch"), data.get("inventory")
        if batch is not None and inventory is not None and batch.inventory_id != inventory.pk:
            self.add_error("batch", gettext("This batch belongs to another inventory."))
        if data.get("quantity") is None and batch is None and "quantity" not in self.errors:
            self.add_error("quantity", gettext("Say how many codes to distribute, or choose a batch to distribute "
                                               "all of its available codes."))
        return data


@admin.register(Distribution)
class DistributionAdmin(TenantScopedAdmin):
    """Reserve codes for a partner and hand over the file (R-PART-4). A distribution is never edited: its codes were
    reserved once; its page shows how many members registered and used them, and downloads the file again."""

    list_display = ["public_id", "status", "partner", "inventory", "batch", "quantity_display", "actor_label",
                    "created_at", "tenant"]
    list_filter = ["status", "partner", "tenant"]
    list_select_related = ["partner", "inventory", "batch", "tenant"]
    search_fields = ["public_id", "partner__code", "partner__name", "inventory__public_id", "inventory__name"]
    readonly_fields = ["public_id", "status", "partner", "inventory", "batch", "quantity_display", "actor_label",
                       "created_at", "decided_by", "decided_at", "rejection_reason"]
    fields = readonly_fields
    change_form_template = "admin/partners/distribution/change_form.html"

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup in ("batch__id__exact", "inventory__id__exact") or super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("number of codes"), ordering="quantity")
    def quantity_display(self, obj: Distribution) -> str:
        return f"{obj.quantity:,}"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [path("distribute/", view(self.distribute_view), name="partners_distribution_distribute"),
                path("<path:object_id>/codes.csv", view(self.csv_view), name="partners_distribution_csv"),
                path("<int:object_id>/decide/", view(self.decide_view), name="partners_distribution_decide"),
                *super().get_urls()]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> Any:
        query = request.META.get("QUERY_STRING", "")
        return HttpResponseRedirect(reverse("admin:partners_distribution_distribute") + (f"?{query}" if query else ""))

    def _distribution(self, request: HttpRequest, object_id: str) -> Distribution:
        obj = self.get_object(request, object_id)  # tenant-scoped: another tenant's distribution is a 404
        if obj is None:
            raise Http404(gettext("No such distribution."))
        return obj

    def distribute_view(self, request: HttpRequest) -> Any:
        if not self.has_add_permission(request):
            raise PermissionDenied
        tenant_id = user_tenant_id(request)
        initial = {}
        for name, model in (("inventory", CouponInventory), ("batch", CouponBatch)):
            raw = request.GET.get(name, "")
            if raw.isdigit():
                obj = model.objects.filter(pk=int(raw), **({} if tenant_id is None else {"tenant_id": tenant_id})
                                           ).first()
                if obj is not None:
                    initial[name] = obj
        if "batch" in initial and "inventory" not in initial:
            initial["inventory"] = initial["batch"].inventory
        form = DistributeForm(request.POST or None, initial=initial, tenant_id=tenant_id)
        if request.method == "POST" and form.is_valid():
            inventory = form.cleaned_data["inventory"]
            try:
                dist = distribution.distribution_create(
                    tenant=inventory.tenant, inventory=inventory, partner=form.cleaned_data["partner"],
                    batch=form.cleaned_data["batch"], quantity=form.cleaned_data["quantity"],
                    actor=self.actor(request), user=request.user)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                if dist.status == Distribution.Status.AWAITING_APPROVAL:
                    self.message_user(request, gettext(
                        "The distribution of %(count)s codes to %(partner)s awaits approval: nothing is reserved "
                        "until another user with the approver role approves it.")
                        % {"count": f"{dist.quantity:,}", "partner": dist.partner.name}, messages.WARNING)
                    return HttpResponseRedirect(reverse("admin:partners_distribution_change", args=[dist.pk]))
                self.message_user(request, gettext(
                    "%(count)s codes are reserved for %(partner)s. Download the file below; it can be downloaded "
                    "again at any time.") % {"count": f"{dist.quantity:,}", "partner": dist.partner.name},
                    messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:partners_distribution_change", args=[dist.pk]))
        partners_exist = form.fields["partner"].queryset.exists()
        return TemplateResponse(request, "admin/partners/distribution/distribute.html", {
            **self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
            "partners_exist": partners_exist, "title": gettext("Distribute codes to a partner")})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> Any:
        extra = dict(extra_context or {})
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra["stats"] = distribution.distribution_stats(obj)
            extra["decide_url"] = reverse("admin:partners_distribution_decide", args=[obj.pk])
        return super().change_view(request, object_id, form_url, extra)

    def decide_view(self, request: HttpRequest, object_id: int) -> Any:
        """Approve or reject a distribution waiting for an approver (issue #20), with its terms in context."""
        dist = self._distribution(request, str(object_id))
        user = request.user
        return decide_page(
            request, self, kind="distribution", object_label=gettext("distribution %(id)s") % {"id": dist.public_id},
            change_url=reverse("admin:partners_distribution_change", args=[dist.pk]),
            terms=distribution_terms(dist), terms_heading=gettext("Terms of the distribution"),
            status_label=dist.get_status_display(), requester=dist.actor_label,
            waiting=dist.status == Distribution.Status.AWAITING_APPROVAL,
            rejection_reason=dist.rejection_reason, may_decide=user.has_perm(distribution.APPROVE_PERMISSION),
            is_requester=dist.created_by_id is not None and dist.created_by_id == user.pk,
            approve=lambda: distribution.distribution_approve(distribution=dist, user=user),
            reject=lambda reason: distribution.distribution_reject(distribution=dist, user=user, reason=reason),
            approve_help=gettext("Approving reserves the codes for the partner at once; the file can then be "
                                 "downloaded."),
            approved_message=gettext("%(count)s codes are reserved for %(partner)s.")
            % {"count": f"{dist.quantity:,}", "partner": dist.partner.name},
            rejected_message=gettext("The distribution %(id)s was rejected; no code was reserved.")
            % {"id": dist.public_id})

    def csv_view(self, request: HttpRequest, object_id: str) -> Any:
        dist = self._distribution(request, object_id)
        try:
            distribution.distribution_downloaded(distribution=dist, actor=self.actor(request), fmt="csv")
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:partners_distribution_change", args=[dist.pk]))
        response = StreamingHttpResponse(distribution.distribution_csv(dist), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{distribution.distribution_filename(dist)}"'
        return response

