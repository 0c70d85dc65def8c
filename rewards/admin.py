"""Console for reward rules, the grants they made, the points ledger and members' birthdays (issue #10)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import TenantScopedAdmin, user_tenant_id
from core.exceptions import DomainError
from core.models import Tenant
from rewards import selectors, services
from rewards.models import ExchangeOffer, MemberBirthday, MemberPoints, PointsEntry, RewardGrant, RewardRule
import json

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class RewardRuleForm(forms.ModelForm):
    request_tenant_id: int | None = None  # set per request by RewardRuleAdmin.get_form

    class Meta:
        model = RewardRule
        fields = "__all__"  # noqa: DJ007 admin-only form: the ModelAdmin's `fieldsets` pick the fields

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        probe = RewardRule(pk=self.instance.pk, tenant_id=self.instance.tenant_id or self.request_tenant_id)
        for name in ("trigger", "inventory", "points", "review_text_points", "review_image_points",
                     "purchase_rate_bp", "is_active"):
            setattr(probe, name, cleaned.get(name, getattr(self.instance, name)))
        if cleaned.get("tenant") is not None:
            probe.tenant_id = cleaned["tenant"].pk
        if probe.trigger and not self.errors:
            for field, message in services.rule_errors(probe).items():
                self.add_error(field if field in self.fields else None, message)
        return cleaned


@admin.register(RewardRule)
class RewardRuleAdmin(TenantScopedAdmin):
    form = RewardRuleForm
    list_display = ["name", "trigger", "is_active", "points", "review_text_points", "review_image_points",
                    "purchase_rate_bp", "inventory", "points_valid_days", "tenant"]
    list_filter = ["trigger", "is_active", "tenant"]
    search_fields = ["name"]
    list_select_related = ["inventory", "tenant"]
    fieldsets = [
        (None, {"fields": ["name", "trigger", "is_active"]}),
        (_("Coupon"), {"fields": ["inventory"]}),
        (_("Points"), {"fields": ["points", "review_text_points", "review_image_points", "purchase_rate_bp",
                               "points_valid_days"],
                    "description": _("Signup and birthday use “points”; review uses the text / image amounts; "
                                     "purchase confirmed uses the rate (basis points: 100 = 1 %), rounded down to "
                                     "the tenant's rounding unit. Grants keep the amounts in force when granted.")}),
    ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request_tenant_id": user_tenant_id(request)})

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if obj.tenant_id is None:
            raise DomainError(_("Choose a tenant."))
        services.reward_rule_save(rule=obj, actor=self.actor(request))


class ReadOnlyRewardsAdmin(TenantScopedAdmin):
    """Written by services only; the console lists and searches them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        term = search_term.strip()  # member ids are exact references: an index lookup, not a LIKE scan
        return (queryset.filter(member_id=term), False) if term else (queryset, False)


@admin.register(RewardGrant)
class RewardGrantAdmin(ReadOnlyRewardsAdmin):
    list_display = ["created_at", "member_id", "trigger", "reference", "points", "coupon", "coupon_error", "rule",
                    "client", "tenant"]
    list_filter = ["trigger", "tenant"]
    search_fields = ["=member_id"]
    list_select_related = ["coupon", "rule", "client", "tenant"]
    date_hierarchy = "created_at"

    # The rule as it was is a record of keys and values: shown as code, not as prose (issue #20).
    @admin.display(description=_("rule at grant time"))
    def rule_snapshot_json(self, obj: RewardGrant) -> Any:
        return format_html("<pre class=\"json\">{}</pre>", json.dumps(obj.rule_snapshot, ensure_ascii=False,
                                                                         indent=1, sort_keys=True))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["rule_snapshot_json" if f == "rule_snapshot" else f for f in super().get_fields(request, obj)]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*super().get_readonly_fields(request, obj), "rule_snapshot_json"]


@admin.register(PointsEntry)
class PointsEntryAdmin(ReadOnlyRewardsAdmin):
    list_display = ["created_at", "member_id", "amount", "remaining", "reason", "reference", "expires_at", "tenant"]
    list_filter = ["reason", "tenant"]
    search_fields = ["=member_id"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"


class PointsAdjustForm(forms.Form):
    """A manual correction of a member's points (issue #16): the reason is required and lands in the audit log."""

    amount = forms.IntegerField(label=_("points"), min_value=-services.MAX_POINTS, max_value=services.MAX_POINTS,
                                help_text=_("Positive to add points, negative to take them away."))
    valid_days = forms.IntegerField(label=_("valid for (days)"), required=False, min_value=1, max_value=36_500,
                                    help_text=_("Added points only: they expire after this many days; empty = "
                                                "never."))
    note = forms.CharField(label=_("reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text=_("Why the balance is corrected; kept in the ledger and the audit log."))


class NewMemberAdjustForm(PointsAdjustForm):
    member_id = forms.CharField(label=_("member ID"), max_length=64)
    tenant = forms.ModelChoiceField(label=_("tenant"), queryset=Tenant.objects.all(), required=False,
                                    help_text=_("Superusers only: the tenant of this member."))
    field_order = ["tenant", "member_id", "amount", "valid_days", "note"]


@admin.register(MemberPoints)
class MemberPointsAdmin(ReadOnlyRewardsAdmin):
    list_display = ["member_id", "balance", "ledger_link", "updated_at", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["=member_id"]
    list_select_related = ["tenant"]
    change_list_template = "admin/rewards/memberpoints/change_list.html"

    @admin.display(description=_("ledger"))
    def ledger_link(self, obj: MemberPoints) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:rewards_memberpoints_ledger", args=[obj.pk]),
                           gettext("Ledger and adjustment"))

    def get_urls(self) -> list[Any]:
        return [path("<int:object_id>/ledger/", self.admin_site.admin_view(self.ledger_view),
                     name="rewards_memberpoints_ledger"),
                path("adjust/", self.admin_site.admin_view(self.adjust_view), name="rewards_memberpoints_adjust"),
                *super().get_urls()]

    @staticmethod
    def can_adjust(request: HttpRequest) -> bool:
        return request.user.has_perm("rewards.change_memberpoints")

    def _adjust(self, request: HttpRequest, tenant: Tenant, member_id: str, data: dict[str, Any]) -> bool:
        try:
            services.points_adjust(tenant=tenant, member_id=member_id, amount=data["amount"], note=data["note"],
                                   valid_days=data.get("valid_days"), actor=self.actor(request))
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return False
        self.message_user(request, gettext("%(member)s: %(amount)+d points (%(note)s).")
                          % {"member": member_id, "amount": data["amount"], "note": data["note"].strip()},
                          messages.SUCCESS)
        return True

    def ledger_view(self, request: HttpRequest, object_id: int) -> Any:
        """A member's balance, newest ledger lines and the adjustment form."""
        member = get_object_or_404(self.get_queryset(request).select_related("tenant"), pk=object_id)
        if not self.has_view_permission(request, member):
            raise DjangoPermissionDenied
        form = PointsAdjustForm(request.POST or None) if self.can_adjust(request) else None
        if request.method == "POST":
            if form is None:
                raise DjangoPermissionDenied
            if form.is_valid() and self._adjust(request, member.tenant, member.member_id, form.cleaned_data):
                return HttpResponseRedirect(request.path)
        entries = selectors.points_entries(tenant=member.tenant, member_id=member.member_id).select_related(
            "coupon")[:200]
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "member": member, "form": form,
                   "balance": selectors.points_balance(tenant=member.tenant, member_id=member.member_id,
                                                       now=timezone.now()),
                   "entries": entries, "title": gettext("Points of %(member)s") % {"member": member.member_id}}
        return TemplateResponse(request, "admin/rewards/memberpoints/ledger.html", context)

    def adjust_view(self, request: HttpRequest) -> Any:
        """Adjust the points of any member, also one who has none yet."""
        if not self.can_adjust(request):
            raise DjangoPermissionDenied
        form = NewMemberAdjustForm(request.POST or None)
        if not request.user.is_superuser:
            form.fields.pop("tenant")
        if request.method == "POST" and form.is_valid():
            tenant_id = user_tenant_id(request)
            tenant = Tenant.objects.get(pk=tenant_id) if tenant_id is not None else form.cleaned_data.get("tenant")
            member_id = form.cleaned_data["member_id"].strip()
            if tenant is None:
                self.message_user(request, gettext("Choose the tenant of this member."), messages.ERROR)
            elif self._adjust(request, tenant, member_id, form.cleaned_data):
                row = MemberPoints.objects.get(tenant=tenant, member_id=member_id)
                return HttpResponseRedirect(reverse("admin:rewards_memberpoints_ledger", args=[row.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": gettext("Adjust a member's points")}
        return TemplateResponse(request, "admin/rewards/memberpoints/adjust.html", context)


class ExchangeOfferForm(forms.ModelForm):
    class Meta:
        model = ExchangeOffer
        fields = "__all__"  # noqa: DJ007 admin-only form: the ModelAdmin's `fields` picks the fields


@admin.register(ExchangeOffer)
class ExchangeOfferAdmin(TenantScopedAdmin):
    """Inventories members can buy with points (issue #16)."""

    form = ExchangeOfferForm
    list_display = ["inventory", "points", "is_active", "updated_at", "tenant"]
    list_filter = ["is_active", "tenant"]
    list_select_related = ["inventory", "tenant"]
    fields = ["inventory", "points", "is_active"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly + ["inventory"] if obj is not None else readonly

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.exchange_offer_save(offer=obj, actor=self.actor(request))


class BirthdayUploadForm(forms.Form):
    file = forms.FileField(label=_("File"), help_text=_("CSV, one member a line: member_id,YYYY-MM-DD (or MM-DD) or member_id,month,day. "
                                     "A header line is optional. Any bad line → nothing is imported."))
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.all(), required=False, label=_("Tenant"),
                                    help_text=_("Superusers only: the tenant these members belong to."))


@admin.register(MemberBirthday)
class MemberBirthdayAdmin(TenantScopedAdmin):
    list_display = ["member_id", "month", "day", "updated_at", "tenant"]
    list_filter = ["month", "tenant"]
    search_fields = ["=member_id"]
    list_select_related = ["tenant"]
    change_list_template = "admin/rewards/memberbirthday/change_list.html"

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.member_birthday_save(birthday=obj, actor=self.actor(request))

    def get_urls(self) -> list[Any]:
        return [path("upload/", self.admin_site.admin_view(self.upload_view), name="rewards_memberbirthday_upload"),
                *super().get_urls()]

    def upload_view(self, request: HttpRequest) -> Any:
        if not self.has_add_permission(request):
            raise DjangoPermissionDenied
        form = BirthdayUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            tenant_id = user_tenant_id(request)
            tenant = Tenant.objects.get(pk=tenant_id) if tenant_id is not None else form.cleaned_data["tenant"]
            upload = form.cleaned_data["file"]
            try:
                if tenant is None:
                    raise DomainError(_("Choose the tenant of these members."))
                if upload.size > MAX_UPLOAD_BYTES:
                    raise DomainError(_("The file is larger than 20 MB; split it."))
                try:
                    text = upload.read().decode("utf-8-sig")
                except UnicodeDecodeError as exc:
                    raise DomainError(_("The file is not UTF-8 text (save it as CSV UTF-8).")) from exc
                count = services.birthdays_import(tenant=tenant, text=text, actor=self.actor(request))
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, ngettext("%(count)d birthday set.", "%(count)d birthdays set.", count)
                                  % {"count": count}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:rewards_memberbirthday_changelist"))
        if not request.user.is_superuser:
            form.fields.pop("tenant")
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": _("Upload members' birthdays")}
        return TemplateResponse(request, "admin/rewards/memberbirthday/upload.html", context)
