"""Risk console (R-RISK): daily frequency limits, member risk levels (with CSV/XLSX import), budget spend and
thresholds, alarms (acknowledge; unacknowledged ones announced on the console's index page), webhook endpoints and
their deliveries."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy as _, ngettext
from import_export import fields, resources, widgets
from import_export.admin import ImportMixin
from import_export.formats import base_formats

from core.admin import TenantExportActionMixin, TenantScopedAdmin, user_tenant_id
from core.audit import Actor, audit_record
from core.exceptions import DomainError
from risk import selectors, services
from risk.budgets import budget_recount
from risk.models import WEBHOOK_EVENTS, Alarm, FrequencyLimit, InventoryBudget, MemberRisk, WebhookAttempt, \
    WebhookDelivery, WebhookEndpoint
from django.core.exceptions import ValidationError
from core.models import Tenant
from risk.webhooks import url_check_at_save
from risk.webhooks import webhook_delivery_retry


def _form_errors(form: forms.ModelForm, errors: dict[str, str]) -> None:
    for field, message in errors.items():
        form.add_error(field if field in form.fields else None, message)


class FrequencyLimitForm(forms.ModelForm):
    class Meta:
        model = FrequencyLimit
        fields = "__all__"  # noqa: DJ007 admin-only form: the ModelAdmin's `fields` picks the fields

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        probe = FrequencyLimit(tenant_id=self.instance.tenant_id or getattr(cleaned.get("tenant"), "pk", None),
                               inventory=cleaned.get("inventory"), policy=cleaned.get("policy"),
                               max_per_day=cleaned.get("max_per_day"))
        if probe.tenant_id is None and self.request_tenant_id is not None:
            probe.tenant_id = self.request_tenant_id
        errors = services.frequency_limit_errors(probe)
        _form_errors(self, {k: v for k, v in errors.items() if k not in self.errors})
        return cleaned


@admin.register(FrequencyLimit)
class FrequencyLimitAdmin(TenantScopedAdmin):
    form = FrequencyLimitForm
    list_display = ["limit_display", "tenant", "action", "dimension", "max_per_day", "inventory", "policy", "is_active"]
    list_filter = ["action", "dimension", "is_active", "tenant"]
    list_select_related = ["tenant", "inventory", "policy"]
    search_fields = ["inventory__name", "inventory__public_id", "policy__name"]
    fields = ["inventory", "policy", "action", "dimension", "max_per_day", "is_active"]

    @admin.display(description=_("frequency limit"))
    def limit_display(self, obj: FrequencyLimit) -> str:
        return str(obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request_tenant_id = user_tenant_id(request)
        return form

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.frequency_limit_save(limit=obj, actor=self.actor(request))


class ExpiryWidget(widgets.Widget):
    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
        return services.parse_expiry(value)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return value.isoformat() if value else ""


class MemberRiskResource(resources.ModelResource):
    """Columns member_id, level (block / watch / allow), reason, expires_at (optional). Rows match existing entries
    by member id within the importing user's tenant only; a bad row stops the whole import (nothing changes)."""

    expires_at = fields.Field(attribute="expires_at", column_name="expires_at", widget=ExpiryWidget())

    def __init__(self, tenant_id: int | None = None, actor: Actor | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id
        self.actor = actor

    def get_queryset(self) -> QuerySet:
        return MemberRisk.objects.filter(tenant_id=self.tenant_id)

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        if self.tenant_id is None:
            raise ValueError(gettext("Import member risk levels as a user attached to a tenant."))
        missing = {"member_id", "level"} - {(h or "").strip() for h in (dataset.headers or [])}
        if missing:
            raise ValueError(gettext("The file needs the columns member_id and level (missing: %(missing)s).")
                             % {"missing": ", ".join(sorted(missing))})

    def before_import_row(self, row: Any, **kwargs: Any) -> None:
        row["member_id"] = str(row.get("member_id") or "").strip()
        row["level"] = str(row.get("level") or "").strip().lower()
        row["reason"] = str(row.get("reason") or "").strip()[:500]

    def init_instance(self, row: Any = None) -> MemberRisk:
        return MemberRisk(tenant_id=self.tenant_id)

    def validate_instance(self, instance: MemberRisk, import_validation_errors: Any = None,
                          validate_unique: bool = True) -> None:
        errors = dict(import_validation_errors or {})
        for field, message in services.member_risk_errors(instance).items():
            errors.setdefault(field, []).append(message)
        if errors:
            raise ValidationError(errors)

    def after_import(self, dataset: Any, result: Any, **kwargs: Any) -> None:
        if kwargs.get("dry_run") or result.has_errors() or result.has_validation_errors():
            return

        totals = result.totals
        audit_record(tenant=Tenant.objects.get(pk=self.tenant_id), actor=self.actor or Actor.system("import"),
                     action="risk.member_levels_import", obj=Tenant.objects.get(pk=self.tenant_id),
                     after={"file": kwargs.get("file_name"), "new": totals.get("new", 0),
                            "updated": totals.get("update", 0), "unchanged": totals.get("skip", 0)})

    class Meta:
        model = MemberRisk
        fields = ["member_id", "level", "reason", "expires_at"]
        import_id_fields = ["member_id"]
        skip_unchanged = True
        use_transactions = True


@admin.register(MemberRisk)
class MemberRiskAdmin(TenantExportActionMixin, ImportMixin, TenantScopedAdmin):
    resource_classes = [MemberRiskResource]
    import_formats = [base_formats.CSV, base_formats.XLSX]
    list_display = ["member_id", "tenant", "level", "reason", "expires_at", "updated_at"]
    list_filter = ["level", "tenant"]
    search_fields = ["member_id", "reason"]
    fields = ["member_id", "level", "reason", "expires_at"]
    actions = ["remove_entries"]

    def get_import_resource_kwargs(self, request: HttpRequest, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_import_resource_kwargs(request, **kwargs), "tenant_id": user_tenant_id(request),
                "actor": self.actor(request)}

    def get_export_resource_kwargs(self, request: HttpRequest, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_export_resource_kwargs(request, **kwargs), "tenant_id": user_tenant_id(request)}

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.member_risk_save(entry=obj, actor=self.actor(request))

    @admin.action(description=_("Remove the selected entries (back to the normal level)"), permissions=["change"])
    def remove_entries(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for entry in queryset.select_related("tenant"):
            services.member_risk_remove(entry=entry, actor=self.actor(request))
            done += 1
        self.message_user(request, ngettext("Removed %(count)d entry.", "Removed %(count)d entries.", done)
                          % {"count": done}, messages.SUCCESS)


class BudgetForm(forms.ModelForm):
    alarm_thresholds = forms.CharField(label=_("alarm thresholds"), required=False,
                                       help_text=_("Whole percentages, comma-separated, e.g. 80, 100."))

    class Meta:
        model = InventoryBudget
        fields = ["inventory", "alarm_thresholds"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["alarm_thresholds"] = ", ".join(str(t) for t in self.instance.alarm_thresholds)

    def clean_alarm_thresholds(self) -> list[int]:
        try:
            return services.thresholds_parse(self.cleaned_data.get("alarm_thresholds"))
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(InventoryBudget)
class InventoryBudgetAdmin(TenantScopedAdmin):
    """Spend against the inventory's budgets (set on the inventory) and the alarm thresholds."""

    form = BudgetForm
    list_display = ["budget_display", "tenant", "issue_display", "use_display", "thresholds_display", "updated_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant", "inventory__policy"]
    search_fields = ["inventory__name", "inventory__public_id"]
    readonly_fields = ["issued_count", "issued_amount", "used_count", "used_amount", "updated_at"]
    actions = ["recount"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return (["alarm_thresholds"] if obj else ["inventory", "alarm_thresholds"]) + self.readonly_fields

    @staticmethod
    def _of(spent: int, limit: int | None) -> str:
        return f"{spent:,}" if limit is None else f"{spent:,} / {limit:,} ({spent * 100 // limit if limit else 100} %)"

    @admin.display(description=_("inventory budget"))
    def budget_display(self, obj: InventoryBudget) -> str:
        return str(obj)

    @admin.display(description=_("issued (count; amount)"))
    def issue_display(self, obj: InventoryBudget) -> str:
        inv = obj.inventory
        return gettext("%(count)s; %(amount)s — face value %(face)s") % {
            "count": self._of(obj.issued_count, inv.issue_budget_count),
            "amount": self._of(obj.issued_amount, inv.issue_budget_amount), "face": f"{inv.policy.face_value():,}"}

    @admin.display(description=_("used (count; discount)"))
    def use_display(self, obj: InventoryBudget) -> str:
        inv = obj.inventory
        return f"{self._of(obj.used_count, inv.use_budget_count)}; {self._of(obj.used_amount, inv.use_budget_amount)}"

    @admin.display(description=_("alarm thresholds"))
    def thresholds_display(self, obj: InventoryBudget) -> str:
        return ", ".join(f"{t} %" for t in obj.alarm_thresholds) or "—"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.tenant_id = obj.inventory.tenant_id
        services.budget_settings_save(spend=obj, actor=self.actor(request))

    @admin.action(description=_("Recount the spend from the inventory's history"), permissions=["change"])
    def recount(self, request: HttpRequest, queryset: QuerySet) -> None:
        for spend in queryset.select_related("inventory__policy", "inventory__tenant"):
            budget_recount(inventory=spend.inventory, actor=self.actor(request))
        self.message_user(request, gettext("Recounted."), messages.SUCCESS)


@admin.register(Alarm)
class AlarmAdmin(TenantScopedAdmin):
    list_display = ["raised_at", "tenant", "inventory", "budget", "threshold", "spent", "limit", "acknowledged_at",
                    "acknowledged_by"]
    list_filter = ["budget", "threshold", ("acknowledged_at", admin.EmptyFieldListFilter), "tenant"]
    list_select_related = ["tenant", "inventory", "acknowledged_by"]
    search_fields = ["inventory__name", "inventory__public_id"]
    actions = ["acknowledge"]
    date_hierarchy = "raised_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # raised by the system only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.action(description=_("Acknowledge the selected alarms"), permissions=["acknowledge"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = services.alarms_acknowledge(alarms=queryset, user=request.user)
        self.message_user(request, ngettext("Acknowledged %(count)d alarm.", "Acknowledged %(count)d alarms.", done)
                          % {"count": done}, messages.SUCCESS)

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("risk.change_alarm")


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https",
                         help_text=_("http(s) URL that receives a JSON POST per event."))
    events = forms.MultipleChoiceField(label=_("events"), choices=list(WEBHOOK_EVENTS.items()),
                                       widget=forms.CheckboxSelectMultiple,
                                       help_text=_("Tick the events this endpoint receives (docs/WEBHOOKS.md)."))
    notice_days = forms.IntegerField(label=_("notice (days)"), min_value=1, max_value=90, initial=3,
                                     help_text=_("coupon.expiring and points.expiring are sent this many days "
                                                 "before the end (1–90), once per coupon or points credit."))

    class Meta:
        model = WebhookEndpoint
        fields = "__all__"  # noqa: DJ007 admin-only form: the ModelAdmin's `fields` picks the fields

    def clean_url(self) -> str:
        url = self.cleaned_data.get("url") or ""
        try:
            url_check_at_save(url)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    form = WebhookEndpointForm
    list_display = ["name", "tenant", "url", "is_active", "created_at"]
    list_filter = ["is_active", "tenant"]
    search_fields = ["name", "url"]
    readonly_fields = ["secret", "created_at"]
    fields = ["name", "url", "events", "notice_days", "is_active", "secret", "created_at"]

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.webhook_endpoint_save(endpoint=obj, actor=self.actor(request))


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["attempted_at", "status_code", "error", "duration_ms"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    list_display = ["delivery_display", "tenant", "status", "attempts", "next_attempt_at", "last_error", "created_at",
                    "delivered_at"]
    list_filter = ["status", "event", "tenant"]
    list_select_related = ["tenant", "endpoint"]
    readonly_fields = ["endpoint", "alarm", "event_code", "event_id", "event_key", "body_code", "status", "attempts",
                       "next_attempt_at", "last_error", "created_at", "delivered_at"]
    fields = readonly_fields
    inlines = [WebhookAttemptInline]
    actions = ["retry"]

    # What was sent is a machine's message: its event key and JSON body shown as code (issue #20).
    @admin.display(description=_("event"), ordering="event")
    def event_code(self, obj: WebhookDelivery) -> Any:
        return format_html("<code>{}</code>", obj.event)

    @admin.display(description=_("body"))
    def body_code(self, obj: WebhookDelivery) -> Any:
        return format_html("<pre class=\"json\">{}</pre>", obj.body)

    @admin.display(description=_("webhook delivery"))
    def delivery_display(self, obj: WebhookDelivery) -> str:
        return str(obj)

    @admin.action(description=_("Send the selected failed deliveries again"), permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = sum(webhook_delivery_retry(delivery_id=pk, actor=self.actor(request))
                   for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, ngettext("%(count)d failed delivery will be sent again.",
                                            "%(count)d failed deliveries will be sent again.", done)
                          % {"count": done}, messages.SUCCESS if done else messages.WARNING)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)


# --- unacknowledged alarms on the console's index page -------------------------------------------------------------

def _announce_alarms(request: HttpRequest) -> None:
    user = request.user
    if not user.is_active or not user.is_staff or not user.has_perm("risk.view_alarm"):
        return
    count = selectors.unacknowledged_alarms(tenant_id=user_tenant_id(request)).count()
    if count:
        url = reverse("admin:risk_alarm_changelist") + "?acknowledged_at__isempty=1"
        text = ngettext('{} unacknowledged budget alarm — <a href="{}">review them</a>.',
                        '{} unacknowledged budget alarms — <a href="{}">review them</a>.', count)
        messages.warning(request, format_html(text, count, url))


_index = admin.site.index


def _index_with_alarms(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
    _announce_alarms(request)
    return _index(request, extra_context)


admin.site.index = _index_with_alarms  # type: ignore[method-assign]
