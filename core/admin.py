"""Console building blocks: tenant scoping for every ModelAdmin (R-TEN-3) and the core models' admins."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import ForeignKey, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from import_export.admin import ExportActionMixin

from core.audit import Actor
from core.exceptions import DomainError
from core.models import ApiClient, AuditLog, Tenant, User
from core.services import api_client_create, api_client_revoke, api_client_rotate_token

admin.site.site_header = "Coupon platform — back office"
admin.site.site_title = "Coupon back office"
admin.site.index_title = "Operations"


def user_tenant_id(request: HttpRequest) -> int | None:
    """The tenant a console request is limited to; None for superusers (who see all)."""
    user = request.user
    if user.is_superuser:
        return None
    if user.tenant_id is None:  # type: ignore[union-attr]
        raise DjangoPermissionDenied("Your account is not attached to a tenant.")
    return user.tenant_id  # type: ignore[union-attr]


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
            fieldsets.insert(0, ("Tenant", {"fields": ["tenant"]}))
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
    """django-import-export's list export, limited to the tenant's rows (list it before TenantScopedAdmin)."""

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


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Tenant", {"fields": ("tenant",)}))
    add_fieldsets = (*DjangoUserAdmin.add_fieldsets, ("Tenant", {"fields": ("tenant", "is_staff", "groups")}))
    list_display = ["username", "email", "tenant", "is_staff", "is_superuser", "last_login"]
    list_filter = ["is_staff", "is_superuser", "groups", "tenant"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission  # type: ignore


class ApiClientAddForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = ["tenant", "name", "scope"]


@admin.register(ApiClient)
class ApiClientAdmin(TenantScopedAdmin):
    list_display = ["name", "tenant", "scope", "key_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", "tenant"]
    search_fields = ["name", "key_prefix"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke", "rotate_token"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiClientAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Clients are created, rotated and revoked through actions; their fields are not edited in place.
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: issue and usage history keeps pointing at the client

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        client, token = api_client_create(tenant=obj.tenant, name=obj.name, scope=obj.scope,
                                          actor=self.actor(request))
        obj.__dict__.update({k: v for k, v in client.__dict__.items() if not k.startswith("_")})
        self.message_user(request, f"API token for '{client.name}' (copy it now — it is shown only once): {token}",
                          messages.WARNING)

    @admin.action(description="Revoke the selected API clients", permissions=["change_client"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for client in queryset.filter(revoked_at__isnull=True):
            api_client_revoke(client=client, actor=self.actor(request))
            done += 1
        self.message_user(request, f"Revoked {done} API client(s).", messages.SUCCESS)

    @admin.action(description="Issue a new token (the old one stops working)", permissions=["change_client"])
    def rotate_token(self, request: HttpRequest, queryset: QuerySet) -> None:
        for client in queryset.filter(revoked_at__isnull=True):
            token = api_client_rotate_token(client=client, actor=self.actor(request))
            self.message_user(request, f"New token for '{client.name}' (shown only once): {token}", messages.WARNING)

    def has_change_client_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("core.change_apiclient")


@admin.register(AuditLog)
class AuditLogAdmin(TenantScopedAdmin):
    list_display = ["created_at", "tenant", "actor_type", "actor_label", "action", "object_type", "object_repr"]
    list_filter = ["action", "actor_type", "object_type", "tenant"]
    search_fields = ["object_id", "object_repr", "actor_label", "action"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
