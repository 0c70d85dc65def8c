"""Console for policies (with the approval flow), inventories, batches and codes."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import TenantExportActionMixin, TenantScopedAdmin, user_tenant_id
from core.admin_approvals import decide_page
from core.approvals import kinds as approval_kinds
from core.admin_lists import DateRangeFilter, LargeTableAdminMixin, values_filter
from core.exceptions import DomainError
from core.admin_confirm import confirm_action
from core.money import format_money, money_column
from coupons import selectors, services
from coupons.services import revocation as revocations
from coupons.admin_generation import BatchGenerationAdminMixin
from coupons.services.counters import inventory_counts
from coupons.services.issue import RequestContext
from coupons.services.grant import GRANT_APPROVE_PERMISSION, grant_approve, grant_reject
from coupons.services.grant import grant_create as issue_grant
from coupons.selectors import approvals_waiting_count, policies_pending
from coupons.models import (CHANNEL_LABELS, CHANNELS, PAYMENT_METHOD_LABELS, PAYMENT_METHODS, AudienceEntry,
                            CouponBatch, CouponCode, CouponGrant,
                            CouponInventory, CouponIssue, CouponPolicy, CouponUsage)


class PolicyForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(choices=[(c, CHANNEL_LABELS[c]) for c in CHANNELS], required=False,
                                         widget=forms.CheckboxSelectMultiple,
                                         help_text=_("None ticked = every channel."))
    payment_methods = forms.MultipleChoiceField(choices=[(m, PAYMENT_METHOD_LABELS[m]) for m in PAYMENT_METHODS], required=False,
                                                widget=forms.CheckboxSelectMultiple,
                                                help_text=_("None ticked = every payment method."))

    class Meta:
        model = CouponPolicy
        fields = "__all__"  # noqa: DJ007 admin-only form: the ModelAdmin's `fieldsets` pick the fields

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for field, message in services.policy_rule_errors(self.instance_with(cleaned)).items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
            elif field not in self.fields:
                self.add_error(None, message)
        return cleaned

    def instance_with(self, cleaned: dict[str, Any]) -> CouponPolicy:
        probe = CouponPolicy()
        for name in ("kind", "amount", "rate", "threshold", "cap", "sku_deduction_sku", "sku_deduction_units",
                     "validity_type", "valid_from", "valid_until", "validity_hours", "validity_days",
                     "audience_tiers"):
            setattr(probe, name, cleaned.get(name, getattr(self.instance, name)))
        return probe


def _listed(values: list[str]) -> str:
    return ", ".join(values)


def policy_terms(policy: CouponPolicy) -> list[tuple[Any, str]]:
    """The terms an approver decides on (issue #20), as (label, text) lines in the console's language and the
    tenant's money and time formats."""
    currency = policy.tenant.currency
    money = lambda value: format_money(value, currency)  # noqa: E731
    when = lambda value: date_format(timezone.localtime(value), "Y-m-d H:i")  # noqa: E731
    kind = policy.kind
    if kind in ("amount", "threshold"):
        discount = money(policy.amount)
    elif kind == "percentage":
        discount = _("%(rate)s%% off") % {"rate": policy.rate}
    elif kind == "shipping":
        discount = (_("shipping fee, at most %(amount)s") % {"amount": money(policy.amount)} if policy.amount
                    else _("the whole shipping fee"))
    else:
        discount = _("%(units)s unit(s) of SKU %(sku)s free") % {"units": policy.sku_deduction_units,
                                                                  "sku": policy.sku_deduction_sku}
    if policy.validity_type == CouponPolicy.ValidityType.FIXED:
        validity = _("from %(start)s to %(end)s") % {"start": when(policy.valid_from), "end": when(policy.valid_until)}
    else:
        validity = _("%(hours)s hours from issue") % {"hours": policy.validity_hours}
        if policy.valid_until:
            validity += " " + _("(never after %(end)s)") % {"end": when(policy.valid_until)}
    scope = [f"{label}: {_listed(values)}" for label, values in (
        (_("included SKUs"), policy.include_skus), (_("excluded SKUs"), policy.exclude_skus),
        (_("included SPUs"), policy.include_spus), (_("excluded SPUs"), policy.exclude_spus),
        (_("included categories"), policy.include_categories), (_("excluded categories"), policy.exclude_categories),
        (_("included shops"), policy.include_shops), (_("excluded shops"), policy.exclude_shops)) if values]
    stacking = policy.get_stacking_group_display()
    if policy.exclusive:
        stacking = _("%(group)s, exclusive (combines with no other coupon)") % {"group": stacking}
    budgets = []
    for inventory in policy.inventories.order_by("id")[:20]:
        parts = [f"{label} {value}" for label, value in (
            (_("issue budget (count)"), inventory.issue_budget_count),
            (_("issue budget (amount)"), money(inventory.issue_budget_amount) if inventory.issue_budget_amount
             is not None else None),
            (_("use budget (count)"), inventory.use_budget_count),
            (_("use budget (amount)"), money(inventory.use_budget_amount) if inventory.use_budget_amount
             is not None else None)) if value is not None]
        budgets.append(f"{inventory.name}: {', '.join(parts) if parts else _('no budget')}")
    return [
        (_("kind"), policy.get_kind_display()),
        (_("discount"), discount),
        (_("cap"), money(policy.cap) if policy.cap is not None else _("none")),
        (_("threshold"), money(policy.threshold) if policy.threshold else _("none")),
        (_("validity"), validity),
        (_("scope"), "; ".join(scope) if scope else _("every product and shop")),
        (_("channels"), _listed(policy.channels) if policy.channels else _("every channel")),
        (_("payment methods"), _listed(policy.payment_methods) if policy.payment_methods
         else _("every payment method")),
        (_("audience"), policy.get_audience_display()),
        (_("stacking group"), stacking),
        (_("budget"), "; ".join(budgets) if budgets else
         _("Budgets are set on the inventories that use a policy; none uses this one yet.")),
        (_("description"), policy.description or "—"),
        (_("author"), str(policy.created_by)),
        (_("submitted at"), when(policy.submitted_at) if policy.submitted_at else "—"),
    ]


APPROVALS_SHOWN = 200  # the inbox lists at most this many (oldest first); the counts are exact


def approvals_badge(request: HttpRequest) -> int | None:
    """The console header's count for approvers: policies, large distributions and large grants waiting that they
    may decide (0 shown as 0)."""
    try:
        tenant_id = user_tenant_id(request)
    except DjangoPermissionDenied:
        return None
    return approvals_waiting_count(user=request.user, tenant_id=tenant_id)


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                             help_text=_("Shown to the author, who can fix the policy and submit it again."))


@admin.register(CouponPolicy)
class CouponPolicyAdmin(TenantExportActionMixin, TenantScopedAdmin):
    form = PolicyForm
    list_display = ["name", "tenant", "kind", "status", "stacking_group", "exclusive", "created_by", "decided_by",
                    "created_at"]
    list_filter = ["status", "kind", "stacking_group", "tenant"]
    search_fields = ["name", "public_id"]
    list_select_related = ["tenant", "created_by", "decided_by"]
    readonly_fields = ["public_id", "status", "created_by", "submitted_at", "decided_by", "decided_at",
                       "rejection_reason", "created_at"]
    actions = ["submit_for_approval", "approve", "clone_as_template"]
    change_form_template = "admin/coupons/couponpolicy/change_form.html"
    fieldsets = [
        (None, {"fields": ["name", "description", "kind", "stacking_group", "exclusive"]}),
        (_("Discount"), {"fields": ["amount", "rate", "threshold", "cap", "sku_deduction_sku", "sku_deduction_units"]}),
        (_("Validity"), {"fields": ["validity_type", "valid_from", "valid_until", "validity_hours",
                                     "validity_days"]}),
        (_("Scope"), {"classes": ["collapse"], "fields": [
            "include_skus", "exclude_skus", "include_spus", "exclude_spus", "include_categories",
            "exclude_categories", "include_shops", "exclude_shops", "channels", "payment_methods", "audience",
            "audience_tiers"]}),
        (_("Approval"), {"fields": ["public_id", "status", "created_by", "submitted_at", "decided_by", "decided_at",
                                 "rejection_reason", "created_at"]}),
    ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # R-POL-5: once submitted, and for ever once approved, the console shows the policy read-only.
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.APPROVE_PERMISSION)

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.policy_save_draft(policy=obj, actor_user=request.user)

    def _each(self, request: HttpRequest, queryset: QuerySet, func: Any, done_text: Any, failed_text: Any) -> None:
        """``done_text(count)``: the success message; ``failed_text``: with %(name)s and %(error)s."""
        done, failed = 0, []
        for policy in queryset:
            try:
                func(policy=policy, actor_user=request.user)
                done += 1
            except DomainError as exc:
                failed.append(failed_text % {"name": policy.name, "error": exc.message})
        if done:
            self.message_user(request, done_text(done) % {"count": done}, messages.SUCCESS)
        for line in failed:
            self.message_user(request, line, messages.ERROR)

    @admin.action(description=_("Submit the selected policies for approval"), permissions=["change"])
    def submit_for_approval(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, services.policy_submit,
                   lambda n: ngettext("Submitted %(count)d policy.", "Submitted %(count)d policies.", n),
                   _("Not submitted: “%(name)s”: %(error)s"))

    @admin.action(description=_("Copy the selected policies as new drafts"), permissions=["add"])
    def clone_as_template(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, services.policy_clone,
                   lambda n: ngettext("Copied %(count)d policy as a draft.", "Copied %(count)d policies as drafts.",
                                      n),
                   _("Not copied: “%(name)s”: %(error)s"))

    @admin.action(description=_("Approve the selected policies"), permissions=["approve"])
    @confirm_action()
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, services.policy_approve,
                   lambda n: ngettext("Approved %(count)d policy.", "Approved %(count)d policies.", n),
                   _("Not approved: “%(name)s”: %(error)s"))

    def get_urls(self) -> list[Any]:
        return [
            path("approvals/", self.admin_site.admin_view(self.approvals_view), name="coupons_couponpolicy_approvals"),
            path("<int:object_id>/decide/", self.admin_site.admin_view(self.decide_view),
                 name="coupons_couponpolicy_decide"),
            *super().get_urls(),
        ]

    def approvals_view(self, request: HttpRequest) -> Any:
        """The approvals inbox (issue #20): what waits for a decision in the user's tenant, split into what this user
        may decide and what they may not because they wrote it (R-POL-5: the approver is never the author).

        Policies first; then every other kind registered in ``core.approvals`` (large partner distributions, large
        grants), each with what, who, when and how many, and a link to its decide page."""
        if not self.has_view_permission(request):
            raise DjangoPermissionDenied
        pending = list(policies_pending(tenant_id=user_tenant_id(request))
                       .select_related("tenant", "created_by")[:APPROVALS_SHOWN])
        may_approve = self.has_approve_permission(request)
        mine = [p for p in pending if p.created_by_id == request.user.pk]
        others = [p for p in pending if p.created_by_id != request.user.pk]
        sections = []
        for kind in approval_kinds():
            waiting = kind.waiting(user_tenant_id(request))
            items = kind.items(waiting[:APPROVALS_SHOWN])
            sections.append({"key": kind.key, "label": kind.label, "items": items,
                             "may_decide": request.user.has_perm(kind.permission),
                             "own": waiting.filter(**{kind.requester_field: request.user.pk}).count(),
                             "truncated": len(items) >= APPROVALS_SHOWN})
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": _("Approvals waiting"), "may_approve": may_approve,
                   "to_decide": others, "own": mine, "shown": APPROVALS_SHOWN,
                   "truncated": len(pending) >= APPROVALS_SHOWN,
                   "waiting_count": approvals_waiting_count(user=request.user, tenant_id=user_tenant_id(request)),
                   "own_count": policies_pending(tenant_id=user_tenant_id(request))
                   .filter(created_by_id=request.user.pk).count() + sum(s["own"] for s in sections),
                   "sections": sections}
        return TemplateResponse(request, "admin/coupons/couponpolicy/approvals.html", context)

    def decide_view(self, request: HttpRequest, object_id: int) -> Any:
        """Submit, approve or reject one policy from its page (reject asks for a reason)."""
        policy = get_object_or_404(self.get_queryset(request), pk=object_id)
        change_url = reverse("admin:coupons_couponpolicy_change", args=[policy.pk])
        # Opened from the approvals inbox, the decision leads back to it (only that page: no open redirect).
        inbox = reverse("admin:coupons_couponpolicy_approvals")
        next_url = inbox if request.POST.get("next", request.GET.get("next")) == inbox else None
        reject_form = RejectForm(request.POST or None)
        if request.method == "POST":
            decision = request.POST.get("decision")
            try:
                if decision == "submit":
                    if not self.has_change_permission(request, policy):
                        raise DjangoPermissionDenied
                    services.policy_submit(policy=policy, actor_user=request.user)
                    self.message_user(request, _("“%(name)s” was submitted for approval.") % {"name": policy.name},
                                      messages.SUCCESS)
                elif decision == "approve":
                    services.policy_approve(policy=policy, actor_user=request.user)
                    self.message_user(request, _("“%(name)s” is approved and can no longer be changed.")
                                      % {"name": policy.name}, messages.SUCCESS)
                elif decision == "reject":
                    if not reject_form.is_valid():
                        raise DomainError(_("Say why the policy is rejected."), code="reason_required")
                    services.policy_reject(policy=policy, actor_user=request.user,
                                           reason=reject_form.cleaned_data["reason"])
                    self.message_user(request, _("“%(name)s” was rejected.") % {"name": policy.name},
                                      messages.SUCCESS)
                else:
                    raise DomainError(_("Choose submit, approve or reject."), code="invalid_decision")
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(next_url or change_url)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "original": policy,
                   "policy": policy, "reject_form": reject_form, "terms": policy_terms(policy),
                   "title": gettext("Decide on “%(policy)s”") % {"policy": policy.name},
                   "next": next_url or "", "inbox_url": reverse("admin:coupons_couponpolicy_approvals"),
                   "is_author": policy.created_by_id == request.user.pk,
                   "can_approve": self.has_approve_permission(request) and policy.created_by_id != request.user.pk}
        return TemplateResponse(request, "admin/coupons/couponpolicy/decide.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}),
                         "decide_url": reverse("admin:coupons_couponpolicy_decide", args=[object_id])}
        return super().change_view(request, object_id, form_url, extra_context)


class GrantFileForm(forms.Form):
    MAX_BYTES = 64 * 1024 * 1024
    members_file = forms.FileField(
        label=_("Members file"), help_text=_("A text or CSV file with one member id per line (first column); a header line 'member_id' is "
                  "skipped. Each member gets at most one coupon."))

    def clean_members_file(self) -> list[str]:
        upload = self.cleaned_data["members_file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 64 MB."))
        members: list[str] = []
        for number, raw in enumerate(upload, start=1):
            try:
                line = raw.decode("utf-8-sig").strip()
            except UnicodeDecodeError as exc:
                raise forms.ValidationError(_("Line %(number)d is not UTF-8 text.") % {"number": number}) from exc
            value = line.split(",")[0].strip().strip('"')
            if not value or (number == 1 and value.lower() == "member_id"):
                continue
            if len(value) > 64:
                raise forms.ValidationError(_("Line %(number)d: member ids are at most 64 characters.")
                                            % {"number": number})
            members.append(value)
        if not members:
            raise forms.ValidationError(_("The file holds no member ids."))
        return members


class RevokeFileForm(GrantFileForm):
    reason = forms.CharField(label=_("reason"), max_length=500,
                             help_text=_("Why the coupons are taken back; kept in the audit log of each coupon."))
    field_order = ["members_file", "reason"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["members_file"].help_text = _(
            "A text or CSV file with one member id per line (first column; a header line 'member_id' is skipped), "
            "at most 10,000 members. Their ISSUED coupons of this inventory are revoked; a locked one is reported, "
            "not revoked.")


class InventoryForm(forms.ModelForm):
    class Meta:
        model = CouponInventory
        fields = "__all__"  # noqa: DJ007 admin-only form: the ModelAdmin's `fieldsets` pick the fields


@admin.register(CouponInventory)
class CouponInventoryAdmin(TenantExportActionMixin, TenantScopedAdmin):
    form = InventoryForm
    change_form_template = "admin/coupons/couponinventory/change_form.html"
    list_display = ["name", "tenant", "public_id", "event", "policy", "total_quantity", "issued", "used",
                    "per_member_limit", "is_active"]
    list_filter = ["is_active", "event", "policy", "tenant"]
    search_fields = ["name", "public_id", "promo_code"]
    list_select_related = ["tenant", "event", "policy"]
    readonly_fields = ["public_id", "issued", "used", "created_at"]
    fieldsets = [
        (None, {"fields": ["name", "event", "policy", "is_active"]}),
        (_("Pool"), {"fields": ["total_quantity", "per_member_limit", "promo_code", "issued", "used"]}),
        (_("Budgets"), {"fields": ["issue_budget_count", "issue_budget_amount", "use_budget_count",
                                "use_budget_amount"]}),
        (_("Identifiers"), {"fields": ["public_id", "created_at"]}),
    ]

    @admin.display(description=_("issued"))
    def issued(self, obj: CouponInventory) -> int:
        return inventory_counts(obj.pk)["issued"]

    @admin.display(description=_("used"))
    def used(self, obj: CouponInventory) -> int:
        return inventory_counts(obj.pk)["used"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "policy":
            qs = CouponPolicy.objects.filter(status=CouponPolicy.Status.APPROVED)
            tenant_id = user_tenant_id(request)
            kwargs["queryset"] = qs if tenant_id is None else qs.filter(tenant_id=tenant_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly += ["event", "policy"]  # the pool's codes were made for this event × policy
        return readonly

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.inventory_save(inventory=obj, actor=self.actor(request))

    def get_urls(self) -> list[Any]:
        return [path("<int:object_id>/grant/", self.admin_site.admin_view(self.grant_view),
                     name="coupons_couponinventory_grant"),
                path("<int:object_id>/revoke/", self.admin_site.admin_view(self.revoke_view),
                     name="coupons_couponinventory_revoke"), *super().get_urls()]

    def revoke_view(self, request: HttpRequest, object_id: int) -> Any:
        """Revoke this inventory's coupons held by the members of an uploaded file, each member reported (#16)."""
        inventory = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not request.user.has_perm("coupons.change_couponcode"):
            raise DjangoPermissionDenied
        form = RevokeFileForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            try:
                report = revocations.coupons_revoke_for_members(
                    tenant=inventory.tenant, member_ids=form.cleaned_data["members_file"],
                    reason=form.cleaned_data["reason"], ctx=RequestContext(operator=request.user),
                    inventory=inventory.public_id, max_members=revocations.CONSOLE_MAX_MEMBERS)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                revoked = sum(len(r.revoked) for r in report)
                failed = sum(1 for r in report if not r.ok)
                self.message_user(request, gettext(
                    "%(revoked)d coupons revoked for %(members)d members; %(failed)d members with a problem are "
                    "listed below.") % {"revoked": revoked, "members": len(report), "failed": failed},
                    messages.WARNING if failed else messages.SUCCESS)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "original": inventory, "form": form,
                   "report": report, "title": gettext("Revoke coupons of %(name)s") % {"name": inventory.name}}
        return TemplateResponse(request, "admin/coupons/couponinventory/revoke.html", context)

    def grant_view(self, request: HttpRequest, object_id: int) -> Any:
        """Grant this inventory to the members of an uploaded file, as a job (R-ISS-2)."""
        inventory = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not request.user.has_perm("coupons.add_coupongrant"):
            raise DjangoPermissionDenied
        form = GrantFileForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = issue_grant(tenant=inventory.tenant, inventory_public_id=inventory.public_id,
                                     member_ids=form.cleaned_data["members_file"],
                                     ctx=RequestContext(operator=request.user), force_async=True)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                if result.grant.status == CouponGrant.Status.AWAITING_APPROVAL:
                    self.message_user(request, ngettext(
                        "The grant of “%(name)s” to %(count)d member awaits approval: no coupon is issued until "
                        "another user with the approver role approves it.",
                        "The grant of “%(name)s” to %(count)d members awaits approval: no coupon is issued until "
                        "another user with the approver role approves it.",
                        result.grant.total) % {"name": inventory.name, "count": result.grant.total},
                        messages.WARNING)
                    return HttpResponseRedirect(reverse("admin:coupons_coupongrant_change", args=[result.grant.pk]))
                self.message_user(request, ngettext(
                    "Granting “%(name)s” to %(count)d member as job %(job)s; its page shows the progress.",
                    "Granting “%(name)s” to %(count)d members as job %(job)s; its page shows the progress.",
                    result.grant.total) % {"name": inventory.name, "count": result.grant.total,
                                           "job": result.grant.public_id}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:coupons_coupongrant_change", args=[result.grant.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.opts, "original": inventory, "form": form,
                   "title": gettext("Grant “%(inventory)s” to members") % {"inventory": inventory.name}}
        return TemplateResponse(request, "admin/coupons/couponinventory/grant.html", context)


class BatchForm(forms.ModelForm):
    class Meta:
        model = CouponBatch
        fields = ["tenant", "inventory", "batch_code", "quantity", "code_length", "alphabet", "prefix"]


@admin.register(CouponBatch)
class CouponBatchAdmin(BatchGenerationAdminMixin, TenantScopedAdmin):
    form = BatchForm
    list_display = ["batch_code", "tenant", "inventory", "quantity", "generated_count", "status", "created_at",
                    "finished_at"]
    list_filter = ["status", "inventory", "tenant"]
    search_fields = ["batch_code"]
    list_select_related = ["tenant", "inventory"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        base = ["status", "generated_count", "started_at", "finished_at", "last_error", "created_at"]
        if obj is not None:
            base = ["inventory", "batch_code", "quantity", "code_length", "alphabet", "prefix", *base]
        return base

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Generation parameters are fixed once a batch exists; its page is read-only (actions still work).
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        batch = services.batch_create(inventory=obj.inventory, batch_code=obj.batch_code, quantity=obj.quantity,
                                      code_length=obj.code_length, alphabet=obj.alphabet, prefix=obj.prefix,
                                      actor=self.actor(request))
        obj.pk, obj.created_at = batch.pk, batch.created_at


@admin.register(CouponCode)
class CouponCodeAdmin(LargeTableAdminMixin, TenantScopedAdmin):
    list_display = ["code", "status", "member_id", "inventory", "batch", "issued_at", "valid_until", "used_at"]
    list_filter = ["status", "inventory", "tenant"]
    search_fields = ["=code", "=member_id"]
    search_help_text = _("A code (case, spaces and hyphens ignored) or a member id, exact.")
    list_select_related = ["inventory", "batch"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        # Codes are looked up normalised (R-CODE-4): case-insensitive, '-' and spaces ignored.
        term = search_term.strip()
        if term:
            # The code by its (tenant, code) index in the user's tenant (each tenant, for a superuser): issue #23.
            ids = selectors.code_ids(term, tenant_id=user_tenant_id(request))
            return queryset.filter(Q(id__in=ids) | Q(member_id=term)), False
        return queryset, False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # codes come only from batch generation

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # state changes go through the lifecycle services


# --- issuing history, grants, audience (issue #4) ----------------------------------------------------------------

class ReadOnlyLogAdmin(TenantScopedAdmin):
    """History rows are written by services only; the console lists and searches them. A stored channel or payment
    method is shown by its label (CHANNEL_LABELS), in lists and on the row's page."""

    LABELLED = {"channel": "channel_label", "payment_method": "payment_method_label"}

    @admin.display(description=_("channel"), ordering="channel")
    def channel_label(self, obj: Any) -> Any:
        return CHANNEL_LABELS.get(obj.channel, obj.channel) or "-"

    @admin.display(description=_("payment method"), ordering="payment_method")
    def payment_method_label(self, obj: Any) -> Any:
        return PAYMENT_METHOD_LABELS.get(obj.payment_method, obj.payment_method) or "-"

    def get_list_display(self, request: HttpRequest) -> Any:
        return [self.LABELLED.get(f, f) if isinstance(f, str) else f for f in super().get_list_display(request)]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [self.LABELLED.get(f, f) for f in super().get_fields(request, obj)]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*super().get_readonly_fields(request, obj), *self.LABELLED.values()]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _code_ids(request: HttpRequest, term: str) -> list[int]:
    """The ids of the code a console search term names (R-CODE-4 normalising), looked up first on the code's unique
    (tenant, code) index, in the user's tenant: an OR across a join would keep the big issue and usage tables from
    their own indexes (a scan of 10M rows); with literal ids every branch of the OR is an index probe. The list's own
    tenant filter still applies."""
    return selectors.code_ids(term, tenant_id=user_tenant_id(request))


@admin.register(CouponIssue)
class CouponIssueAdmin(LargeTableAdminMixin, ReadOnlyLogAdmin):
    list_display = ["issued_at", "member_id", "coupon", "inventory", "via", "client", "operator", "channel"]
    list_filter = [("issued_at", DateRangeFilter), "via", "inventory", "tenant"]
    search_fields = ["=member_id", "=coupon__code"]
    search_help_text = _("A member id or a code (case, spaces and hyphens ignored), exact.")
    list_select_related = ["coupon", "inventory", "client", "operator"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(member_id=term) | Q(coupon_id__in=_code_ids(request, term))), False


@admin.register(CouponUsage)
class CouponUsageAdmin(LargeTableAdminMixin, ReadOnlyLogAdmin):
    # Amounts in the tenant's currency format (KRW: ₩12,300), issue #11.
    order_amount_display = money_column("order_amount", _("order amount"))
    discount_display = money_column("discount", _("discount"))
    list_display = ["used_at", "order_id", "member_id", "coupon", "inventory", "order_amount_display",
                    "discount_display", "channel", "client", "refunded_at"]
    list_filter = [("used_at", DateRangeFilter), ("channel", values_filter(_("channel"), CHANNELS, CHANNEL_LABELS)),
                   "inventory",
                   "tenant"]
    search_fields = ["=order_id", "=member_id"]
    search_help_text = _("An order id, a member id or a code (case, spaces and hyphens ignored), exact.")
    list_select_related = ["coupon", "inventory", "client", "tenant"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(order_id=term) | Q(member_id=term) | Q(coupon_id__in=_code_ids(request, term))), False


def grant_terms(grant: CouponGrant) -> list[tuple[Any, str]]:
    """What an approver decides on (issue #20): which coupon, to how many members, worth how much."""
    inventory, policy = grant.inventory, grant.inventory.policy
    currency = grant.tenant.currency
    terms = policy_terms(policy)  # (kind, discount, cap, threshold, validity, …)
    discount, validity = str(terms[1][1]), str(terms[4][1])
    value = discount
    if policy.kind in ("amount", "threshold") and policy.amount:
        total = _("at most %(total)s in all") % {"total": format_money(policy.amount * grant.total, currency)}
        value = f"{value} × {grant.total:,} = {total}"
    sample = list(grant.members.order_by("id").values_list("member_id", flat=True)[:10])
    when = date_format(timezone.localtime(grant.created_at), "Y-m-d H:i")
    return [
        (_("inventory"), f"{inventory.name} ({inventory.public_id})"),
        (_("policy"), f"{policy.name} — {policy.get_kind_display()}"),
        (_("number of members"), f"{grant.total:,}"),
        (_("value per member"), discount),
        (_("total value"), value),
        (_("validity"), validity),
        (_("first members"), ", ".join(sample) + (" …" if grant.total > len(sample) else "")),
        (_("asked by"), str(grant.operator or grant.client or "—")),
        (_("asked at"), when),
    ]


@admin.register(CouponGrant)
class CouponGrantAdmin(ReadOnlyLogAdmin):
    list_display = ["public_id", "inventory", "status", "total", "processed", "issued", "failed", "operator",
                    "client", "created_at", "finished_at"]
    list_filter = ["status", "inventory", "tenant"]
    search_fields = ["=public_id"]
    list_select_related = ["inventory", "operator", "client"]
    change_form_template = "admin/coupons/coupongrant/change_form.html"

    def get_urls(self) -> list[Any]:
        return [path("<int:object_id>/decide/", self.admin_site.admin_view(self.decide_view),
                     name="coupons_coupongrant_decide"), *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}),
                         "decide_url": reverse("admin:coupons_coupongrant_decide", args=[object_id])
                         if str(object_id).isdigit() else ""}
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request: HttpRequest, object_id: int) -> Any:
        """Approve or reject a grant waiting for an approver (issue #20), with its terms in context."""
        grant = get_object_or_404(self.get_queryset(request).select_related("inventory__policy", "tenant"),
                                  pk=object_id)
        user = request.user
        return decide_page(
            request, self, kind="grant", object_label=str(grant),
            change_url=reverse("admin:coupons_coupongrant_change", args=[grant.pk]),
            terms=grant_terms(grant), terms_heading=gettext("Terms of the grant"),
            status_label=grant.get_status_display(), requester=str(grant.operator or grant.client or "—"),
            waiting=grant.status == CouponGrant.Status.AWAITING_APPROVAL, rejection_reason=grant.rejection_reason,
            may_decide=user.has_perm(GRANT_APPROVE_PERMISSION),
            is_requester=grant.operator_id is not None and grant.operator_id == user.pk,
            approve=lambda: grant_approve(grant=grant, user=user),
            reject=lambda reason: grant_reject(grant=grant, user=user, reason=reason),
            approve_help=gettext("Approving starts the grant as a job at once; its page shows the progress."),
            approved_message=gettext("The grant %(id)s is approved and running as a job.") % {"id": grant.public_id},
            rejected_message=gettext("The grant %(id)s was rejected; no coupon was issued.") % {"id": grant.public_id})


@admin.register(AudienceEntry)
class AudienceEntryAdmin(TenantExportActionMixin, TenantScopedAdmin):
    list_display = ["member_id", "inventory", "created_at"]
    list_filter = ["inventory", "tenant"]
    search_fields = ["=member_id"]
    list_select_related = ["inventory"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("coupons.change_audienceentry")  # taking a member off a list is routine
