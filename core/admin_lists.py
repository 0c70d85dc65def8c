"""Console lists over 10M-row tables (R-OPS console polish): no full COUNT(*), no DISTINCT over the table.

Design: docs/design/console-and-i18n.md#core-admin-lists.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _

LIST_COUNT_CAP = 10_000


def user_tenant_id(request: HttpRequest) -> int | None:
    """The tenant a console request is limited to; None for superusers (who see all)."""
    user = request.user
    if user.is_superuser:
        return None
    if user.tenant_id is None:  # type: ignore[union-attr]
        raise DjangoPermissionDenied(_("Your account is not attached to a tenant."))
    return user.tenant_id  # type: ignore[union-attr]


class CappedCountPaginator(Paginator):
    cap = LIST_COUNT_CAP

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if not hasattr(object_list, "query"):
            return len(object_list)
        counted = object_list.order_by()[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)

    capped = False


class LargeTableAdminMixin:
    """Use before TenantScopedAdmin on admins of tables that grow to millions of rows."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per choice over the table

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        """Foreign keys named in ``list_filter`` list their choices from their own table (TenantRelatedFilter);
        the tenant filter is for superusers only."""
        filters: list[Any] = []
        for item in self.list_filter:  # type: ignore[attr-defined]
            name = item if isinstance(item, str) else item[0] if isinstance(item, tuple) else None
            if name == "tenant" and not request.user.is_superuser:
                continue
            if isinstance(item, str) and "__" not in item:
                field = self.model._meta.get_field(item)  # type: ignore[attr-defined]
                if field.is_relation:
                    item = (item, TenantRelatedFilter)
            filters.append(item)
        return filters
    list_per_page = 50


class TenantRelatedFilter(admin.RelatedFieldListFilter):
    """Foreign-key choices from the related table itself, limited to the user's tenant (superusers: all)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        related = field.related_model
        qs = related._default_manager.all()
        tenant_id = user_tenant_id(request)
        if tenant_id is not None:
            if related._meta.model_name == "tenant":
                qs = qs.filter(pk=tenant_id)
            elif any(f.name == "tenant" for f in related._meta.get_fields()):
                qs = qs.filter(tenant_id=tenant_id)
            else:
                return []
        ordering = self.field_admin_ordering(field, request, model_admin) or ["-pk"]
        return [(obj.pk, str(obj)) for obj in qs.order_by(*ordering)[:500]]


def values_filter(title: Any, values: list[str], labels: dict[str, Any] | None = None) -> type[admin.FieldListFilter]:
    """A filter offering exactly ``values`` for a plain column, each shown by its label when ``labels`` has one."""

    class ValuesFilter(admin.FieldListFilter):
        def __init__(self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any,
                     field_path: str) -> None:
            self.lookup_kwarg = field_path
            super().__init__(field, request, params, model, model_admin, field_path)
            self.title = title
            value = self.used_parameters.get(field_path)
            self.value = value[-1] if isinstance(value, list) else value

        def expected_parameters(self) -> list[str]:
            return [self.lookup_kwarg]

        def choices(self, changelist: Any) -> Any:
            yield {"selected": self.value is None, "display": _("All"),
                   "query_string": changelist.get_query_string(remove=[self.lookup_kwarg])}
            for value in values:
                yield {"selected": self.value == value, "display": (labels or {}).get(value, value),
                       "query_string": changelist.get_query_string({self.lookup_kwarg: value})}

    return ValuesFilter


class DateRangeFilter(admin.FieldListFilter):
    """``?<field>_from=YYYY-MM-DD&<field>_to=YYYY-MM-DD`` (both inclusive, days in the current time zone)."""

    template = "admin/date_range_filter.html"

    def __init__(self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any,
                 field_path: str) -> None:
        self.param_from, self.param_to = f"{field_path}_from", f"{field_path}_to"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = _("%(field)s (date range)") % {"field": getattr(field, "verbose_name", field_path)}
        self.request = request
        self.bounds: dict[str, date] = {}
        for key in (self.param_from, self.param_to):
            raw = self.used_parameters.get(key)
            raw = raw[-1] if isinstance(raw, list) else raw
            if not raw:
                continue
            try:
                self.bounds[key] = date.fromisoformat(str(raw))
            except ValueError:
                messages.error(request, _("'%(value)s' is not a date (YYYY-MM-DD); the %(key)s filter was ignored.")
                               % {"value": raw, "key": key})
        if (self.param_from in self.bounds and self.param_to in self.bounds
                and self.bounds[self.param_from] > self.bounds[self.param_to]):
            messages.error(request, _("The start date is after the end date; the date range was ignored."))
            self.bounds = {}

    def expected_parameters(self) -> list[str]:
        return [self.param_from, self.param_to]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        zone = timezone.get_current_timezone()
        if self.param_from in self.bounds:
            queryset = queryset.filter(**{f"{self.field_path}__gte": datetime.combine(
                self.bounds[self.param_from], time.min, tzinfo=zone)})
        if self.param_to in self.bounds:
            queryset = queryset.filter(**{f"{self.field_path}__lt": datetime.combine(
                self.bounds[self.param_to] + timedelta(days=1), time.min, tzinfo=zone)})
        return queryset

    def choices(self, changelist: Any) -> Any:
        keep = [(k, v) for k, values in changelist.filter_params.items() for v in values
                if k not in (self.param_from, self.param_to)] if hasattr(changelist, "filter_params") else []
        yield {
            "selected": bool(self.bounds),
            "param_from": self.param_from,
            "param_to": self.param_to,
            "value_from": self.bounds.get(self.param_from, ""),
            "value_to": self.bounds.get(self.param_to, ""),
            "keep": keep,
            "query_string": changelist.get_query_string(remove=[self.param_from, self.param_to]),
            "display": _("Any date"),
        }


def text_filter(title: Any, parameter: str, lookup: str) -> type[admin.ListFilter]:
    """A free-text filter ``?<parameter>=…`` applied as ``<lookup>=value`` (for columns with too many values for
    a list of links, such as an audit row's actor or action)."""

    class TextFilter(admin.ListFilter):
        template = "admin/text_input_filter.html"

        def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
            self.title = title
            super().__init__(request, params, model, model_admin)
            value = params.pop(parameter, None)
            value = value[-1] if isinstance(value, list) else value
            self.value = (value or "").strip()[:200]
            if self.value:
                self.used_parameters[parameter] = self.value

        def has_output(self) -> bool:
            return True

        def expected_parameters(self) -> list[str]:
            return [parameter]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            return queryset.filter(**{lookup: self.value}) if self.value else queryset

        def choices(self, changelist: Any) -> Any:
            keep = [(k, v) for k, values in changelist.filter_params.items() for v in values if k != parameter]
            yield {"selected": bool(self.value), "parameter": parameter, "value": self.value, "keep": keep,
                   "query_string": changelist.get_query_string(remove=[parameter]), "display": _("Any")}

    TextFilter.__name__ = f"TextFilter_{parameter}"
    return TextFilter
