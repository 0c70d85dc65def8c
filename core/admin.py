"""Console building blocks: tenant scoping for every ModelAdmin (R-TEN-3) and the core models' admins."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import ForeignKey, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ExportActionMixin

from core.admin_lists import (DateRangeFilter, LargeTableAdminMixin, TenantRelatedFilter, text_filter,
                              user_tenant_id, values_filter)
from core.audit import Actor
from core.exceptions import DomainError
from core.export_formats import EXPORT_FORMATS, TranslatedFieldsExportForm
from core.models import ApiClient, AuditLog, Tenant, User
from core.admin_confirm import confirm_action
from core.services import (api_client_create, api_client_end_rollover, api_client_revoke, api_client_rotate_token,
                           api_client_set_networks, parse_networks)
from django.utils.text import capfirst
from django.apps import apps
import json

admin.site.site_header = _("Coupon platform — back office")
admin.site.site_title = _("Coupon back office")
admin.site.index_title = _("Operations")


def _has_tenant_field(model: Any) -> bool:
    return any(f.name == "tenant" for f in model._meta.get_fields())


class TenantScopedAdmin(admin.ModelAdmin):
    """Every list, search, object page, action and export sees only the user's tenant.

    - querysets are filtered by tenant (object pages of another tenant's rows answer "does not exist"),
    - foreign-key choices are limited to the tenant, FK list filters show only related rows present in the list,
    - the ``tenant`` field is hidden from tenant users and set from their account on save,
    - a DomainError raised by a service is shown as an error message and nothing is changed.
    """

    tenant_field = "tenant"
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Business rows are closed, revoked or cancelled through services (with an audit row), never deleted.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        tenant_id = user_tenant_id(request)
        if tenant_id is not None:
            qs = qs.filter(**{f"{self.tenant_field}_id": tenant_id})
        return qs

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        filters = []
        for item in super().get_list_filter(request):
            name = item if isinstance(item, str) else None
            if name == "tenant" and not request.user.is_superuser:
                continue
            field = self._fk_field(name) if name else None
            filters.append((name, RelatedOnlyFieldListFilter) if field is not None else item)
        return filters

    def get_list_display(self, request: HttpRequest) -> Any:
        display = list(super().get_list_display(request))
        if not request.user.is_superuser and "tenant" in display:
            display.remove("tenant")
        return display

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            exclude.append("tenant")
        return exclude

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and request.user.is_superuser and "tenant" not in readonly:
            readonly.append("tenant")  # moving a row to another tenant would break every invariant
        return readonly

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        names = {f for _, opts in fieldsets for f in opts.get("fields", ())}
        if request.user.is_superuser and "tenant" not in names and _has_tenant_field(self.model):
            fieldsets.insert(0, (_("Tenant"), {"fields": ["tenant"]}))
        return fieldsets

    def _fk_field(self, name: str | None) -> ForeignKey | None:
        if not name or "__" in name:
            return None
        try:
            field = self.model._meta.get_field(name)
        except Exception:
            return None
        return field if isinstance(field, ForeignKey) else None

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        tenant_id = user_tenant_id(request)
        related = db_field.related_model
        if tenant_id is not None and _has_tenant_field(related) and "queryset" not in kwargs:
            kwargs["queryset"] = related._default_manager.filter(tenant_id=tenant_id)
        if tenant_id is not None and related is Tenant:
            kwargs["queryset"] = Tenant.objects.filter(pk=tenant_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change and user_tenant_id(request) is not None:
            obj.tenant_id = user_tenant_id(request)
        self.save_with_service(request, obj, form, change)

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Override to call the model's service; the default is a plain save (for rows without invariants)."""
        obj.save()

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def actor(self, request: HttpRequest) -> Actor:
        return Actor.user(request.user)


class TenantExportActionMixin(ExportActionMixin):
    """django-import-export's list export, limited to the tenant's rows (list it before TenantScopedAdmin); CSV and
    XLSX with translated field names (core/export_formats.py)."""

    export_form_class = TranslatedFieldsExportForm

    @property
    def export_formats(self) -> list[Any]:
        return EXPORT_FORMATS

    def get_valid_export_item_pks(self, request: HttpRequest) -> Any:
        # The export action validates the selected ids against this; the library's default is every row.
        return self.get_queryset(request).values_list("pk", flat=True)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "currency", "rounding_unit", "language", "is_active", "created_at"]
    search_fields = ["name", "slug"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        tenant_id = user_tenant_id(request)
        return qs if tenant_id is None else qs.filter(pk=tenant_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Permission names are stored in English when the tables are migrated ("Can add alarm"); the console names them in
# the reader's language from the model's translated name (issue #20). Our own permissions' names are msgids below.
_ACTIONS = {"add": _("Can add %(model)s"), "change": _("Can change %(model)s"), "delete": _("Can delete %(model)s"),
            "view": _("Can view %(model)s")}
_CUSTOM_PERMISSION_NAMES = (_("Can see queues, workers and failed jobs"), _("Can re-queue and discard failed jobs"),
                            _("Can approve or reject coupon policies"), _("Can approve or reject distributions"),
                            _("Can approve or reject grants"))


def permission_label(permission: Any) -> str:
    model = permission.content_type.model_class()
    if model is None:
        return str(permission)
    opts = model._meta
    action, _sep, model_name = permission.codename.partition("_")
    if action in _ACTIONS and model_name == opts.model_name:
        name = _ACTIONS[action] % {"model": gettext(str(opts.verbose_name))}
    else:
        name = gettext(permission.name)

    app = _THIRD_PARTY_APP_NAMES.get(opts.app_label) or apps.get_app_config(opts.app_label).verbose_name
    return f"{capfirst(app)} | {capfirst(gettext(str(opts.verbose_name)))} | {name}"


# Libraries whose app names have no translation: named here (the models' names are in coupon_project's overrides).
_THIRD_PARTY_APP_NAMES = {"axes": _("Login lockouts"), "django_rq": _("Job queues")}


class TranslatedPermissionsMixin:
    """The permissions pickers of users and groups, labelled by ``permission_label``."""

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
        if db_field.name in ("permissions", "user_permissions") and field is not None:
            field.label_from_instance = permission_label
        return field


class GroupAdmin(TranslatedPermissionsMixin, DjangoGroupAdmin):
    """Role groups are listed by their display name in the reader's language (issue #20); the stored name stays."""

    list_display = ["name_display"]

    @admin.display(description=_("name"), ordering="name")
    def name_display(self, obj: Group) -> str:
        return str(obj)


admin.site.unregister(Group)
admin.site.register(Group, GroupAdmin)


@admin.register(User)
class UserAdmin(TranslatedPermissionsMixin, DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, (_("Tenant and language"), {"fields": ("tenant", "language")}))
    add_fieldsets = (*DjangoUserAdmin.add_fieldsets,
                     (_("Tenant and language"), {"fields": ("tenant", "language", "is_staff", "groups")}))
    list_display = ["username", "email", "tenant", "is_staff", "is_superuser", "last_login"]
    list_filter = ["is_staff", "is_superuser", "groups", "tenant"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


class ApiClientAddForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = ["tenant", "name", "scope", "allowed_networks"]

    def clean_allowed_networks(self) -> str:
        try:
            return "\n".join(parse_networks(self.cleaned_data.get("allowed_networks") or ""))
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc


class ApiClientChangeForm(ApiClientAddForm):
    """Only the IP allow-list is edited in place; tokens change through the rotate / end-rollover actions."""

    class Meta:
        model = ApiClient
        fields = ["allowed_networks"]


@admin.register(ApiClient)
class ApiClientAdmin(TenantScopedAdmin):
    list_display = ["name", "tenant", "scope", "key_prefix_code", "previous_valid_until", "created_at",
                    "last_used_at", "revoked_at"]
    list_filter = ["scope", "tenant"]
    search_fields = ["name", "key_prefix"]
    readonly_fields = ["key_prefix_code", "previous_key_prefix_code", "previous_valid_until", "created_at",
                       "last_used_at", "revoked_at"]
    actions = ["revoke", "rotate_token", "end_rollover"]

    # A token prefix is a random code, not a word: shown as code (issue #20).
    @admin.display(description=_("key prefix"), ordering="key_prefix")
    def key_prefix_code(self, obj: ApiClient) -> Any:
        return format_html("<code>{}</code>", obj.key_prefix) if obj.key_prefix else "-"

    @admin.display(description=_("previous key prefix"))
    def previous_key_prefix_code(self, obj: ApiClient) -> Any:
        return format_html("<code>{}</code>", obj.previous_key_prefix) if obj.previous_key_prefix else "-"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = ApiClientAddForm if obj is None else ApiClientChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly = ["name", "scope", *readonly]
        return readonly

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Name and scope are fixed; the IP allow-list is the one field edited in place (through its service).
        if obj is not None and obj.revoked_at is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: issue and usage history keeps pointing at the client

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            api_client_set_networks(client=obj, networks=form.cleaned_data["allowed_networks"],
                                    actor=self.actor(request))
            return
        client, token = api_client_create(tenant=obj.tenant, name=obj.name, scope=obj.scope,
                                          actor=self.actor(request))
        if form.cleaned_data.get("allowed_networks"):
            client = api_client_set_networks(client=client, networks=form.cleaned_data["allowed_networks"],
                                             actor=self.actor(request))
        obj.__dict__.update({k: v for k, v in client.__dict__.items() if not k.startswith("_")})
        self.message_user(request, gettext("API token for “%(name)s” (copy it now — it is shown only once): "
                                           "%(token)s") % {"name": client.name, "token": token}, messages.WARNING)

    @admin.action(description=_("Revoke the selected API clients"), permissions=["change_client"])
    @confirm_action()
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for client in queryset.filter(revoked_at__isnull=True):
            api_client_revoke(client=client, actor=self.actor(request))
            done += 1
        self.message_user(request, ngettext("Revoked %(count)d API client.", "Revoked %(count)d API clients.", done)
                          % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Issue a new token (the old one keeps working for the rollover grace period)"),
                  permissions=["change_client"])
    @confirm_action()
    def rotate_token(self, request: HttpRequest, queryset: QuerySet) -> None:
        for client in queryset.filter(revoked_at__isnull=True):
            token = api_client_rotate_token(client=client, actor=self.actor(request))
            if client.previous_valid_until:
                text = gettext("New token for “%(name)s” (shown only once): %(token)s — the previous token keeps "
                               "working until %(until)s.") % {
                    "name": client.name, "token": token,
                    "until": formats.date_format(timezone.localtime(client.previous_valid_until), "DATETIME_FORMAT")}
            else:
                text = gettext("New token for “%(name)s” (shown only once): %(token)s.") % {
                    "name": client.name, "token": token}
            self.message_user(request, text, messages.WARNING)

    @admin.action(description=_("End the rollover: the previous token stops now"), permissions=["change_client"])
    @confirm_action()
    def end_rollover(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for client in queryset.filter(previous_key_prefix__isnull=False):
            api_client_end_rollover(client=client, actor=self.actor(request))
            done += 1
        self.message_user(request, ngettext("Stopped the previous token of %(count)d API client.",
                                            "Stopped the previous token of %(count)d API clients.", done)
                          % {"count": done}, messages.SUCCESS)

    def has_change_client_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("core.change_apiclient")


def _audited_model_labels() -> list[str]:
    return sorted(m._meta.label for m in apps.get_models())


def _model_names() -> dict[str, Any]:
    """``app.Model`` → the model's name in the reader's language (the console shows names, searches by label)."""
    return {m._meta.label: capfirst(gettext(str(m._meta.verbose_name))) for m in apps.get_models()}


def _json_block(value: Any) -> Any:
    if value in (None, {}, []):
        return "-"
    return format_html("<pre class=\"json\">{}</pre>", json.dumps(value, ensure_ascii=False, indent=1,
                                                                     sort_keys=True, default=str))


@admin.register(AuditLog)
class AuditLogAdmin(LargeTableAdminMixin, TenantScopedAdmin):
    """Audit viewer: read-only, tenant-scoped; filters by actor, action, object type and date range; search by
    object id (``123`` or ``coupons.CouponCode#123``). Every filter is served by an index or bounded by the
    (tenant, created_at) scan; the list never counts the whole table (R-OPS console polish)."""

    list_display = ["created_at", "tenant", "actor_type", "actor_display", "action_code", "object_type_name",
                    "object_id", "object_repr"]
    list_select_related = ["tenant"]
    search_fields = ["object_id"]
    search_help_text = _("Object id, e.g. 123 or coupons.CouponCode#123 (exact).")
    readonly_fields = ["created_at", "tenant", "actor_type", "actor_id", "actor_display", "action_code",
                       "object_type_name", "object_id", "object_repr", "before_json", "after_json"]
    fields = readonly_fields

    # The audit vocabulary (actions, JSON keys) is code: shown as code; object types by their names (issue #20).
    @admin.display(description=_("actor"), ordering="actor_label")
    def actor_display(self, obj: AuditLog) -> Any:
        """A job's or the system's name is an identifier (``issuing``, ``demo_data``): shown as code."""
        if obj.actor_type in (AuditLog.ActorType.JOB, AuditLog.ActorType.SYSTEM):
            return format_html("<code>{}</code>", obj.actor_label)
        return obj.actor_label

    @admin.display(description=_("action"), ordering="action")
    def action_code(self, obj: AuditLog) -> Any:
        return format_html("<code>{}</code>", obj.action)

    @admin.display(description=_("object type"), ordering="object_type")
    def object_type_name(self, obj: AuditLog) -> Any:
        return _model_names().get(obj.object_type, obj.object_type)

    @admin.display(description=_("before"))
    def before_json(self, obj: AuditLog) -> Any:
        return _json_block(obj.before)

    @admin.display(description=_("after"))
    def after_json(self, obj: AuditLog) -> Any:
        return _json_block(obj.after)

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        filters: list[Any] = [
            ("created_at", DateRangeFilter),
            "actor_type",
            text_filter(_("actor (user name, client or job)"), "actor", "actor_label"),
            text_filter(_("action (prefix, e.g. coupon. or coupon.redeem)"), "action", "action__startswith"),
            ("object_type", values_filter(_("object type"), _audited_model_labels(), _model_names())),
        ]
        if request.user.is_superuser:
            filters.append(("tenant", TenantRelatedFilter))
        return filters

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        term = search_term.strip()
        if not term:
            return queryset, False
        object_type, _, object_id = term.rpartition("#")
        # (object_type, object_id) is the auditlog_object index; naming every type keeps it usable for a bare id.
        types = [object_type] if object_type else _audited_model_labels()
        return queryset.filter(object_type__in=types, object_id=object_id), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
