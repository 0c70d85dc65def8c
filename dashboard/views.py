"""The console dashboard (R-REP-3): one tenant's issued / redeemed / expired per day, budgets and alarms."""
from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import user_tenant_id
from core.models import Tenant
from dashboard.charts import line_chart
from dashboard.selectors import MAX_DAYS, dashboard_for, tenant_zone

DEFAULT_DAYS = 30


class RangeForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.order_by("name"), required=False, label=_("Tenant"),
                                    help_text=_("Superusers only: the tenant to show."))
    start = forms.DateField(required=False, label=_("Start"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label=_("End"), widget=forms.DateInput(attrs={"type": "date"}))
    days = forms.IntegerField(required=False, min_value=1, max_value=MAX_DAYS, label=_("Days"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["days"].help_text = gettext("Last N days up to today (default %(days)s).") % {
            "days": DEFAULT_DAYS}

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError(gettext("The start date must not be after the end date."))
            if (end - start).days + 1 > MAX_DAYS:
                raise forms.ValidationError(gettext("Choose a range of at most %(days)s days.") % {"days": MAX_DAYS})
        elif start or end:
            raise forms.ValidationError(gettext("Give both a start and an end date, or neither."))
        return data


def _range(form: RangeForm, today: date) -> tuple[date, date]:
    data = form.cleaned_data if form.is_valid() else {}
    if data.get("start") and data.get("end"):
        return data["start"], data["end"]
    days = data.get("days") or DEFAULT_DAYS
    return today - timedelta(days=days - 1), today


def dashboard_view(request: HttpRequest) -> HttpResponse:
    form = RangeForm(request.GET or None)
    tenant_id = user_tenant_id(request)  # PermissionDenied for staff without a tenant
    if tenant_id is not None:
        # A tenant user sees their own tenant, whatever the query string says.
        tenant = Tenant.objects.get(pk=tenant_id)
        form.fields.pop("tenant")
    else:
        chosen = form.cleaned_data.get("tenant") if form.is_valid() else None
        tenant = chosen or Tenant.objects.order_by("name").first()
        if tenant is None:
            return render(request, "dashboard/index.html", {**admin.site.each_context(request), "form": form,
                                                             "title": gettext("Dashboard"), "no_tenant": True})
    today = timezone.now().astimezone(tenant_zone(tenant)).date()
    start, end = _range(form, today)
    board = dashboard_for(tenant, start, end)
    chart = line_chart(days=[d.day for d in board.days],
                       series={"issued": [d.issued for d in board.days],
                               "redeemed": [d.redeemed for d in board.days],
                               "expired": [d.expired for d in board.days]},
                       title=gettext("Coupons issued, redeemed and expired per day — %(tenant)s") % {"tenant": tenant.name},
                       chart_id="daily")
    rate = board.redemption_rate
    context = {
        **admin.site.each_context(request),
        "title": gettext("Dashboard — %(tenant)s") % {"tenant": tenant.name},
        "form": form,
        "board": board,
        "totals": board.totals,
        "rate": None if rate is None else round(100 * rate, 1),
        "chart": chart,
        "tenant": tenant,
        "zone": str(tenant_zone(tenant)),
    }
    return render(request, "dashboard/index.html", context)
